"""Per-unit overhead of the Ray executor against the local loop, for small units.

Builds K tiny random Llama folders (K units: a unit is one model with all its tasks) and one small
multiple-choice task, then evaluates them into fresh stores with the local executor and with Ray
(a loopback cluster started once, its start-up time printed apart), alternating A/B/B/A over R rounds
after one warm-up round so drift hits every arm alike. Ray runs twice: one unit at a time (capacity 1:
the pure per-unit cost of shipping a unit, scheduling it and streaming its batches back) and as many
at once as the cluster has CPUs (what a user gets).

    flock /tmp/beyondscale-bench.lock python bench/ray_overhead.py --units 6 --items 8 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1] / "tests")
)  # the tests' tiny tokenizer (no download)


def build_models(folder: Path, k: int) -> list[str]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from _tiny_models import tiny_tokenizer

    tok = tiny_tokenizer()
    paths = []
    for i in range(k):
        torch.manual_seed(i)
        cfg = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        )
        path = folder / f"tiny-{i}"
        LlamaForCausalLM(cfg).save_pretrained(path)
        tok.save_pretrained(path)
        paths.append(str(path))
    return paths


def build_task(folder: Path, n: int) -> str:
    rows = [
        {
            "question": f"the cat sat on the mat {i}",
            "choices": ["dog ran", "bird sat", "fox jumped", "sun"],
            "label": i % 4,
        }
        for i in range(n)
    ]
    (folder / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "mc.yaml").write_text(
        "task: overhead_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: mc.jsonl\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{question}}'\ndoc_to_target: label\n"
        "doc_to_choice: choices\nmetric_list:\n  - metric: acc\n"
    )
    return str(folder / "mc.yaml")


def timed(models: list[str], task: str, store: Path, executor) -> float:
    from beyondscale import api

    start = time.perf_counter()
    result = api.evaluate(
        models,
        [task],
        store=store,
        settings=api.EvalSettings(device="cpu", batch_size=4),
        show_progress=False,
        executor=executor,
    )
    assert result.succeeded == len(models) and not result.failed
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=6, help="tiny models, one unit each")
    ap.add_argument("--items", type=int, default=8, help="documents in the task")
    ap.add_argument("--rounds", type=int, default=3, help="measured rounds (A/B/B/A order alternates)")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the loopback Ray cluster")
    args = ap.parse_args()

    import ray

    from beyondscale.executors import RayExecutor

    tmp = Path(tempfile.mkdtemp(prefix="ray-overhead-"))
    models, task = build_models(tmp, args.units), build_task(tmp, args.items)
    start = time.perf_counter()
    ray.init(
        address="local",
        num_cpus=args.cpus,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    startup = time.perf_counter() - start
    arms = {"local": lambda: None, "ray-serial": lambda: RayExecutor(capacity=1), "ray-parallel": RayExecutor}
    times: dict[str, list[float]] = {name: [] for name in arms}
    runs = 0
    for rnd in range(args.rounds + 1):  # round 0 warms up: imports, Ray's worker pool
        order = list(arms) if rnd % 2 == 0 else list(reversed(arms))
        for name in order:
            runs += 1
            seconds = timed(models, task, tmp / f"{runs}.db", arms[name]())
            if rnd > 0:
                times[name].append(seconds)
    ray.shutdown()

    local = statistics.median(times["local"])
    print(
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
        f"{args.units} units x {args.items} items; Ray cluster start {startup:.2f} s (once per driver)"
    )
    print(f"{'arm':<14}{'median s':>10}{'ms/unit':>10}{'overhead ms/unit':>18}{'ratio vs local':>16}")
    doc = {
        "units": args.units,
        "items": args.items,
        "rounds": args.rounds,
        "ray_start_s": startup,
        "loadavg": os.getloadavg(),
    }
    for name, values in times.items():
        med = statistics.median(values)
        per_unit = med / args.units * 1e3
        over = (med - local) / args.units * 1e3
        print(f"{name:<14}{med:>10.3f}{per_unit:>10.1f}{over:>18.1f}{med / local:>16.2f}")
        doc[name] = {
            "median_s": med,
            "ms_per_unit": per_unit,
            "overhead_ms_per_unit": over,
            "ratio": med / local,
            "all_s": values,
        }
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
