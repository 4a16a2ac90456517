"""CrowS-Pairs: beyondscale against lm-evaluation-harness 0.4.13 on the same model and the same rows.

The rows are built here, in a temporary folder, in the authors' CSV layout: minimal pairs from the
counterfactual probe set written for beyondscale (two terms of one axis in one template), so no
third-party text is needed. lm-evaluation-harness runs its own `crows_pairs_english` task file
(included from the installed package: same doc_to_choice, process_results, empty context), only
pointed at the local CSV; beyondscale reads its pairs through that same task file. Checks: identical pct_stereotype per pair, likelihood_diff within 1e-4
per pair, and the same aggregates.

    flock /tmp/beyondscale-bench.lock python bench/compare_crows.py --model smollm2 [--limit 60]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _peer import require_lm_eval, resolve_model  # noqa: E402

TOL = 1e-4


def write_rows(path: Path, limit: int) -> int:
    from beyondscale.bias.counterfactual import load_probe_set

    probes = load_probe_set()
    rows = []
    for axis, terms in probes["axes"].items():
        for a, b in itertools.combinations(terms, 2):
            for j, t in enumerate(probes["templates"]):
                direction = "stereo" if (j + len(rows)) % 3 else "antistereo"
                rows.append((t["text"].replace("{term}", a), t["text"].replace("{term}", b), direction, axis))
    rows = rows[::max(1, len(rows) // limit)][:limit]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(("", "sent_more", "sent_less", "stereo_antistereo", "bias_type"))
        w.writerows((i, *r) for i, r in enumerate(rows))
    return len(rows)


def lm_eval_task(folder: Path, data: Path) -> str:
    import lm_eval

    base = Path(lm_eval.__file__).parent / "tasks" / "crows_pairs" / "crows_pairs_english.yaml"
    spec = {"include": str(base), "task": "peer_crows_pairs_local", "tag": [], "dataset_path": "csv",
            "dataset_name": None, "dataset_kwargs": {"data_files": {"test": str(data)}}}
    (folder / "peer_crows.yaml").write_text(yaml.safe_dump(spec))
    return spec["task"]


def run_lm_eval(model_folder: Path, task_dir: Path, task: str, batch_size: int):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    start = time.perf_counter()
    res = simple_evaluate(model="hf", model_args=f"pretrained={model_folder},dtype=float32", tasks=[task],
                          device="cpu", batch_size=batch_size, log_samples=True,
                          task_manager=TaskManager(include_path=str(task_dir)))
    seconds = time.perf_counter() - start
    samples = sorted(res["samples"][task], key=lambda s: s["doc_id"])
    per_pair = [(s["pct_stereotype"], s["likelihood_diff"]) for s in samples]
    metrics = {k.split(",")[0]: v for k, v in res["results"][task].items() if not k.startswith("alias")}
    return per_pair, metrics, seconds


def run_beyondscale(spec: str, task_file: Path):
    """Through the same lm-eval task file lm-eval runs (beyondscale loads it, and its rows, through lm-eval)."""
    from beyondscale.bias import crows
    from beyondscale.interpret.loading import load_probe_model

    pm = load_probe_model(spec, device="cpu")
    start = time.perf_counter()
    pairs = crows.read_pairs(task_file)
    doc, lls = crows.score_crows(pm.model, pm.tokenizer, pairs)
    seconds = time.perf_counter() - start
    stereo, diff = crows.pair_scores(lls)
    return list(zip(stereo.tolist(), diff.tolist(), strict=True)), doc, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="smollm2, gemma3, a HF folder or a .gguf")
    parser.add_argument("--limit", type=int, default=60, help="number of crafted pairs")
    parser.add_argument("--batch-size", type=int, default=8, help="lm-eval's batch size")
    args = parser.parse_args()
    require_lm_eval()
    name, folder, spec = resolve_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "crows_crafted.csv"
        n = write_rows(data, args.limit)
        task = lm_eval_task(Path(tmp), data)
        ours, doc, t_ours = run_beyondscale(spec, Path(tmp) / "peer_crows.yaml")
        from beyondscale.bias import crows

        same_rows = crows.read_pairs(Path(tmp) / "peer_crows.yaml") == crows.read_pairs(data)
        theirs, metrics, t_theirs = run_lm_eval(folder, Path(tmp), task, args.batch_size)
    assert len(ours) == len(theirs) == n, (len(ours), len(theirs), n)
    stereo_mismatch = sum(a[0] != b[0] for a, b in zip(ours, theirs, strict=True))
    max_diff = max(abs(a[1] - b[1]) for a, b in zip(ours, theirs, strict=True))
    report = {
        "model": name, "pairs": n,
        "beyondscale": {"pct_stereotype": doc["pct_stereotype"], "likelihood_diff": doc["likelihood_diff"],
                        "seconds": round(t_ours, 2)},
        "lm_eval": {"pct_stereotype": metrics["pct_stereotype"], "likelihood_diff": metrics["likelihood_diff"],
                    "seconds": round(t_theirs, 2)},
        "pairs_with_different_pct_stereotype": stereo_mismatch,
        "max_abs_likelihood_diff_difference": max_diff,
        "task_file_pairs_equal_csv_pairs": same_rows,
        "pass": stereo_mismatch == 0 and max_diff <= TOL and same_rows,
    }
    print(json.dumps(report, indent=2))
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
