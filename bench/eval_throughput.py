"""Throughput against lm-evaluation-harness on a 4-choice multi-token task, same model, same run.

Both sides get the model already in memory (load time excluded) and score the same documents of
the quickstart's next-sentence task (four multi-token choices after one long shared context).
After one warm-up each, the two alternate for --rounds rounds; the script prints each side's
median items/s, the ratio, and checks that the scores are identical.

    python bench/eval_throughput.py --model smollm2 --model gemma3 --limit 60 --rounds 3

Peer: lm-evaluation-harness `HFLM` (its HF backend) with `--lm-eval-batch-size` (default 8),
driven through `simple_evaluate` with the same task YAML. beyondscale: `Engine` with its
automatic batch size plus `metrics.score`. Never run two benches at once on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _peer import lm_eval_task_dir, quickstart_tasks, require_lm_eval, resolve_model  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="HF folder, .gguf, 'smollm2' or 'gemma3'")
    parser.add_argument("--task", help="a multiple_choice task YAML (default: quickstart qs_nextsent)")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lm-eval-batch-size", type=int, default=8)
    args = parser.parse_args()
    require_lm_eval()

    import torch
    from lm_eval.tasks import TaskManager

    from beyondscale.tasks import build_items, load_task

    work = Path(tempfile.mkdtemp(prefix="bs-throughput-"))
    task_file = Path(args.task).resolve() if args.task else quickstart_tasks(None, work / "tasks")["qs_nextsent"]
    (peer_task,) = lm_eval_task_dir([task_file], work / "lm_eval_tasks")
    spec = load_task(str(task_file))
    items = build_items(spec, limit=args.limit)
    manager = TaskManager(include_path=str(work / "lm_eval_tasks"))
    print(f"torch threads: {torch.get_num_threads()}, task {spec.name}, {len(items)} items x "
          f"{len(items[0].continuations)} choices")

    overall_ok = True
    for model_spec in args.model:
        overall_ok &= bench_model(model_spec, spec, items, peer_task, manager, args)
    return 0 if overall_ok else 1


def bench_model(model_spec, spec, items, peer_task, manager, args) -> bool:
    """One model: warm-up, then alternate lm-eval and beyondscale; print the ratio."""
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from beyondscale.engine import Engine
    from beyondscale.metrics import score

    name, folder, _ = resolve_model(model_spec)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    peer_lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.lm_eval_batch_size, device="cpu")

    def run_peer():
        res = simple_evaluate(model=peer_lm, tasks=[peer_task], limit=args.limit, task_manager=manager,
                              log_samples=False)
        metrics = res["results"][peer_task]
        return metrics["acc,none"], metrics["acc_norm,none"]

    def run_ours():
        engine = Engine(model, tokenizer)
        results = [r for batch in engine.plan(items) for r in engine.run_batch(batch)]
        agg = score(spec.output_type, ["acc", "acc_norm"], items, results).aggregates
        return agg["acc"][0], agg["acc_norm"][0]

    peer_scores, our_scores = run_peer(), run_ours()  # warm-up (and the scores to compare)
    times: dict[str, list[float]] = {"lm-eval": [], "beyondscale": []}
    for _ in range(args.rounds):
        for side, fn in (("lm-eval", run_peer), ("beyondscale", run_ours)):
            start = time.perf_counter()
            fn()
            times[side].append(time.perf_counter() - start)
    peer_t, ours_t = statistics.median(times["lm-eval"]), statistics.median(times["beyondscale"])
    same = peer_scores == our_scores
    print(f"{name}: lm-eval {len(items) / peer_t:.2f} items/s (median of {args.rounds}: {peer_t:.2f} s), "
          f"beyondscale {len(items) / ours_t:.2f} items/s ({ours_t:.2f} s) -> ratio {peer_t / ours_t:.2f}x; "
          f"acc/acc_norm lm-eval {peer_scores} beyondscale {our_scores}: {'identical' if same else 'DIFFERENT'}")
    return same


if __name__ == "__main__":
    sys.exit(main())
