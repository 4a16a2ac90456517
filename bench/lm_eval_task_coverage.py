"""How many of the task configs lm-evaluation-harness ships does beyondscale accept, without their data?

Walks every `*.yaml` under lm-eval's installed `lm_eval/tasks/`, loads it as the bridge does
(includes merged, `!function`s of lm-eval's own files imported) and asks the bridge's check
(`beyondscale.tasks.harness_check`) whether it would run it: metrics, aggregations, filters,
samplers and functions resolve, the output type and generation options are ones the engine answers,
and a group's members are known. Prints the count and every refusal, one line each, by reason.

    python bench/lm_eval_task_coverage.py            # the bridge

A file with neither `task` nor `group` is a template other files include; it is counted apart
(accepted when it loads), and reported in both totals.
"""

from __future__ import annotations

import argparse
import collections
import logging
import re
import sys
import time
import warnings
from pathlib import Path


def classify(cfg: dict) -> str:
    if "class" in cfg:
        return "python task"
    if "group" in cfg:
        return "group"
    if "task" in cfg:
        return "task"
    return "template"


def bridge_verdict(path: Path, known: set[str]) -> tuple[str, str | None]:
    """(kind, refusal or None) of one YAML file through the bridge."""
    from beyondscale.errors import UserError
    from beyondscale.tasks.harness_check import group_refusal, task_refusal
    from beyondscale.tasks.harness_code import load_task_yaml

    try:
        cfg = load_task_yaml(path, allow_code=False)
    except UserError as err:
        return "?", str(err).split(": ", 1)[-1]
    except (Exception, SystemExit) as err:  # noqa: BLE001 - every failure is a refusal to list (a task's
        return "?", f"load: {type(err).__name__}: {short(err)}"  # module may even call sys.exit on import
    kind = classify(cfg)
    if kind == "template":
        return kind, None
    if kind == "group":
        return kind, group_refusal(cfg, known)
    for key in ("tag", "group", "task_list"):
        cfg.pop(key, None)
    return kind, task_refusal(cfg)


def short(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def reason_class(reason: str) -> str:
    """Group refusals by their reason, file names and quoted values removed."""
    text = re.sub(r"^task '[^']*' \([^)]*\): ", "", reason)
    text = re.sub(r"^.*?\.yaml(:\d+)?:\s*", "", text)
    text = re.sub(r"/\S+", "PATH", text)
    text = re.sub(r"'[^'\n]{0,40}'|`[^`\n]{0,40}`", "'…'", text)
    return text.split(" (")[0][:90]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="print the summary only, not every refusal")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    from importlib.metadata import version

    from lm_eval.tasks._index import TaskIndex

    from beyondscale.tasks.harness_code import LM_EVAL_TASKS_DIR

    start = time.perf_counter()
    files = sorted(p for p in LM_EVAL_TASKS_DIR.rglob("*.yaml") if "__pycache__" not in p.parts)
    known = set(TaskIndex.build([LM_EVAL_TASKS_DIR]))
    kinds: collections.Counter = collections.Counter()
    refused: list[tuple[str, str]] = []
    for path in files:
        kind, reason = bridge_verdict(path, known)
        kinds[kind] += 1
        if reason:
            refused.append((str(path.relative_to(LM_EVAL_TASKS_DIR)), reason))
    accepted = len(files) - len(refused)
    by_reason = collections.Counter(reason_class(r) for _, r in refused)
    if not args.quiet:
        for rel, reason in refused:
            print(f"REFUSED {rel}: {reason}")
    print(f"\nrefusals by reason ({len(refused)}):")
    for reason, n in by_reason.most_common():
        print(f"  {n:6d}  {reason}")
    who = "beyondscale.tasks.harness (lm-eval bridge)"
    print(f"\nlm-eval {version('lm_eval')}: {len(files)} task YAML files; {who} accepts {accepted} "
          f"({100 * accepted / len(files):.1f}%), refuses {len(refused)}; {time.perf_counter() - start:.0f} s")
    templates = kinds["template"]
    configs = len(files) - templates
    print(f"  of which {templates} templates (no task/group key, accepted when they load); "
          f"task and group configs alone: {configs - len(refused)}/{configs} "
          f"({100 * (configs - len(refused)) / max(1, configs):.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
