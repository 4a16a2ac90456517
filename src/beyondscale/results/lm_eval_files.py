"""Reading an lm-eval output folder: its results files, their samples, and the checks that they agree.

lm-eval (`--output_path DIR --log_samples`, `EvaluationTracker`) writes, per model, a folder
`DIR/<model_name_sanitized>/` holding `results_<date_id>.json` and one `samples_<task>_<date_id>.jsonl` per
task (lm_eval/loggers/evaluation_tracker.py, 0.4.13). A samples row is one (document, filter): its
`doc_id`, `doc_hash` (lm-eval's content key of the document), `filter`, the names in `metrics` and each
per-document value (a rolling task's (loglikelihood, words or bytes) pair is kept as `logprob`, `words`,
`bytes`, the names a run made here gives them, so bits_per_byte is paired too). A samples file is refused when its documents disagree with its results file
(`n-samples`, `task_hashes`, or a mean metric that its per-document values do not average to).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from beyondscale.errors import UserError
from beyondscale.metrics.lm_eval_values import aggregates

__all__ = ["RunFiles", "TaskSamples", "aggregates", "check_samples", "find_runs", "read_json", "read_samples"]

MEAN_TOLERANCE = 1e-6


@dataclass(frozen=True)
class RunFiles:
    """One lm-eval run: its results file and the samples file of each task that has one."""

    results: Path
    samples: dict[str, Path]


@dataclass
class TaskSamples:
    """A task's documents as the samples file holds them: per doc_id its hash, per-metric values, answer."""

    path: Path
    doc_hash: dict[int, str] = field(default_factory=dict)
    values: dict[int, dict[str, float]] = field(default_factory=dict)
    first_row: dict[int, dict] = field(default_factory=dict)
    chain: list[str] = field(default_factory=list)  # doc_hash + prompt_hash + target_hash, in file order


def find_runs(folder: Path) -> list[RunFiles]:
    """Every results_*.json under `folder` with the samples files of the same run (same date_id)."""
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (expected an lm-eval --output_path folder)")
    found = sorted(folder.rglob("results_*.json"))
    if not found:
        raise UserError(f"{folder}: no lm-eval results file (results_*.json) in it or below it")
    runs = []
    for results in found:
        date_id = results.stem[len("results_"):]
        samples = {}
        for path in results.parent.glob(f"samples_*_{date_id}.jsonl"):
            samples[path.name[len("samples_"):-len(f"_{date_id}.jsonl")]] = path
        runs.append(RunFiles(results, samples))
    return runs


def read_json(path: Path) -> dict:
    """A results file, checked for the fields an import needs."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected an lm-eval results object, found {type(data).__name__}")
    for name in ("results", "configs"):
        if not isinstance(data.get(name), dict):
            raise UserError(f"{path}: field `{name}` missing or not an object; not an lm-eval results file")
    return data


def _sample_row(path: Path, lineno: int, line: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{lineno}: not readable JSON ({err})") from None
    if not isinstance(row, dict) or not isinstance(row.get("doc_id"), int) or not isinstance(row.get("doc_hash"), str):
        raise UserError(f"{path}:{lineno}: not an lm-eval samples row (needs integer `doc_id` and `doc_hash`)")
    return row


def read_samples(path: Path) -> TaskSamples:
    """A samples file, one row per (document, filter), gathered per document."""
    out = TaskSamples(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not readable ({err})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = _sample_row(path, lineno, line)
        doc_id, doc_hash = row["doc_id"], row["doc_hash"]
        if out.doc_hash.setdefault(doc_id, doc_hash) != doc_hash:
            raise UserError(f"{path}:{lineno}: document {doc_id} appears with two different doc_hash values")
        out.chain.append(doc_hash + str(row.get("prompt_hash", "")) + str(row.get("target_hash", "")))
        out.first_row.setdefault(doc_id, row)
        _gather_values(out.values.setdefault(doc_id, {}), row)
    return out


def _gather_values(values: dict[str, float], row: dict) -> None:
    """The numeric per-document values of one row (metrics.lm_eval_values: a rolling pair becomes `logprob`
    and `words`/`bytes`, a Brier pair `brier_score`, `confidence` and `p_gold`)."""
    from beyondscale.metrics.lm_eval_values import document_values

    for metric in row.get("metrics") or []:
        values.update(document_values(metric, str(row.get("filter", "none")), row.get(metric)))


def check_samples(results_path: Path, data: dict, task: str, samples: TaskSamples) -> None:
    """Refuse a samples file whose documents are not the ones its results file counted."""
    from lm_eval.utils import hash_string

    effective = ((data.get("n-samples") or {}).get(task) or {}).get("effective")
    if isinstance(effective, int) and effective != len(samples.doc_hash):
        raise UserError(f"{samples.path}: {len(samples.doc_hash)} documents, but {results_path.name} counted "
                        f"{effective} for task {task} (n-samples); not the samples of these results")
    expected = (data.get("task_hashes") or {}).get(task)
    if expected and hash_string("".join(samples.chain)) != expected:
        raise UserError(f"{samples.path}: its documents do not hash to task_hashes[{task}] of {results_path.name}; "
                        "not the samples of these results")
    _check_means(results_path, data, task, samples)


def mean_metrics(config: dict) -> set[str]:
    """The metrics a task config aggregates by their mean (lm-eval's `aggregation: mean`)."""
    return {m.get("metric") for m in config.get("metric_list") or [] if isinstance(m, dict)
            and m.get("aggregation") == "mean"}


def _check_means(results_path: Path, data: dict, task: str, samples: TaskSamples) -> None:
    means = mean_metrics(data["configs"].get(task) or {})
    for name, (value, _) in aggregates(data["results"].get(task) or {}).items():
        per_doc = [v.get(name) for v in samples.values.values()]
        if value is None or name.split(",")[0] not in means or not per_doc or None in per_doc:
            continue
        if abs(sum(per_doc) / len(per_doc) - value) > MEAN_TOLERANCE * max(1.0, abs(value)):
            raise UserError(f"{samples.path}: the mean of its `{name}` values is {sum(per_doc) / len(per_doc):.6g}, "
                            f"but {results_path.name} reports {value:.6g} for {task}; not the samples of these results")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
