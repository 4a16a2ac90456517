"""Exactness against lm-evaluation-harness: same model, same local task data, identical scores.

Runs lm-evaluation-harness's HF backend and beyondscale on a multiple-choice task with
multi-token choices (the quickstart's next-sentence task) and a rolling-perplexity task
(bits-per-byte), then compares every log-likelihood item by item and the aggregate metrics.

    python bench/compare_lm_eval.py --model smollm2 --model gemma3 --limit 40
    python bench/compare_lm_eval.py --model path/to/hf-folder --tasks my_task.yaml

Exit status 1 if any log-likelihood differs by more than --tol or any acc/acc_norm differs.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _peer import lm_eval_task_dir, quickstart_tasks, require_lm_eval, resolve_model  # noqa: E402


def flatten_lls(resps) -> list[float]:
    """lm-eval's per-request responses -> one float per continuation (or per document)."""
    out = []
    for r in resps:
        while isinstance(r, list | tuple) and r and isinstance(r[0], list | tuple):
            r = r[0]
        out.append(float(r[0] if isinstance(r, list | tuple) else r))
    return out


def run_lm_eval(folder: Path, task_dir: Path, task_names: list[str], limit: int | None, batch_size: int):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    start = time.perf_counter()
    res = simple_evaluate(
        model="hf", model_args=f"pretrained={folder},dtype=float32", tasks=task_names, device="cpu",
        batch_size=batch_size, limit=limit, log_samples=True, task_manager=TaskManager(include_path=str(task_dir)),
    )
    seconds = time.perf_counter() - start
    samples = {t: {s["doc_id"]: flatten_lls(s["resps"]) for s in res["samples"][t]} for t in task_names}
    metrics = {t: {k.split(",")[0]: v for k, v in res["results"][t].items() if not k.startswith("alias")}
               for t in task_names}
    return samples, metrics, seconds


def run_beyondscale(spec: str, task_files: list[Path], limit: int | None, store: Path):
    from beyondscale import api

    start = time.perf_counter()
    result = api.evaluate([spec], [str(p) for p in task_files], store=store,
                          settings=api.EvalSettings(limit=limit, device="cpu"), show_progress=False)
    seconds = time.perf_counter() - start
    conn = sqlite3.connect(store)
    per_task = {}
    for r in result.results:
        rows = conn.execute("SELECT doc_id, result FROM items WHERE model_key=? AND task_key=?",
                            (r.model_key, r.task_key))
        per_task[r.task] = {d: json.loads(res)["logprobs"] for d, res in rows}
    conn.close()
    return per_task, {r.task: r.metrics for r in result.results}, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True,
                        help="HF folder, .gguf file, or 'smollm2' / 'gemma3' (the quickstart's packaged models)")
    parser.add_argument("--tasks", nargs="*", help="task YAML files (default: quickstart qs_nextsent + qs_bpb)")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--lm-eval-batch-size", type=int, default=8)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--self-check", action="store_true",
                        help="also run lm-eval at batch size 1 and report how far lm-eval moves from itself")
    args = parser.parse_args()
    require_lm_eval()

    work = Path(tempfile.mkdtemp(prefix="bs-compare-"))
    if args.tasks:
        task_files = [Path(t).resolve() for t in args.tasks]
    else:
        qs = quickstart_tasks(None, work / "tasks")
        task_files = [qs["qs_nextsent"], qs["qs_bpb"]]
    peer_names = lm_eval_task_dir(task_files, work / "lm_eval_tasks")
    ok = True
    print(f"{'model':<24} {'task':<12} {'n':>4} {'max|Δll|':>10} {'metric':<16} {'beyondscale':>12} "
          f"{'lm-eval':>12}  verdict")
    for model in args.model:
        name, folder, spec = resolve_model(model)
        theirs, their_metrics, t_peer = run_lm_eval(folder, work / "lm_eval_tasks", peer_names, args.limit,
                                                    args.lm_eval_batch_size)
        ours, our_metrics, t_ours = run_beyondscale(spec, task_files, args.limit, work / f"{name}.db")
        if args.self_check:
            theirs_bs1, _, _ = run_lm_eval(folder, work / "lm_eval_tasks", peer_names, args.limit, 1)
            for peer in peer_names:
                drift = max(abs(a - b) for d in theirs[peer] for a, b in
                            zip(theirs[peer][d], theirs_bs1[peer][d], strict=True))
                print(f"{name:<24} {peer.removeprefix('peer_'):<12} lm-eval batch {args.lm_eval_batch_size} vs "
                      f"batch 1: max|Δll| {drift:.2e} (lm-eval's own float32 reproducibility)")
        for peer in peer_names:
            task = peer.removeprefix("peer_")
            docs = sorted(set(theirs[peer]) & set(ours[task]))
            diffs = [abs(a - b) for d in docs for a, b in zip(ours[task][d], theirs[peer][d], strict=True)]
            max_diff = max(diffs) if diffs else math.nan
            same_docs = len(docs) == len(theirs[peer]) == len(ours[task])
            for metric in ("acc", "acc_norm", "bits_per_byte", "word_perplexity"):
                if metric not in their_metrics[peer]:
                    continue
                mine, peer_value = our_metrics[task].get(metric), their_metrics[peer][metric]
                exact = metric.startswith("acc")
                agree = mine is not None and (
                    mine == peer_value if exact else abs(mine - peer_value) <= 1e-4 * max(1.0, abs(peer_value))
                )
                verdict = "identical" if agree and max_diff <= args.tol and same_docs else "DIFFERENT"
                ok &= verdict == "identical"
                print(f"{name:<24} {task:<12} {len(docs):>4} {max_diff:>10.2e} {metric:<16} {mine:>12.6f} "
                      f"{peer_value:>12.6f}  {verdict}")
        print(f"{name:<24} wall time incl. model load: beyondscale {t_ours:.1f} s, lm-eval {t_peer:.1f} s")
    print("ALL IDENTICAL" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
