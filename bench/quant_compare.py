"""Cheaper, not bigger: fp32 vs int8 (and int4) variants of the real models on the quickstart tasks.

Runs the public CLI (`beyondscale eval --quantize ...`, then `beyondscale analyze`) into one store,
prints what it printed, then one row per variant (accuracy, bits-per-byte, tokens/s, peak memory,
bytes in memory) and the paired tests of each quantised variant against its own fp32 on the same items.

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
    """One row per variant, and each quantised variant's paired tests against its own fp32."""
    import pandas as pd

    from beyondscale import api

    analysis, frames = api.analyze(store, n_boot=1000)
    models = frames.models.set_index("model_key")
    wide = frames.scores.pivot_table(index="model_key", columns=["task", "metric"], values="value")
    eff = frames.efficiency.groupby("model_key")[["tokens_per_s", "peak_memory_bytes"]].agg(
        {"tokens_per_s": "median", "peak_memory_bytes": "max"})
    rows = []
    for key in models.index:
        facts = api_facts(store, key)
        rows.append({"model": models.loc[key, "model"] if "model" in models else models.loc[key, "name"],
                     "quantization": facts.get("quantization"),
                     "acc nextsent": wide.loc[key].get(("qs_nextsent", "acc")),
                     "exact pattern": wide.loc[key].get(("qs_pattern", "exact_match")),
                     "bpb": wide.loc[key].get(("qs_bpb", "bits_per_byte")),
                     "tokens/s (median batch)": eff.loc[key, "tokens_per_s"] if key in eff.index else None,
                     "peak MiB": (eff.loc[key, "peak_memory_bytes"] or 0) / 2**20 if key in eff.index else None,
                     "weights MiB": (facts.get("bytes_in_memory") or 0) / 2**20})
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        paired = analysis.paired
        base = {k: str(v).rsplit("-int", 1)[0] for k, v in zip(paired.model_a, paired.model_a, strict=True)}
        same = paired[[base.get(a) == str(b).rsplit("-int", 1)[0] for a, b in
                       zip(paired.model_a, paired.model_b, strict=True)]]
        cols = ["task", "metric", "model_a", "model_b", "n_items", "effect", "ci_low", "ci_high", "p_value",
                "test", "significant"]
        print("paired tests, each variant against the same model's other precision (same items):")
        print(same[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def api_facts(store: str, key: str) -> dict:
    import json
    import sqlite3

    with sqlite3.connect(store) as conn:
        row = conn.execute("SELECT facts FROM models WHERE model_key=?", (key,)).fetchone()
    return json.loads(row[0]) if row else {}


if __name__ == "__main__":
    sys.exit(main())
