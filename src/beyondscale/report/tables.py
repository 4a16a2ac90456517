"""Escaped-at-render tables (columns, rows of cells with badges) shared by HTML and Markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from beyondscale.analysis.types import Analysis
from beyondscale.report.data import as_frame
from beyondscale.report.format import (
    LOWER_IS_BETTER,
    SOURCE_OF,
    as_float,
    axis_label,
    column_label,
    column_tooltip,
    count,
    fixed,
    format_cell,
    is_estimate,
    is_missing,
    metric_of,
    pvalue,
    sig,
    text,
)

# Size and the facts that make sizes comparable (or not): shown next to the parameters.
SIZE_COLUMNS = ("params_total", "params_active", "flops_per_token", "family", "architecture", "vocab_size", "dtype",
                "quantization", "bytes_in_memory")
TEXT_COLUMNS = {"model", "family", "architecture", "dtype", "quantization"}


EFFICIENCY_COLUMNS = (
    "tokens_per_s", "ms_per_item", "latency_ms_per_item", "peak_memory_bytes", "joules_per_token", "gco2e_per_1k_tokens",
    "usd_per_1m_tokens", "usd_per_correct", "mfu",
)


HIGHER_IS_BETTER_COST = {"tokens_per_s", "mfu"}


def make_cell(value: str, *, num: bool = False, est: bool = False, cls: str = "", title: str = "") -> dict[str, Any]:
    return {"text": value, "num": num, "est": est, "cls": cls, "title": title, "pm": "", "flag": ""}


def make_col(label: str, *, tooltip: str = "", num: bool = False) -> dict[str, Any]:
    return {"label": label, "tooltip": tooltip, "num": num, "over": ""}


def _is_numeric(series: pd.Series) -> bool:
    return any(as_float(v) is not None for v in series) and all(
        is_missing(v) or as_float(v) is not None for v in series
    )


def source_for(row: Mapping[str, Any], column: str) -> str | None:
    for src in (*SOURCE_OF.get(column, ()), f"{column}_source"):
        if src in row and not is_missing(row[src]):
            return str(row[src])
    return None


def frame_table(df: pd.DataFrame | None, columns: Sequence[str] | None = None, *, badges: bool = True,
                row_class: Any = None) -> dict[str, Any] | None:
    """A generic, escaped-at-render table for any frame; None when the frame is empty."""
    df = as_frame(df)
    if df.empty:
        return None
    cols = [c for c in (columns or list(df.columns))
            if c in df.columns and c != "model_key" and not df[c].map(is_missing).all()]
    numeric = {c: _is_numeric(df[c]) for c in cols}
    rows = []
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            src = source_for(r, c) if badges else None
            cells.append(make_cell(format_cell(c, r[c]), num=numeric[c], est=is_estimate(src),
                               title=f"source: {src}" if src else ""))
        rows.append({"cells": cells, "cls": row_class(r) if row_class else ""})
    return {"columns": [make_col(column_label(c), tooltip=column_tooltip(c), num=numeric[c]) for c in cols],
            "rows": rows, "has_est": any(cell["est"] for row in rows for cell in row["cells"])}


def leaderboard_frame(analysis: Analysis, models: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """analysis.leaderboard, or (when the analysis left it empty) scores pivoted next to model sizes."""
    lb = as_frame(analysis.leaderboard)
    if not lb.empty or scores.empty or not {"model", "task", "metric", "value"} <= set(scores.columns):
        return lb
    keys = ["model_key", "model"] if "model_key" in scores.columns else ["model"]
    wide = scores.assign(col=scores["task"].astype(str) + "/" + scores["metric"].astype(str)).pivot_table(
        index=keys, columns="col", values="value", aggfunc="first").reset_index()
    wide.columns.name = None
    if not models.empty and "model_key" in keys and "model_key" in models.columns:
        sizes = [c for c in SIZE_COLUMNS if c in models.columns]
        wide = wide.merge(models[["model_key", *sizes]], on="model_key", how="left")
    return wide


def _stderr_lookup(scores: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = {}
    if scores.empty or not {"task", "metric", "stderr"} <= set(scores.columns):
        return out
    for _, r in scores.iterrows():
        se = as_float(r["stderr"])
        if se is None:
            continue
        for ident in ("model_key", "model"):
            if ident in scores.columns and not is_missing(r[ident]):
                out[(f"{ident}:{r[ident]}", str(r["task"]), str(r["metric"]))] = se
    return out


def _quality_columns(lb: pd.DataFrame) -> list[str]:
    return [c for c in lb.columns if isinstance(c, str) and "/" in c and not c.endswith("_source")]


def _leaderboard_columns(lb: pd.DataFrame) -> tuple[list[str], list[str]]:
    quality = _quality_columns(lb)
    ordered = (["model"] if "model" in lb.columns else []) + [
        c for c in SIZE_COLUMNS if c in lb.columns and (c in SIZE_COLUMNS[:3] or not lb[c].map(is_missing).all())]
    ordered += quality + [c for c in EFFICIENCY_COLUMNS if c in lb.columns]
    rest = [c for c in lb.columns if c not in ordered and c not in ("model_key", "tokenizer_key")
            and not str(c).endswith("_source") and not lb[c].map(is_missing).all()]
    return ordered + rest, quality


def _best(values: list[float | None], lower_is_better: bool) -> float | None:
    xs = [v for v in values if v is not None]
    if len(xs) < 2:
        return None
    return min(xs) if lower_is_better else max(xs)


def _best_values(lb: pd.DataFrame, cols: list[str], quality: list[str]) -> dict[str, float | None]:
    best: dict[str, float | None] = {}
    for c in cols:
        if c in quality or c in EFFICIENCY_COLUMNS:
            lower = (metric_of(c) in LOWER_IS_BETTER) if c in quality else (
                c not in HIGHER_IS_BETTER_COST and c in LOWER_IS_BETTER)
            best[c] = _best([as_float(v) for v in lb[c]], lower)
    return best


def _older(versions: pd.DataFrame | None) -> set[tuple[str, str]]:
    """(model_key, task) pairs whose leaderboard figure comes from an older task version."""
    v = as_frame(versions)
    if v.empty or "current" not in v.columns:
        return set()
    old = v[~v["current"].astype(bool)]
    return {(str(k), str(t)) for k, t in zip(old["model_key"], old["task"], strict=True)}


def _quality_cell(r: pd.Series, c: str, stderr: dict, older: set[tuple[str, str]]) -> dict[str, Any]:
    task, metric = c.rsplit("/", 1)
    v = r[c]
    se = None
    for ident in ("model_key", "model"):
        if ident in r and not is_missing(r[ident]):
            se = se if se is not None else stderr.get((f"{ident}:{r[ident]}", task, metric))
    txt = fixed(v, 3) if as_float(v) is not None and abs(as_float(v) or 0) < 10 else sig(v, 4)
    out = make_cell(txt, num=True)
    out["pm"] = fixed(se, 3) if se is not None and abs(se) < 10 else (sig(se, 3) if se else "")
    if (str(r.get("model_key")), task) in older:
        out["flag"] = "older version"
        out["title"] = f"scored on an older version of {task} (other items): not directly comparable"
    return out


def _leaderboard_header(cols: list[str], quality: list[str]) -> list[dict[str, Any]]:
    columns = []
    for c in cols:
        if c in quality:
            task, metric = c.rsplit("/", 1)
            direction = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
            columns.append({"label": metric, "over": task, "tooltip": f"{task} · {metric} ({direction})",
                            "num": True})
        else:
            columns.append(make_col(column_label(c), tooltip=column_tooltip(c), num=c not in TEXT_COLUMNS))
    return columns


def leaderboard_table(lb: pd.DataFrame, scores: pd.DataFrame, versions: pd.DataFrame | None = None
                      ) -> dict[str, Any] | None:
    """Leaderboard rows with ± stderr on quality, est. badges, older-version flags, best per column in bold."""
    if lb.empty:
        return None
    cols, quality = _leaderboard_columns(lb)
    stderr, older = _stderr_lookup(scores), _older(versions)
    best = _best_values(lb, cols, quality)
    rows = []
    for _, r in lb.iterrows():
        cells = []
        for c in cols:
            if c in quality:
                x = _quality_cell(r, c, stderr, older)
            else:
                src = source_for(r, c)
                x = make_cell(format_cell(c, r[c]), num=c not in TEXT_COLUMNS, est=is_estimate(src),
                              title=f"source: {src}" if src else "")
            if best.get(c) is not None and as_float(r[c]) == best[c]:
                x["cls"] = "best"
            cells.append(x)
        rows.append({"cells": cells, "cls": ""})
    return {"columns": _leaderboard_header(cols, quality), "rows": rows,
            "has_est": any(x["est"] for row in rows for x in row["cells"]),
            "has_older": any(x.get("flag") for row in rows for x in row["cells"])}


def _paired_result(r: pd.Series) -> tuple[str, str]:
    """(row class, result text): the model a significant row favours, the flag, or not significant."""
    flag = "" if is_missing(r.get("flag")) else str(r.get("flag"))
    better = "" if is_missing(r.get("better")) else str(r.get("better"))
    if better:
        return ("flag" if flag else "sig"), f"{better} significantly better"
    if flag:
        return "flag", flag
    return "", "not significant" if not is_missing(r.get("significant")) else ""


def paired_table(paired: pd.DataFrame) -> dict[str, Any] | None:
    """Paired comparisons: effect, 95% CI, raw and Holm-adjusted p, test, which model is better."""
    paired = as_frame(paired)
    if paired.empty:
        return None
    cols = [make_col("task"), make_col("metric"), make_col("model a"), make_col("model b (not smaller)"),
            make_col("items", num=True, tooltip="items both models scored, on the newest task version both have"),
            make_col("effect b − a", num=True), make_col("95% CI", num=True), make_col("p", num=True),
            make_col("p (Holm)", num=True, tooltip="Holm-adjusted over the tasks of this comparison"),
            make_col("test"), make_col("result")]
    rows = []
    for _, r in paired.iterrows():
        cls, result = _paired_result(r)
        eff = as_float(r.get("effect"))
        lo, hi = as_float(r.get("ci_low")), as_float(r.get("ci_high"))
        floor = as_float(r.get("p_floor")) or 0.0
        n_tests = as_float(r.get("n_tests")) or 1.0
        rows.append({"cls": cls, "cells": [
            make_cell(text(r.get("task"))), make_cell(text(r.get("metric"))), make_cell(text(r.get("model_a"))),
            make_cell(text(r.get("model_b"))), make_cell(text(r.get("n_items")), num=True),
            make_cell(f"{eff:+.4f}" if eff is not None else "", num=True),
            make_cell(f"[{lo:+.4f}, {hi:+.4f}]" if lo is not None and hi is not None else "", num=True),
            make_cell(pvalue(r.get("p_value"), floor), num=True),
            make_cell(pvalue(r.get("p_adjusted"), floor * n_tests), num=True), make_cell(text(r.get("test"))),
            make_cell(result, cls="flagtext wrap" if cls == "flag" else "wrap"),
        ]})
    return {"columns": cols, "rows": rows, "has_est": False,
            "n_flagged": sum(1 for row in rows if row["cls"] == "flag")}


def fits_table(fits: pd.DataFrame) -> dict[str, Any] | None:
    """Fit parameters with profile-t intervals, and the skipped fits with their reason."""
    fits = as_frame(fits)
    if fits.empty:
        return None
    cols = [make_col("axis"), make_col("form"), make_col("parameter"), make_col("value", num=True), make_col("95% CI", num=True),
            make_col("points", num=True), make_col("status")]
    rows = []
    for _, r in fits.iterrows():
        lo, hi = as_float(r.get("ci_low")), as_float(r.get("ci_high"))
        status = text(r.get("status"))
        reason = text(r.get("reason"))
        rows.append({"cls": "muted" if status == "skipped" else "", "cells": [
            make_cell(axis_label(text(r.get("axis")))), make_cell(text(r.get("form"))), make_cell(text(r.get("param"))),
            make_cell(sig(r.get("value"), 4), num=True),
            make_cell(f"[{sig(lo, 3)}, {sig(hi, 3)}]" if lo is not None and hi is not None else "", num=True),
            make_cell(text(r.get("n_points")), num=True),
            make_cell(status + (f": {reason}" if reason else ""), cls="wrap"),
        ]})
    return {"columns": cols, "rows": rows, "has_est": False}


def marginal_table(marginal: pd.DataFrame) -> dict[str, Any] | None:
    """Marginal gain per doubling between sizes."""
    marginal = as_frame(marginal)
    if marginal.empty:
        return None
    cols = [make_col("axis"), make_col("from"), make_col("to"), make_col("size from → to", num=True),
            make_col("doublings", num=True), make_col("gain", num=True), make_col("gain / doubling", num=True),
            make_col("source")]
    rows = []
    for _, r in marginal.iterrows():
        g, gpd = as_float(r.get("gain")), as_float(r.get("gain_per_doubling"))
        rows.append({"cls": "", "cells": [
            make_cell(axis_label(text(r.get("axis")))), make_cell(text(r.get("from_model"))),
            make_cell(text(r.get("to_model"))),
            make_cell(f"{count(r.get('x_from'))} → {count(r.get('x_to'))}", num=True),
            make_cell(fixed(r.get("doublings"), 2), num=True),
            make_cell(f"{g:+.4f}" if g is not None else "", num=True),
            make_cell(f"{gpd:+.4f}" if gpd is not None else "", num=True, cls="neg" if gpd is not None and gpd < 0 else ""),
            make_cell(text(r.get("source"))),
        ]})
    return {"columns": cols, "rows": rows, "has_est": False}



def paired_for_terminal(paired: pd.DataFrame) -> pd.DataFrame:
    """The paired frame with `p` and `p_holm` as the verdict prints them ('<0.001' at a bootstrap floor)."""
    paired = as_frame(paired)
    if paired.empty or "p_value" not in paired.columns:
        return paired
    floor = paired["p_floor"].fillna(0.0) if "p_floor" in paired.columns else pd.Series(0.0, index=paired.index)
    n = paired["n_tests"].fillna(1) if "n_tests" in paired.columns else pd.Series(1, index=paired.index)
    adj = paired["p_adjusted"] if "p_adjusted" in paired.columns else paired["p_value"]
    return paired.assign(p=[pvalue(p, f) for p, f in zip(paired["p_value"], floor, strict=True)],
                         p_holm=[pvalue(p, f * k) for p, f, k in zip(adj, floor, n, strict=True)])
