"""Cheaper, not bigger: fp32 vs int8 (and int4) variants of the real models on the quickstart tasks.

Runs the public CLI (`beyondscale eval --quantize ...`, then `beyondscale analyze`) into one store,
prints what it printed, then one row per variant (accuracy, bits-per-byte, tokens/s, peak memory,
bytes in memory), the paired tests of each quantised variant against its own original on the same items and
the verdict's sentences about the variants. Each eval is its own process, one after the other (not
alternated): quote the load average printed with the figures.

    python bench/quant_compare.py --model smollm2 --model gemma3 --quantize int8 --quantize int4
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _peer import quickstart_tasks  # noqa: E402

CLI = [sys.executable, "-m", "beyondscale.cli"]


def _spec(model: str) -> str:
    from beyondscale.quickstart import PACKAGED_MODELS

    if model in ("smollm2", "gemma3"):
        entry = PACKAGED_MODELS["SmolLM2-135M-Instruct" if model == "smollm2" else "Gemma-3-270M"]
        return f"{entry.name}={entry.path()}"
    return model


def _run(args: list[str]) -> None:
    print("$ beyondscale " + " ".join(a if " " not in a else repr(a) for a in args), flush=True)
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, check=False)
    print(done.stdout, end="")
    if done.returncode:
        print(done.stderr, end="")
        sys.exit(f"exit {done.returncode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--quantize", action="append", default=None)
    parser.add_argument("--limit", type=int, default=None, help="items per task (default: the quickstart's sizes)")
    parser.add_argument("--store", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bs-quant-"))
    store = args.store or str(work / "quant.db")
    tasks = quickstart_tasks(args.limit, work / "tasks")
    task_arg = ",".join(str(tasks[t]) for t in ("qs_nextsent", "qs_bpb", "qs_pattern"))
    print(f"load average at start {os.getloadavg()}")
    for model in args.model:
        for q in ["none", *(args.quantize or ["int8"])]:
            _run(["eval", "--model", _spec(model), "--tasks", task_arg, "--store", store, "--device", "cpu",
                  "--quantize", q])
    _run(["analyze", "--store", store])
    summary(store)
    print(f"load average at end {os.getloadavg()}")
    return 0


def summary(store: str) -> None:
    """One row per variant, each quantised variant's paired tests against its own original (same items, primary
    metric of each task, effect = variant - original), and the verdict's sentences about the variants."""
    import pandas as pd

    from beyondscale import api
    from beyondscale.analysis.context import Context
    from beyondscale.analysis.inputs import model_table
    from beyondscale.analysis.quantised import changes, pairs

    analysis, frames = api.analyze(store, n_boot=1000)
    models = frames.models.set_index("model_key")
    wide = frames.scores.pivot_table(index="model_key", columns=["task", "metric"], values="value")
    eff = frames.efficiency.groupby("model_key").agg({"tokens_per_s": "mean", "peak_memory_bytes": "max"})
    rows = []
    for key in models.index:
        rows.append({"model": models.loc[key, "model"], "quantization": models.loc[key, "quantization"],
                     "acc nextsent": wide.loc[key].get(("qs_nextsent", "acc")),
                     "exact pattern": wide.loc[key].get(("qs_pattern", "exact_match")),
                     "bpb": wide.loc[key].get(("qs_bpb", "bits_per_byte")),
                     "tokens/s (mean of tasks)": eff["tokens_per_s"].get(key),
                     "peak MiB": eff["peak_memory_bytes"].get(key, float("nan")) / 2**20,
                     "weights MiB": (models.loc[key, "bytes_in_memory"] or 0) / 2**20})
    primary = analysis.paired[analysis.paired.primary.astype(bool)].groupby("task")["metric"].first().to_dict()
    table = model_table(frames.models, frames.scores)
    name = Context(table, 0, 0, None).name
    tests = [{"original": name[o], "variant": name[v], "task": c.task, "metric": c.metric,
              "variant - original": c.delta, "p": c.p.raw, "p (Holm)": c.p.adjusted, "significant": c.significant}
             for o, v in pairs(table) for c in changes(analysis.paired, o, v, primary)]
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 80):
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print("paired tests, each variant against its original (same items, each task's primary metric):")
        print(pd.DataFrame(tests).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("verdict on the variants:")
    for line in analysis.verdict:
        if line.startswith("Cheaper, not bigger:"):
            print("  " + line)


if __name__ == "__main__":
    sys.exit(main())
