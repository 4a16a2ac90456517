"""Render an `Analysis` (plus the store frames) as one self-contained HTML file, Markdown or JSON.

HTML: a single file with plotly.js inlined once (no CDN, opens from disk offline), inline CSS and a
sticky table of contents. All data strings are escaped: Jinja autoescape for the page, ``html.escape``
for plotly text (see `figures.py`), and ``\\u003c``-escaped JSON inside ``<script type="application/json">``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from beyondscale import __version__
from beyondscale.analysis.types import Analysis
from beyondscale.report import figures as F
from beyondscale.report.format import (
    COLUMNS,
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

Format = Literal["html", "md", "json"]

TEMPLATES = Path(__file__).parent / "templates"

# Leaderboard columns shown before / after the per-"task/metric" quality columns.
SIZE_COLUMNS = ("params_total", "params_active", "flops_per_token")
EFFICIENCY_COLUMNS = (
    "tokens_per_s", "latency_ms_per_item", "peak_memory_bytes", "joules_per_token", "gco2e_per_1k_tokens",
    "usd_per_1m_tokens", "usd_per_correct", "mfu",
)
HIGHER_IS_BETTER_COST = {"tokens_per_s", "mfu"}

#: What each number means and how it was measured (HTML and Markdown share it).
METHOD_NOTES: tuple[tuple[str, str], ...] = (
    ("acc", "Multiple choice: the item counts as correct when the gold choice has the highest summed "
            "log-likelihood of its continuation given the prompt (lm-evaluation-harness definition)."),
    ("acc_norm", "As acc, but each choice's log-likelihood is divided by the length of its continuation in "
                 "characters before the argmax (lm-evaluation-harness), removing the bias toward short "
                 "answers. acc_bytes divides by the UTF-8 byte length instead."),
    ("exact_match", "Generation: the greedy answer, after the task's filters, equals the gold string."),
    ("± stderr", "Means (acc, acc_norm, acc_bytes, exact_match, brier_score) carry the closed-form standard "
                 "error of the mean over items; corpus-level metrics (ECE, perplexities, bits-per-byte) a "
                 "bootstrap standard error over items (seeded, reproducible)."),
    ("bits-per-byte", "Rolling log-likelihood of whole documents: bits_per_byte = −Σ log p / (ln 2 × UTF-8 "
                      "bytes). It does not depend on the tokenizer, so models with different vocabularies "
                      "compare fairly. byte_perplexity = 2^bits_per_byte; word_perplexity = exp(−Σ log p / "
                      "words)."),
    ("ECE", "Expected calibration error, HELM's ece_10_bin: items are sorted by confidence (the probability "
            "of the predicted choice, softmax over the choices' log-likelihoods) and cut into 10 equal-mass "
            "bins (equal numbers of items); ECE = Σ over bins of (n_bin / n) × |mean confidence − accuracy|. "
            "The reliability diagrams plot exactly these bins; the dashed diagonal is perfect calibration. "
            "Brier score = Σ over choices of (probability − one-hot gold)², averaged over items."),
    ("Paired tests", "Two models are compared on the items both scored, item by item. 0/1 metrics use "
                     "McNemar's exact test: a two-sided binomial test (p = ½) on the discordant items, those "
                     "exactly one of the two got right. Continuous metrics use a paired bootstrap: items are "
                     "resampled with replacement and the mean difference recomputed; the 95% CI is the "
                     "2.5th–97.5th percentile. effect = bigger model (b) − smaller (a). 'bigger but not "
                     "significantly better' flags pairs where b is larger but the gain is not significant."),
    ("Returns curves and fits", "x is a size axis (parameters, active parameters, FLOPs per token, training "
                                "tokens) on a log₂ scale. Fitted forms: score s(x) = s∞ − A·x^−α; loss "
                                "L(x) = E + A·x^−α; two-variable L(N, D) = E + A·N^−α + B·D^−β (Chinchilla). "
                                "Loss forms minimise the Huber loss (δ = 10⁻³) of log predicted − log observed, "
                                "the score form the Huber loss of predicted − observed, with L-BFGS-B from a "
                                "grid of starts (Hoffmann et al. 2022, approach 3); the shaded band and the "
                                "parameter intervals are bootstrap 95% intervals over resampled points. Fits "
                                "need at least 4 distinct sizes (6 for L(N, D))."),
    ("Marginal gain", "Gain in the metric between consecutive sizes divided by the number of doublings "
                      "between them (log₂ of the size ratio): what one more doubling bought."),
    ("Knee", "The size after which a doubling buys less than a threshold (or, by the Kneedle method, the "
             "point of maximum curvature of the returns curve)."),
    ("Pareto frontier", "A model is on the frontier when no other model is at least as good in quality and "
                        "at least as cheap on that cost axis, and strictly better in one. Dominated models are "
                        "grey."),
    ("Throughput and latency", "Wall-clock tokens per second and milliseconds per item over the whole scoring "
                               "run on this machine; peak memory is the peak resident set (CPU) or peak "
                               "allocated memory (GPU)."),
    ("Energy", "Measured from hardware counters where available (source 'rapl' for Intel/AMD CPU package "
               "energy, 'nvml' for NVIDIA GPU energy). Otherwise estimated ('estimate:tdp'): CPU-seconds × "
               "TDP per logical CPU + 0.375 W per GB of peak RAM × wall time (CodeCarbon's model) and, when a "
               "GPU is used without NVML, its board power × wall time. Estimates carry an est. badge."),
    ("Carbon", "gCO2e = kWh × PUE × grid intensity (gCO2e per kWh of the configured region), per 1,000 "
               "tokens. It inherits the energy figure's source: estimated energy gives estimated carbon."),
    ("Cost", "$ per 1M tokens = hourly price of the hardware × hours of the run / tokens × 10⁶; $ per "
             "correct answer divides the run's cost by the number of correctly answered items."),
    ("MFU", "Model FLOPs utilisation = achieved FLOP/s (FLOPs per token × tokens per second) / peak FLOP/s "
            "of the device (datasheet or a probed matmul rate), shown as a percentage."),
    ("FLOPs per token", "Forward-pass FLOPs per token, about 2 × active non-embedding parameters plus the "
                        "attention term; for Mixture-of-Experts models only the experts routed to count."),
)


# --------------------------------------------------------------------------------------------- helpers


def _frame(df: pd.DataFrame | None) -> pd.DataFrame:
    return df if isinstance(df, pd.DataFrame) else pd.DataFrame()


def _records(df: pd.DataFrame | None) -> list[dict[str, Any]]:
    df = _frame(df)
    return [_jsonable(r) for r in df.astype(object).where(df.notna(), None).to_dict(orient="records")]


def _jsonable(obj: Any) -> Any:
    """Plain JSON types only (numpy scalars -> Python, NaN -> None, timestamps -> ISO strings)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj
    if hasattr(obj, "item") and not isinstance(obj, pd.DataFrame):
        try:
            return _jsonable(obj.item())
        except (TypeError, ValueError):
            pass
    if isinstance(obj, float):
        return as_float(obj)
    if isinstance(obj, pd.Timestamp | _dt.datetime | _dt.date):
        return obj.isoformat()
    if isinstance(obj, pd.DataFrame):
        return _records(obj)
    if is_missing(obj):
        return None
    return str(obj)


def _cell(value: str, *, num: bool = False, est: bool = False, cls: str = "", title: str = "") -> dict[str, Any]:
    return {"text": value, "num": num, "est": est, "cls": cls, "title": title, "pm": ""}


def _col(label: str, *, tooltip: str = "", num: bool = False) -> dict[str, Any]:
    return {"label": label, "tooltip": tooltip, "num": num, "over": ""}


def _is_numeric(series: pd.Series) -> bool:
    return any(as_float(v) is not None for v in series) and all(
        is_missing(v) or as_float(v) is not None for v in series
    )


def _source_for(row: Mapping[str, Any], column: str) -> str | None:
    for src in SOURCE_OF.get(column, ()):
        if src in row and not is_missing(row[src]):
            return str(row[src])
    return None


def frame_table(df: pd.DataFrame | None, columns: Sequence[str] | None = None, *, badges: bool = True,
                row_class: Any = None) -> dict[str, Any] | None:
    """A generic, escaped-at-render table for any frame; None when the frame is empty."""
    df = _frame(df)
    if df.empty:
        return None
    cols = [c for c in (columns or list(df.columns))
            if c in df.columns and c != "model_key" and not df[c].map(is_missing).all()]
    numeric = {c: _is_numeric(df[c]) for c in cols}
    rows = []
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            src = _source_for(r, c) if badges else None
            cells.append(_cell(format_cell(c, r[c]), num=numeric[c], est=is_estimate(src),
                               title=f"source: {src}" if src else ""))
        rows.append({"cells": cells, "cls": row_class(r) if row_class else ""})
    return {"columns": [_col(column_label(c), tooltip=column_tooltip(c), num=numeric[c]) for c in cols],
            "rows": rows, "has_est": any(cell["est"] for row in rows for cell in row["cells"])}


# ------------------------------------------------------------------------------------------ leaderboard


def leaderboard_frame(analysis: Analysis, models: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """analysis.leaderboard, or (when the analysis left it empty) scores pivoted next to model sizes."""
    lb = _frame(analysis.leaderboard)
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
    ordered = (["model"] if "model" in lb.columns else []) + [c for c in SIZE_COLUMNS if c in lb.columns]
    ordered += quality + [c for c in EFFICIENCY_COLUMNS if c in lb.columns]
    rest = [c for c in lb.columns if c not in ordered and c != "model_key" and not str(c).endswith("_source")]
    return ordered + rest, quality


def _best(values: list[float | None], lower_is_better: bool) -> float | None:
    xs = [v for v in values if v is not None]
    if len(xs) < 2:
        return None
    return min(xs) if lower_is_better else max(xs)


def leaderboard_table(lb: pd.DataFrame, scores: pd.DataFrame) -> dict[str, Any] | None:
    """Leaderboard rows with ± stderr on quality, est. badges and the best value per column in bold."""
    if lb.empty:
        return None
    cols, quality = _leaderboard_columns(lb)
    stderr = _stderr_lookup(scores)
    best: dict[str, float | None] = {}
    for c in cols:
        if c in SIZE_COLUMNS or c == "model":
            continue
        vals = [as_float(v) for v in lb[c]]
        lower = (metric_of(c) in LOWER_IS_BETTER) if c in quality else (
            c not in HIGHER_IS_BETTER_COST and c in LOWER_IS_BETTER)
        if c in quality or c in EFFICIENCY_COLUMNS:
            best[c] = _best(vals, lower)
    rows = []
    for _, r in lb.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if c in quality:
                task, metric = c.rsplit("/", 1)
                se = None
                for ident in ("model_key", "model"):
                    if ident in r and not is_missing(r[ident]):
                        se = se if se is not None else stderr.get((f"{ident}:{r[ident]}", task, metric))
                txt = fixed(v, 3) if as_float(v) is not None and abs(as_float(v) or 0) < 10 else sig(v, 4)
                cell = _cell(txt, num=True)
                cell["pm"] = fixed(se, 3) if se is not None and abs(se) < 10 else (sig(se, 3) if se else "")
            else:
                src = _source_for(r, c)
                cell = _cell(format_cell(c, v), num=c != "model", est=is_estimate(src),
                             title=f"source: {src}" if src else "")
            b = best.get(c)
            if b is not None and as_float(v) == b:
                cell["cls"] = "best"
            cells.append(cell)
        rows.append({"cells": cells, "cls": ""})
    columns = []
    for c in cols:
        if c in quality:
            task, metric = c.rsplit("/", 1)
            direction = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
            columns.append({"label": metric, "over": task, "tooltip": f"{task} · {metric} ({direction})",
                            "num": True})
        else:
            columns.append(_col(column_label(c), tooltip=column_tooltip(c), num=c != "model"))
    return {"columns": columns, "rows": rows, "has_est": any(x["est"] for row in rows for x in row["cells"])}


# ----------------------------------------------------------------------------------------------- tables


def paired_table(paired: pd.DataFrame) -> dict[str, Any] | None:
    """Paired comparisons: effect, 95% CI, p, test; flagged rows highlighted."""
    paired = _frame(paired)
    if paired.empty:
        return None
    cols = [_col("task"), _col("metric"), _col("smaller (a)"), _col("bigger (b)"),
            _col("items", num=True), _col("effect b − a", num=True, tooltip="bigger minus smaller"),
            _col("95% CI", num=True), _col("p", num=True), _col("test"), _col("result")]
    rows = []
    for _, r in paired.iterrows():
        flag = "" if is_missing(r.get("flag")) else str(r.get("flag"))
        sig_ = r.get("significant")
        significant = bool(sig_) if not is_missing(sig_) else None
        eff = as_float(r.get("effect"))
        lo, hi = as_float(r.get("ci_low")), as_float(r.get("ci_high"))
        result = flag or ("significant" if significant else "not significant" if significant is False else "")
        rows.append({
            "cls": "flag" if flag else ("sig" if significant else ""),
            "cells": [
                _cell(text(r.get("task"))), _cell(text(r.get("metric"))), _cell(text(r.get("model_a"))),
                _cell(text(r.get("model_b"))), _cell(text(r.get("n_items")), num=True),
                _cell(f"{eff:+.4f}" if eff is not None else "", num=True),
                _cell(f"[{lo:+.4f}, {hi:+.4f}]" if lo is not None and hi is not None else "", num=True),
                _cell(pvalue(r.get("p_value")), num=True), _cell(text(r.get("test"))),
                _cell(result, cls="flagtext wrap" if flag else "wrap"),
            ],
        })
    return {"columns": cols, "rows": rows, "has_est": False,
            "n_flagged": sum(1 for row in rows if row["cls"] == "flag")}


def fits_table(fits: pd.DataFrame) -> dict[str, Any] | None:
    """Fit parameters with bootstrap intervals, and the skipped fits with their reason."""
    fits = _frame(fits)
    if fits.empty:
        return None
    cols = [_col("axis"), _col("form"), _col("parameter"), _col("value", num=True), _col("95% CI", num=True),
            _col("points", num=True), _col("status")]
    rows = []
    for _, r in fits.iterrows():
        lo, hi = as_float(r.get("ci_low")), as_float(r.get("ci_high"))
        status = text(r.get("status"))
        reason = text(r.get("reason"))
        rows.append({"cls": "muted" if status == "skipped" else "", "cells": [
            _cell(axis_label(text(r.get("axis")))), _cell(text(r.get("form"))), _cell(text(r.get("param"))),
            _cell(sig(r.get("value"), 4), num=True),
            _cell(f"[{sig(lo, 3)}, {sig(hi, 3)}]" if lo is not None and hi is not None else "", num=True),
            _cell(text(r.get("n_points")), num=True),
            _cell(status + (f": {reason}" if reason else ""), cls="wrap"),
        ]})
    return {"columns": cols, "rows": rows, "has_est": False}


def marginal_table(marginal: pd.DataFrame) -> dict[str, Any] | None:
    """Marginal gain per doubling between sizes."""
    marginal = _frame(marginal)
    if marginal.empty:
        return None
    cols = [_col("axis"), _col("from"), _col("to"), _col("size from → to", num=True),
            _col("doublings", num=True), _col("gain", num=True), _col("gain / doubling", num=True),
            _col("source")]
    rows = []
    for _, r in marginal.iterrows():
        g, gpd = as_float(r.get("gain")), as_float(r.get("gain_per_doubling"))
        rows.append({"cls": "", "cells": [
            _cell(axis_label(text(r.get("axis")))), _cell(text(r.get("from_model"))),
            _cell(text(r.get("to_model"))),
            _cell(f"{count(r.get('x_from'))} → {count(r.get('x_to'))}", num=True),
            _cell(fixed(r.get("doublings"), 2), num=True),
            _cell(f"{g:+.4f}" if g is not None else "", num=True),
            _cell(f"{gpd:+.4f}" if gpd is not None else "", num=True, cls="neg" if gpd is not None and gpd < 0 else ""),
            _cell(text(r.get("source"))),
        ]})
    return {"columns": cols, "rows": rows, "has_est": False}


def _select(frame: pd.DataFrame, **where: Any) -> pd.DataFrame:
    return F._select(frame, **where)


_AXIS_ORDER = ("params_total", "params_non_embedding", "params_active", "flops_per_token", "training_tokens",
               "training_flops", "bytes_on_disk")


def _axis_rank(fig: F.Figure) -> tuple[int, str]:
    axis = str(fig.keys.get("axis"))
    return (_AXIS_ORDER.index(axis) if axis in _AXIS_ORDER else len(_AXIS_ORDER), axis)


def returns_groups(analysis: Analysis, figs: list[F.Figure]) -> list[dict[str, Any]]:
    """One group per task/metric: its figures, fit table, marginal-gain table and knees."""
    keys: set[tuple[str, str]] = set()
    for frame in (analysis.curves, analysis.fits, analysis.marginal):
        frame = _frame(frame)
        if not frame.empty and {"task", "metric"} <= set(frame.columns):
            keys |= {(str(t), str(m)) for t, m in frame[["task", "metric"]].drop_duplicates().itertuples(index=False)}
    groups = []
    for task, metric in sorted(keys):
        knees = _select(_frame(analysis.knees), task=task, metric=metric)
        knee_lines = []
        for _, k in knees.iterrows():
            how = f"{text(k.get('method'))} method"
            if as_float(k.get("threshold")) is not None:
                how += f", threshold {sig(k.get('threshold'), 3)}"
            knee_lines.append(f"{axis_label(text(k.get('axis')))}: at {text(k.get('model'))} "
                              f"({count(k.get('x'))}; {how})")
        groups.append({
            "task": task, "metric": metric,
            "figures": sorted((f for f in figs if str(f.keys.get("task")) == task
                               and str(f.keys.get("metric")) == metric), key=_axis_rank),
            "fits": fits_table(_select(_frame(analysis.fits), task=task, metric=metric)),
            "marginal": marginal_table(_select(_frame(analysis.marginal), task=task, metric=metric)),
            "knees": knee_lines,
        })
    return groups


def _recommendation(rec: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not rec:
        return None
    constraints = rec.get("constraints") or {}
    cands = rec.get("candidates") or []
    cand_text = []
    for c in cands:
        if isinstance(c, Mapping):
            parts = []
            for k, v in c.items():
                if k == "model" or is_missing(v) or v == [] or v == {} or (k == "feasible" and v is True):
                    continue
                if k == "feasible":
                    parts.append("infeasible")
                elif k in COLUMNS:
                    parts.append(f"{column_label(k)} {format_cell(k, v)}")
                elif isinstance(v, list | tuple):
                    parts.append(f"{k}: " + ", ".join(text(x) for x in v))
                else:
                    parts.append(f"{k}: {sig(v, 3) if isinstance(v, float) else text(v)}")
            cand_text.append(text(c.get("model")) + (f" ({'; '.join(parts)})" if parts else ""))
        else:
            cand_text.append(text(c))
    return {
        "model": None if is_missing(rec.get("model")) else str(rec.get("model")),
        "reason": text(rec.get("reason")),
        "constraints": [(str(k), text(v)) for k, v in constraints.items()] if isinstance(constraints, Mapping)
        else [("constraints", text(constraints))],
        "candidates": cand_text,
    }


def _run_info(run_info: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    out = []
    for k, v in (run_info or {}).items():
        if isinstance(v, Mapping | list | tuple):
            v = json.dumps(_jsonable(v), ensure_ascii=False)
        out.append((str(k), text(v)))
    return out


def _extra_sections(extra: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """extra_sections hook: dicts with 'title', optional 'text' and 'frames' ({caption: DataFrame} or a list)."""
    out = []
    for sec in extra or []:
        frames = sec.get("frames") or {}
        items = frames.items() if isinstance(frames, Mapping) else [("", f) for f in frames]
        tables = [{"caption": str(cap), "table": frame_table(df)} for cap, df in items]
        out.append({"title": text(sec.get("title")) or "extra", "text": text(sec.get("text")),
                    "tables": [t for t in tables if t["table"] is not None]})
    return out


def _counts(models: pd.DataFrame, scores: pd.DataFrame, lb: pd.DataFrame) -> dict[str, int]:
    n_models = 0
    for df, col in ((models, "model_key"), (scores, "model_key"), (lb, "model")):
        if not df.empty and col in df.columns:
            n_models = max(n_models, df[col].nunique())
    n_tasks = scores["task"].nunique() if not scores.empty and "task" in scores.columns else 0
    return {"models": int(n_models), "tasks": int(n_tasks)}


# ----------------------------------------------------------------------------------------------- public


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    return env


def build_figures(analysis: Analysis, scores: pd.DataFrame | None = None) -> dict[str, list[F.Figure]]:
    """All report figures (plotly figure dicts), by section: returns, pareto, calibration."""
    return {
        "returns": F.returns_figures(_frame(analysis.curves), _frame(analysis.fit_bands), _frame(analysis.knees)),
        "pareto": F.pareto_figures(_frame(analysis.pareto)),
        "calibration": F.calibration_figures(_frame(analysis.calibration), _frame(scores)),
    }


def render_html(
    analysis: Analysis,
    *,
    models: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    efficiency: pd.DataFrame | None = None,
    title: str = "beyondscale report",
    run_info: Mapping[str, Any] | None = None,
    extra_sections: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """One self-contained HTML page (plotly.js inlined once, no network) for an analysis."""
    from plotly.offline import get_plotlyjs

    models, scores, efficiency = _frame(models), _frame(scores), _frame(efficiency)
    figs = build_figures(analysis, scores)
    all_figs = figs["returns"] + figs["pareto"] + figs["calibration"]
    lb = leaderboard_frame(analysis, models, scores)
    eff_cols = ["model", "task", *[c for c in COLUMNS if c not in ("model", "task")]]
    eff_cols += [c for c in efficiency.columns if c not in eff_cols]
    ptable = paired_table(analysis.paired)
    plotly_js = get_plotlyjs() if all_figs else ""
    if "</script" in plotly_js.lower():  # never expected; refuse to build a broken page
        raise RuntimeError("plotly.js contains '</script'; cannot inline it safely")
    context = {
        "title": title,
        "version": __version__,
        "generated": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "run_info": _run_info(run_info),
        "counts": _counts(models, scores, lb),
        "verdict": list(analysis.verdict or []),
        "recommendation": _recommendation(analysis.recommendation),
        "leaderboard": leaderboard_table(lb, scores),
        "returns": returns_groups(analysis, figs["returns"]),
        "compute_optimal": frame_table(analysis.compute_optimal),
        "paired": ptable,
        "pareto": figs["pareto"],
        "calibration": figs["calibration"],
        "efficiency": frame_table(efficiency.sort_values([c for c in ("task", "model") if c in efficiency.columns])
                                  if not efficiency.empty else efficiency, eff_cols),
        "extra": _extra_sections(extra_sections),
        "notes": list(analysis.notes or []),
        "method_notes": METHOD_NOTES,
        "n_figures": len(all_figs),
        "figures_json": Markup(F.figures_json(all_figs)),
        "plotly_js": Markup(plotly_js),
    }
    return _environment().get_template("report.html.j2").render(**context)


def _md_escape(value: Any) -> str:
    s = text(value).replace("\r", " ").replace("\n", " ")
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("\\", "\\\\").replace("|", "\\|")


def md_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Sequence[bool] | None = None) -> str:
    """A GitHub-flavoured Markdown table (cells escaped: pipes, newlines, HTML)."""
    numeric = list(numeric or [False] * len(columns))
    head = "| " + " | ".join(_md_escape(c) for c in columns) + " |"
    sep = "| " + " | ".join("---:" if n else "---" for n in numeric) + " |"
    body = ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join([head, sep, *body])


def _md_from_table(table: dict[str, Any]) -> str:
    cols = [(c.get("over", "") + "/" if c.get("over") else "") + c["label"] for c in table["columns"]]
    rows = []
    for row in table["rows"]:
        cells = []
        for cell in row["cells"]:
            s = cell["text"] + (f" ± {cell['pm']}" if cell.get("pm") else "")
            if cell.get("cls") == "best" and s:
                s = f"**{s}**"
            if cell.get("est") and s:
                s += " (est.)"
            cells.append(s)
        rows.append(cells)
    return md_table(cols, rows, numeric=[c["num"] for c in table["columns"]])


def render_markdown(
    analysis: Analysis,
    *,
    models: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    efficiency: pd.DataFrame | None = None,
    title: str = "beyondscale report",
    run_info: Mapping[str, Any] | None = None,
    extra_sections: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """Markdown: verdict, leaderboard, paired comparisons, notes and method notes."""
    models, scores = _frame(models), _frame(scores)
    out = [f"# {_md_escape(title)}", ""]
    info = _run_info(run_info)
    if info:
        out += [f"- **{_md_escape(k)}**: {_md_escape(v)}" for k, v in info] + [""]
    out += ["## Verdict", ""]
    out += [f"- {_md_escape(v)}" for v in analysis.verdict] or ["No verdict: nothing was scored yet."]
    rec = _recommendation(analysis.recommendation)
    if rec:
        out += ["", f"**Recommendation:** {_md_escape(rec['model'] or 'none')}. {_md_escape(rec['reason'])}"]
        if rec["constraints"]:
            out.append("Constraints: " + ", ".join(f"{_md_escape(k)} = {_md_escape(v)}" for k, v in rec["constraints"]))
        if rec["candidates"]:
            out.append("Candidates: " + "; ".join(_md_escape(c) for c in rec["candidates"]))
    out += ["", "## Leaderboard", ""]
    lb = leaderboard_table(leaderboard_frame(analysis, models, scores), scores)
    if lb:
        out.append(_md_from_table(lb))
        legend = "Quality ± standard error; **bold** = best in column."
        if lb["has_est"]:
            legend += " (est.) = estimated, not measured (source starts with 'estimate')."
        out += ["", legend]
    else:
        out.append("No models were scored.")
    out += ["", "## Paired significance", ""]
    pt = paired_table(analysis.paired)
    if pt:
        out.append(_md_from_table(pt))
        if pt["n_flagged"]:
            out += ["", f"{pt['n_flagged']} pair(s) flagged: bigger but not significantly better."]
    else:
        out.append("No paired comparisons (they need at least two models scored on the same items).")
    for sec in _extra_sections(extra_sections):
        out += ["", f"## {_md_escape(sec['title'])}", ""]
        if sec["text"]:
            out.append(_md_escape(sec["text"]))
        for t in sec["tables"]:
            out += ["", f"**{_md_escape(t['caption'])}**" if t["caption"] else "", _md_from_table(t["table"])]
    out += ["", "## Notes", ""]
    out += [f"- {_md_escape(n)}" for n in analysis.notes] or ["Nothing was left out."]
    out += ["", "## Method notes", ""]
    out += [f"- **{_md_escape(term)}**: {_md_escape(body)}" for term, body in METHOD_NOTES]
    return "\n".join(out).rstrip() + "\n"


def render_json(
    analysis: Analysis,
    *,
    models: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    efficiency: pd.DataFrame | None = None,
    title: str = "beyondscale report",
    run_info: Mapping[str, Any] | None = None,
    extra_sections: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """``analysis.to_json()`` plus the store frames (records), title and run info; JSON-serialisable."""
    out = _jsonable(analysis.to_json())
    out.update({
        "report_format": 1,
        "title": title,
        "beyondscale_version": __version__,
        "run_info": _jsonable(dict(run_info or {})),
        "models": _records(models),
        "scores": _records(scores),
        "efficiency": _records(efficiency),
    })
    if extra_sections:
        out["extra_sections"] = [
            {"title": text(s.get("title")), "text": text(s.get("text")),
             "frames": {str(k): _records(v) for k, v in (s.get("frames") or {}).items()}
             if isinstance(s.get("frames"), Mapping) else [_records(v) for v in (s.get("frames") or [])]}
            for s in extra_sections
        ]
    return out


def render(analysis: Analysis, frames: Mapping[str, pd.DataFrame] | None = None, format: Format = "html",
           **kwargs: Any) -> str | dict[str, Any]:
    """``render(analysis, {"models": ..., "scores": ..., "efficiency": ...}, "html" | "md" | "json")``."""
    frames = dict(frames or {})
    kw = {k: frames.get(k) for k in ("models", "scores", "efficiency")}
    if format == "html":
        return render_html(analysis, **kw, **kwargs)
    if format == "md":
        return render_markdown(analysis, **kw, **kwargs)
    if format == "json":
        return render_json(analysis, **kw, **kwargs)
    raise ValueError(f"unknown report format {format!r} (html, md or json)")


def _format_from_path(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        return "html"
    if suffix in (".md", ".markdown"):
        return "md"
    if suffix == ".json":
        return "json"
    from beyondscale.errors import UserError

    raise UserError(f"{path}: cannot tell the report format from the suffix; use .html, .md or .json")


def write_report(
    path: str | os.PathLike[str],
    format: Format | None = None,
    analysis: Analysis | None = None,
    *,
    models: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    efficiency: pd.DataFrame | None = None,
    title: str = "beyondscale report",
    run_info: Mapping[str, Any] | None = None,
    extra_sections: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Render and write atomically (temp file in the same folder, fsync, rename). Format from suffix if None."""
    path = Path(path)
    fmt = format or _format_from_path(path)
    analysis = analysis if analysis is not None else Analysis()
    kw: dict[str, Any] = {"models": models, "scores": scores, "efficiency": efficiency, "title": title,
                          "run_info": run_info, "extra_sections": extra_sections}
    if fmt == "html":
        body = render_html(analysis, **kw)
    elif fmt == "md":
        body = render_markdown(analysis, **kw)
    elif fmt == "json":
        body = json.dumps(render_json(analysis, **kw), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    else:
        raise ValueError(f"unknown report format {fmt!r} (html, md or json)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
