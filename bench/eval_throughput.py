"""Throughput against lm-evaluation-harness on multiple-choice tasks, same model, same run, and the limit.

Both sides get the model already in memory (load time excluded) and score the same documents of
the quickstart's next-sentence task (four multi-token choices after one long shared context) and
of a short-answer task (three ~4-token choices after a ~70-token context, `short_answer_task.py`).
After one warm-up each, the two alternate for --rounds rounds; the script prints each side's
median items/s, the ratio, and checks that the scores are identical.

The limit: for an item with context C and choices L_i, lm-evaluation-harness runs sum(C + L_i - 1)
positions through the body and the full vocabulary head at each; the least any exact scorer must run
is C + sum(L_i - 1) body positions (the context once) and sum(L_i) head positions (the scored ones).
Both totals are counted on the benchmark's own items with lm-eval's tokenisation, turned into
forward FLOPs with the model's shape (`FlopShape`: body matmuls, attention over the tokens each
position sees, head), and their quotient is the limit ratio printed beside the measured one.

    python bench/eval_throughput.py --model smollm2 --model gemma3 --task qs_nextsent --task short_answer

Peer: lm-evaluation-harness `HFLM` (its HF backend) with `--lm-eval-batch-size` (default 8),
driven through `simple_evaluate` with the same task YAML. beyondscale: `Engine` with its
automatic batch size plus `metrics.score`. Never run two benches at once on this machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _peer import lm_eval_task_dir, quickstart_tasks, require_lm_eval, resolve_model  # noqa: E402
from short_answer_task import write_task  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="HF folder, .gguf, 'smollm2' or 'gemma3'")
    parser.add_argument("--task", action="append",
                        help="qs_nextsent, short_answer, qs_bpb (rolling) or a task YAML (repeatable; default all three)")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lm-eval-batch-size", type=int, default=8)
    args = parser.parse_args()
    require_lm_eval()

    import torch
    from lm_eval.tasks import TaskManager

    from beyondscale.tasks.harness import load_tasks, task_manager
    from beyondscale.tasks.lm_eval_items import plan_items

    work = Path(tempfile.mkdtemp(prefix="bs-throughput-"))
    tasks = []
    for name in args.task or ["qs_nextsent", "short_answer", "qs_bpb"]:
        if name in ("qs_nextsent", "qs_bpb"):
            task_file = quickstart_tasks(None, work / "tasks")[name]
        elif name == "short_answer":
            task_file = write_task(work / "short", n=max(args.limit, 1))
        else:
            task_file = Path(name).resolve()
        (peer_task,) = lm_eval_task_dir([task_file], work / "lm_eval_tasks")
        loaded = load_tasks([str(task_file)], manager=task_manager(include_defaults=False))
        (planned,) = plan_items(loaded, {"limit": args.limit}).values()
        tasks.append((loaded, planned, peer_task))
    manager = TaskManager(include_path=str(work / "lm_eval_tasks"))
    print(f"torch threads: {torch.get_num_threads()}, load average at start {os.getloadavg()}")

    rows = []
    for model_spec in args.model:
        for loaded, planned, peer_task in tasks:
            items = planned.items
            print(f"task {planned.name}: {len(items)} items" + (
                f" x {len(items[0].continuations)} choices" if items[0].continuations else " (rolling)"))
            rows.append(bench_model(model_spec, loaded, planned, peer_task, manager, args))
    print_table(rows)
    print(f"load average at end {os.getloadavg()}")
    return 0 if all(r["same"] for r in rows) else 1


def print_table(rows: list[dict]) -> None:
    """One line per model x task: both sides' items/s, the measured and limit ratios, the fraction."""
    print(f"{'model':<22} {'task':<13} {'items':>5} {'ours it/s':>9} {'lm-eval it/s':>12} {'ratio':>6} "
          f"{'limit':>6} {'of limit':>8}  scores     load (1/5/15 min)")
    for r in rows:
        load = "/".join(f"{x:.1f}" for x in r["load"])
        print(f"{r['model']:<22} {r['task']:<13} {r['items']:>5} {r['ours']:>9.2f} {r['peer']:>12.2f} "
              f"{r['ratio']:>5.2f}x {r['limit']:>5.2f}x {r['ratio'] / r['limit']:>8.0%}  "
              f"{'identical' if r['same'] else 'DIFFERENT':<10} {load}")


def limit_ratio(engine, items) -> tuple[dict[str, int], float]:
    """Token totals of lm-eval and of the least exact scorer on `items`, and their forward-FLOP ratio.

    The least scorer runs the inputs the choices share (the context, and any common start of the
    choices) once, then each choice's own inputs; it projects a position to the vocabulary once
    however many choices score from it (the context's last token predicts every choice's first)."""
    from beyondscale.engine.tokens import loglik_span, rolling_spans

    shape = engine.flop_shape
    totals = {"lm_eval_body": 0, "lm_eval_head": 0, "min_body": 0, "min_head": 0}
    peer_flops = min_flops = 0.0
    for item in items:
        if item.output_type == "loglikelihood_rolling":  # disjoint windows: nothing shared, all scored
            for s in rolling_spans(engine.tok.encode(item.text), engine.tok.prefix_token_id, engine.max_length, None):
                n_in = len(s.seq) - 1
                for key in totals:
                    totals[key] += n_in if key != "min_head" else s.n_scored
                peer_flops += shape.forward(0, n_in, n_in)
                min_flops += shape.forward(0, n_in, s.n_scored)
            continue
        pairs = [engine.tok.encode_pair(item.context, c) for c in item.continuations]
        spans = [loglik_span(i, ctx, cont, engine.max_length) for i, (ctx, cont) in enumerate(pairs)]
        inputs = [s.seq[:-1] for s in spans]
        shared = next((n for n, col in enumerate(zip(*inputs, strict=False)) if len(set(col)) > 1),
                      min(map(len, inputs)))
        shared_scored = set()
        for s, x in zip(spans, inputs, strict=True):
            first = len(x) - s.n_scored  # first input position whose logits are scored
            totals["lm_eval_body"] += len(x)
            totals["lm_eval_head"] += len(x)
            peer_flops += shape.forward(0, len(x), len(x))
            own_scored = len(x) - max(first, shared)
            shared_scored.update(range(first, shared))
            totals["min_body"] += len(x) - shared
            totals["min_head"] += own_scored
            min_flops += shape.forward(shared, len(x), own_scored)
        totals["min_body"] += shared
        totals["min_head"] += len(shared_scored)
        min_flops += shape.forward(0, shared, len(shared_scored))
    return totals, peer_flops / min_flops


def bench_model(model_spec, loaded, planned, peer_task, manager, args) -> dict:
    """One model: warm-up, then alternate lm-eval and beyondscale; print the ratio and the limit."""
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from beyondscale.engine import Engine
    from beyondscale.tasks.lm_eval_items import score_planned

    items = planned.items
    name, folder, _ = resolve_model(model_spec)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    peer_lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.lm_eval_batch_size, device="cpu")

    names = ["bits_per_byte"] if items[0].output_type == "loglikelihood_rolling" else ["acc", "acc_norm"]

    def run_peer():
        res = simple_evaluate(model=peer_lm, tasks=[peer_task], limit=args.limit, task_manager=manager,
                              log_samples=False)
        metrics = res["results"][peer_task]
        return tuple(metrics[f"{n},none"] for n in names)

    def run_ours():
        engine = Engine(model, tokenizer)
        by_item = {}
        for batch in engine.plan(items):
            by_item.update(zip(batch, engine.run_batch(batch), strict=True))
        metrics = score_planned(loaded, planned, [by_item[i] for i in items], {"limit": args.limit})["results"]
        return tuple(metrics[planned.name][f"{n},none"] for n in names)

    peer_scores, our_scores = run_peer(), run_ours()  # warm-up (and the scores to compare)
    times: dict[str, list[float]] = {"lm-eval": [], "beyondscale": []}
    for _ in range(args.rounds):
        for side, fn in (("lm-eval", run_peer), ("beyondscale", run_ours)):
            start = time.perf_counter()
            fn()
            times[side].append(time.perf_counter() - start)
    peer_t, ours_t = statistics.median(times["lm-eval"]), statistics.median(times["beyondscale"])
    same = peer_scores == our_scores if names[0] == "acc" else all(
        abs(a - b) <= 1e-4 * max(1.0, abs(b)) for a, b in zip(our_scores, peer_scores, strict=True))
    totals, limit = limit_ratio(Engine(model, tokenizer), items)
    measured = peer_t / ours_t
    print(f"{name}: lm-eval {len(items) / peer_t:.2f} items/s (median of {args.rounds}: {peer_t:.2f} s), "
          f"beyondscale {len(items) / ours_t:.2f} items/s ({ours_t:.2f} s) -> ratio {measured:.2f}x; "
          f"{'/'.join(names)} lm-eval {peer_scores} beyondscale {our_scores}: {'identical' if same else 'DIFFERENT'}")
    print(f"{name}: positions lm-eval body {totals['lm_eval_body']} head {totals['lm_eval_head']}; minimum body "
          f"{totals['min_body']} head {totals['min_head']} -> limit ratio {limit:.2f}x (forward FLOPs); measured "
          f"{measured:.2f}x = {measured / limit:.0%} of the limit; load average {os.getloadavg()}")
    return {"model": name, "task": planned.name, "items": len(items), "ours": len(items) / ours_t,
            "peer": len(items) / peer_t, "ratio": measured, "limit": limit, "same": same, "load": os.getloadavg()}


if __name__ == "__main__":
    sys.exit(main())
