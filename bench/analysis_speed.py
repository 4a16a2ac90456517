"""Time `analyze` (bootstraps included) on synthetic store frames: 20 models x 10 tasks x 1,000 items.

Usage: python bench/analysis_speed.py [--models 20] [--tasks 10] [--items 1000] [--n-boot 1000]
Prints the seconds taken; the target is < 10 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from beyondscale.analysis import analyze


def synthetic_frames(n_models: int = 20, n_tasks: int = 10, n_items: int = 1000, seed: int = 0
                     ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Store-shaped frames where accuracy follows s_inf - A N^-alpha; the last task is a rolling (bpb) task."""
    rng = np.random.default_rng(seed)
    sizes = np.logspace(7.5, 10.5, n_models).round()
    keys = [f"m{i:02d}" for i in range(n_models)]
    models = pd.DataFrame({
        "model_key": keys, "model": [f"Model-{int(s / 1e6)}M" for s in sizes], "family": "synthetic",
        "ref": keys, "params_total": sizes, "params_embedding": sizes * 0.1, "params_non_embedding": sizes * 0.9,
        "params_active": sizes, "flops_per_token": 2 * sizes, "bytes_on_disk": 2 * sizes, "dtype": "bfloat16",
        "architecture": "LlamaForCausalLM", "max_context": 2048, "training_tokens": 20 * sizes,
        "training_flops": 120 * sizes**2,
    })
    item_rows, score_rows, eff_rows = [], [], []
    for t in range(n_tasks):
        task = f"task{t}"
        rolling = t == n_tasks - 1
        difficulty = rng.normal(0, 1.5, n_items)
        for key, name, size in zip(keys, models["model"], sizes, strict=True):
            ability = 3.0 - 40.0 * size**-0.2
            if rolling:
                nbytes = rng.integers(200, 2000, n_items).astype(float)
                bpb_true = 0.8 + 30 * size**-0.25
                logprob = -nbytes * np.log(2) * bpb_true * np.exp(rng.normal(0, 0.05, n_items))
                doc = np.arange(n_items)
                item_rows += [pd.DataFrame({"model_key": key, "model": name, "task": task, "doc_id": doc,
                                            "metric": m, "value": v})
                              for m, v in (("logprob", logprob), ("bytes", nbytes))]
                bpb = -logprob.sum() / np.log(2) / nbytes.sum()
                score_rows.append((key, name, task, "bits_per_byte", bpb, 0.002, n_items))
            else:
                p = 0.25 + 0.75 / (1 + np.exp(-(ability - difficulty)))
                acc = (rng.random(n_items) < p).astype(float)
                acc_norm = np.where(rng.random(n_items) < 0.9, acc, 1 - acc)
                conf = np.clip(p + rng.normal(0, 0.1, n_items), 0.25, 1.0)
                brier = (1 - conf) ** 2 * acc + conf**2 * (1 - acc)
                doc = np.arange(n_items)
                for m, v in (("acc", acc), ("acc_norm", acc_norm), ("brier", brier), ("confidence", conf)):
                    item_rows.append(pd.DataFrame({"model_key": key, "model": name, "task": task, "doc_id": doc,
                                                   "metric": m, "value": v}))
                    if m != "confidence":
                        score_rows.append((key, name, task, m, v.mean(), v.std() / np.sqrt(n_items), n_items))
            secs = 1 + size / 1e8 * (1 + 0.1 * rng.random())
            tokens = 200_000.0
            energy = secs * 150
            eff_rows.append({
                "model_key": key, "model": name, "task": task, "seconds": secs, "tokens_in": tokens, "tokens_out": 0,
                "tokens_per_s": tokens / secs, "latency_ms_per_item": 1000 * secs / n_items,
                "peak_memory_bytes": 2 * size + 5e8, "energy_j": energy, "energy_source": "estimate:tdp",
                "joules_per_token": energy / tokens, "gco2e_per_1k_tokens": energy / tokens * 0.1,
                "usd_per_1m_tokens": secs * 2e-4 / tokens * 1e6, "usd_per_correct": np.nan, "mfu": 0.3})
    scores = pd.DataFrame(score_rows, columns=["model_key", "model", "task", "metric", "value", "stderr", "n_items"])
    return models, scores, pd.DataFrame(eff_rows), pd.concat(item_rows, ignore_index=True)


def main() -> None:
    """Build the frames, time one `analyze` call, print the seconds."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    frames = synthetic_frames(args.models, args.tasks, args.items)
    t0 = time.perf_counter()
    an = analyze(*frames, n_boot=args.n_boot, seed=0)
    dt = time.perf_counter() - t0
    print(f"analyze: {args.models} models x {args.tasks} tasks x {args.items} items, n_boot={args.n_boot}: "
          f"{dt:.2f} s ({len(an.paired)} paired tests, {int((an.fits['status'] == 'ok').sum())} fit rows ok, "
          f"{len(an.curves)} curve points)")
    print(f"{dt:.3f}")


if __name__ == "__main__":
    main()
