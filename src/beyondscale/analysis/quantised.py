"""Quantised variants beside their float originals: what a variant kept and what it saved (`--quantize`).

A variant is found by content, not by name: same architecture, tokenizer, parameter count and dtype as its
original, and its quantisation is the original's plus one step (`gguf:Q4_1` -> `gguf:Q4_1+torchao:int8-...`,
none -> `torchao:int8-...`). Only when two originals fit that equally is the display name (`X` for `X-int8`)
used to choose; a variant that still fits two is left out rather than guessed.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from beyondscale.analysis.context import Context
from beyondscale.analysis.findings import Change, QuantisedVariant
from beyondscale.analysis.inputs import num

SAME = ("architecture", "tokenizer_key", "params_total", "dtype")


def _steps_from(variant: Any, original: Any) -> bool:
    """`variant`'s quantisation is `original`'s plus one more step."""
    q, base = variant, original
    if not isinstance(q, str) or not q:
        return False
    if not isinstance(base, str) or not base:
        return "+" not in q and not q.startswith("gguf")
    return q.startswith(base + "+") and "+" not in q[len(base) + 1:]


def pairs(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(original key, variant key) for every quantised variant whose original is in `table`."""
    rows = table.set_index("model_key")
    out = []
    for v in rows.index:
        fits = [o for o in rows.index if o != v and _steps_from(rows.at[v, "quantization"], rows.at[o, "quantization"])
                and all(_same(rows.at[v, c], rows.at[o, c]) for c in SAME)]
        if len(fits) > 1:
            fits = [o for o in fits if str(rows.at[v, "model"]).startswith(f"{rows.at[o, 'model']}-")]
        if len(fits) == 1:
            out.append((fits[0], v))
    return out


def _same(a: Any, b: Any) -> bool:
    return (pd.isna(a) and pd.isna(b)) or (not pd.isna(a) and not pd.isna(b) and a == b)


def _ratio(frame: pd.DataFrame, col: str, o: str, v: str) -> float:
    if col not in frame.columns or o not in frame.index or v not in frame.index:
        return float("nan")
    a, b = num(frame.at[o, col]), num(frame.at[v, col])
    return b / a if math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0 else float("nan")  # 0: not measured


def _kept(lb: pd.DataFrame, o: str, v: str, columns: list[str]) -> float | None:
    """The variant's accuracy-like primary scores summed, over the original's (None without any)."""
    pairs_ = [(num(lb.at[o, c]), num(lb.at[v, c])) for c in columns]
    pairs_ = [(a, b) for a, b in pairs_ if math.isfinite(a) and math.isfinite(b)]
    total = sum(a for a, _ in pairs_)
    return sum(b for _, b in pairs_) / total if pairs_ and total > 0 else None


def changes(paired: pd.DataFrame, o: str, v: str, primary: dict[str, str]) -> list[Change]:
    """The variant against its original on each task's primary metric (delta = variant - original), from the
    paired test whichever way round it was run."""
    from beyondscale.analysis.derive import primary_rows, pvalue
    from beyondscale.analysis.marginal import higher_is_better, is_accuracy_like

    rows = primary_rows(paired)
    if rows.empty:
        return []
    rows = rows[((rows["model_key_a"] == o) & (rows["model_key_b"] == v))
                | ((rows["model_key_a"] == v) & (rows["model_key_b"] == o))]
    out = []
    for r in rows.itertuples(index=False):
        if primary.get(r.task) != r.metric:
            continue
        delta = (float(r.effect) if r.model_key_b == v else -float(r.effect)) + 0.0  # no -0.0
        improved = delta != 0 and (delta > 0) == higher_is_better(r.metric)
        out.append(Change(r.task, r.metric, delta, improved, is_accuracy_like(r.metric), bool(r.significant),
                          pvalue(r)))
    return out


def quantised_variants(ctx: Context, models: pd.DataFrame, leaderboard: pd.DataFrame, paired: pd.DataFrame,
                       primary: dict[str, str]) -> list[QuantisedVariant]:
    """One finding per variant: accuracy kept, tasks without a significant loss, speed and memory ratios."""
    found = pairs(ctx.table)
    if not found:
        return []
    lb = leaderboard.set_index("model_key")
    facts = models.drop_duplicates("model_key").set_index("model_key")
    out = []
    for o, v in found:
        cs = changes(paired, o, v, primary)
        acc_cols = [f"{c.task}/{c.metric}" for c in cs if c.accuracy_like]
        losses = tuple(c for c in cs if c.significant and not c.improved)
        out.append(QuantisedVariant(ctx.name[v], ctx.name[o], _kept(lb, o, v, acc_cols), len(cs), losses,
                                    _ratio(lb, "tokens_per_s", o, v), _ratio(lb, "peak_memory_bytes", o, v),
                                    _ratio(facts, "bytes_in_memory", o, v)))
    return out


__all__ = ["changes", "pairs", "quantised_variants"]
