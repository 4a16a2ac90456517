"""Normalise the store frames for analysis and build the model table (one row per model key, size order).

Every decision downstream is taken on model and task keys; names are display labels. Size order is
(size, model_key): never a name, so renaming a model cannot change any result.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

EFF_COLS = ("tokens_per_s", "ms_per_item", "peak_memory_bytes", "joules_per_token", "energy_source",
            "gco2e_per_1k_tokens", "carbon_source", "usd_per_1m_tokens", "usd_per_correct", "cost_source", "mfu")
SOURCE_COLS = ("energy_source", "carbon_source", "cost_source")
SIZE_FACTS = ("params_total", "params_active", "params_non_embedding", "flops_per_token", "training_tokens",
              "training_flops")
FRAMING_FACTS = ("family", "architecture", "vocab_size", "dtype", "quantization", "tokenizer_key")
MODEL_COLS = ("model_key", "model", *FRAMING_FACTS, *SIZE_FACTS)
SCORE_COLS = ("model_key", "model", "task", "task_key", "metric", "value", "stderr", "n_items")
EFF_FRAME_COLS = ("model_key", "model", "task", "task_key", "seconds", "tokens_in", "tokens_out", *EFF_COLS)
ITEM_COLS = ("model_key", "model", "task", "task_key", "doc_id", "metric", "value")
TASK_COLS = ("task_key", "task", "created", "n_items")


def num(v: Any) -> float:
    """A float, NaN for anything that is not a number."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def frame(df: pd.DataFrame | None, cols: tuple[str, ...]) -> pd.DataFrame:
    """A copy with every expected column (NaN when absent); old frames are read under the contract's names:
    `latency_ms_per_item` as `ms_per_item`, a missing `task_key` as the task name (one version per name)."""
    out = pd.DataFrame() if df is None else df.copy()
    if "latency_ms_per_item" in out.columns and "ms_per_item" not in out.columns:
        out = out.rename(columns={"latency_ms_per_item": "ms_per_item"})
    for c in cols:
        if c not in out.columns:
            out[c] = np.nan
    if "task_key" in cols and out["task_key"].isna().all():
        out["task_key"] = out["task"]
    if "model_key" in out.columns and out["model_key"].isna().all() and out["model"].notna().any():
        out["model_key"] = out["model"]
    return out


def _names(frames: tuple[pd.DataFrame, ...]) -> dict[str, str]:
    names: dict[str, str] = {}
    for df in frames:
        pairs = df[["model_key", "model"]].drop_duplicates()
        for k, n in zip(pairs["model_key"].astype(object), pairs["model"].astype(object), strict=False):
            if missing(k) or str(k) in names:
                continue
            names[str(k)] = str(n) if not missing(n) else str(k)
    return names


def _model_row(k: str, name: str, m: pd.DataFrame) -> dict[str, Any]:
    r: dict[str, Any] = {"model_key": k, "model": name}
    for c in FRAMING_FACTS + SIZE_FACTS:
        r[c] = m.at[k, c] if k in m.index and c in m.columns else np.nan
    for c in SIZE_FACTS + ("vocab_size",):
        r[c] = num(r[c])
    if not math.isfinite(r["params_active"]):
        r["params_active"] = r["params_total"]
    if not math.isfinite(r["training_flops"]) and math.isfinite(r["training_tokens"]) \
            and math.isfinite(r["params_total"]):
        r["training_flops"] = 6.0 * r["params_total"] * r["training_tokens"]
    return r


def model_table(models: pd.DataFrame, *others: pd.DataFrame) -> pd.DataFrame:
    """One row per model_key: display name, framing facts, size facts and `size`; sorted by (size, key)."""
    names = _names((models, *others))
    m = models.assign(model_key=models["model_key"].astype(str)).drop_duplicates("model_key").set_index("model_key")
    table = pd.DataFrame([_model_row(k, n, m) for k, n in names.items()], columns=list(MODEL_COLS))
    dup = table["model"].duplicated(keep=False)
    table.loc[dup, "model"] = table.loc[dup, "model"] + " [" + table.loc[dup, "model_key"] + "]"
    size = table["params_total"].where(table["params_total"].notna(), table["params_active"])
    table["size"] = size.where(size.notna(), table["flops_per_token"])
    return table.sort_values(["size", "model_key"], kind="stable", na_position="last").reset_index(drop=True)


LINEAGE_FACTS = ("family", "architecture", "vocab_size", "tokenizer_key", "quantization", "dtype")


def lineage(table: pd.DataFrame) -> dict[str, str]:
    """{model_key: family label}: models share a label when they agree on every framing fact the framing check
    compares (family, architecture, vocabulary, tokenizer, quantisation, dtype; unknown facts are not a
    difference), so a law fitted within a label compares models that differ in size alone."""
    groups: list[tuple[dict[str, Any], str]] = []
    out: dict[str, str] = {}
    for r in table.to_dict("records"):
        facts = {c: r.get(c) for c in LINEAGE_FACTS if not missing(r.get(c))}
        facts.setdefault("quantization", "none")  # no quantisation recorded: the float original
        for known, label in groups:
            if all(known.get(c, v) == v for c, v in facts.items()) and all(facts.get(c, v) == v
                                                                            for c, v in known.items()):
                known.update(facts)
                out[str(r["model_key"])] = label
                break
        else:
            label = str(facts.get("family") or facts.get("architecture") or r["model"])
            taken = {lab for _, lab in groups}
            label = label if label not in taken else f"{label} ({r['model']})"
            groups.append((dict(facts), label))
            out[str(r["model_key"])] = label
    return out


def efficiency_by_model(eff: pd.DataFrame) -> pd.DataFrame:
    """Model-level efficiency: means over tasks, peak memory as the max, sources joined."""
    if eff.empty:
        return pd.DataFrame(columns=["model_key", *EFF_COLS])
    numeric = [c for c in EFF_COLS if c not in SOURCE_COLS and c != "peak_memory_bytes"]
    e = eff.copy()
    for c in numeric + ["peak_memory_bytes"]:
        e[c] = pd.to_numeric(e[c], errors="coerce")
    g = e.groupby("model_key", sort=False)
    out = g[numeric].mean()
    out["peak_memory_bytes"] = g["peak_memory_bytes"].max()
    for c in SOURCE_COLS:
        out[c] = g[c].agg(lambda s: ",".join(sorted({str(v) for v in s if isinstance(v, str) and v})) or None)
    return out.reset_index()[["model_key", *EFF_COLS]]


def is_estimate(source: Any) -> bool:
    """A source (or any ','/'+'-joined part) that starts with 'estimate'."""
    if not isinstance(source, str):
        return False
    return any(p.strip().startswith("estimate") for p in source.replace("+", ",").split(","))


def primary_metric(metrics: list[str]) -> str:
    """The metric a task is judged by: the first of acc, acc_norm, exact_match, ... present, else the first."""
    for m in PRIMARY_ORDER:
        if m in metrics:
            return m
    return sorted(metrics)[0]


PRIMARY_ORDER = ("acc", "acc_norm", "exact_match", "f1", "mc2", "bits_per_byte", "word_perplexity", "perplexity")
# Per-item values that are not quality metrics on their own.
NON_QUALITY = {"confidence", "p_gold", "logprob", "bytes", "words", "tokens", "n_items", "correct", "pred", "gold"}

# Sizes within 5% are "the same size" (quantisation variants, data-only ladders, tied/untied embeddings):
# such a pair is never called smaller/bigger, and neither counts as the cheaper one.
SAME_SIZE_TOL = 0.05


def size_relation(size_a: float, size_b: float) -> int:
    """-1 when b is bigger than a, 1 when a is bigger, 0 when the same size or a size is unknown."""
    if not (math.isfinite(size_a) and math.isfinite(size_b)) or size_a <= 0 or size_b <= 0:
        return 0
    if abs(size_b / size_a - 1.0) <= SAME_SIZE_TOL:
        return 0
    return -1 if size_b > size_a else 1
