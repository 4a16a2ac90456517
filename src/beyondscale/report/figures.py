"""Plotly figures for the report, built as plain dicts (``plotly.graph_objects.Figure(fig)`` works on each).

Every string that comes from models, tasks or data goes through ``html.escape`` here, because plotly
renders titles, legends, hover and text labels as a small subset of HTML. The figure JSON is made safe
for embedding inside ``<script>`` by :func:`figures_json`.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from beyondscale.report.format import LOWER_IS_BETTER, as_float, axis_label, count, is_missing, sig

ACCENT = "#2563eb"
ACCENT_FILL = "rgba(37, 99, 235, 0.15)"
GREY = "#9aa3b2"
INK = "#1f2937"
KNEE = "#d97706"
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
MAX_TEXT_LABELS = 10  # label points with model names up to this many models


@dataclass
class Figure:
    """One plot: a DOM id, a caption for screen readers, the plotly figure dict."""

    id: str
    title: str
    figure: dict[str, Any]
    keys: dict[str, Any] = field(default_factory=dict)


def e(value: Any) -> str:
    """Escape a data string for plotly, which renders a subset of HTML and decodes &lt; &gt; &amp; (not &quot;)."""
    return html.escape("" if is_missing(value) else str(value), quote=False)


def _metric_title(metric: Any) -> str:
    """Escaped y-axis title, saying so when lower is better (bits_per_byte, ECE, perplexity...)."""
    return e(metric) + (" · lower is better" if str(metric) in LOWER_IS_BETTER else "")


def _num(values: Any) -> list[float | None]:
    return [as_float(v) for v in values]


def _layout(title: str, *, height: int = 360, **extra: Any) -> dict[str, Any]:
    axis = {
        "showline": True, "linecolor": "#cbd2dc", "gridcolor": "#eef1f5", "zeroline": False,
        "ticks": "outside", "tickcolor": "#cbd2dc", "automargin": True,
    }
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0.02, "xanchor": "left", "font": {"size": 14, "color": INK}},
        "font": {"family": FONT, "size": 12, "color": INK},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "height": height,
        "margin": {"l": 60, "r": 36, "t": 48, "b": 92},
        "hovermode": "closest",
        "showlegend": True,
        "legend": {"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0.01, "x": 0,
                   "font": {"size": 11}},
        "xaxis": dict(axis),
        "yaxis": dict(axis),
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


def _config() -> dict[str, Any]:
    return {"responsive": True, "displaylogo": False, "displayModeBar": "hover"}


def log2_axis(values: list[float | None]) -> dict[str, Any]:
    """A log x axis with ticks at powers of two, labelled in human units (1.2M, 3.4B)."""
    xs = [v for v in values if v is not None and v > 0]
    if not xs:
        return {"type": "linear"}
    lo, hi = math.floor(math.log2(min(xs))), math.ceil(math.log2(max(xs)))
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    step = max(1, math.ceil((hi - lo) / 8))
    ticks = [2.0**k for k in range(lo, hi + 1, step)]
    pad = 0.5 * math.log10(2)
    return {
        "type": "log",
        "tickvals": ticks,
        "ticktext": [count(t) for t in ticks],
        "range": [math.log10(min(xs)) - pad, math.log10(max(xs)) + pad],
    }


def _cost_axis(values: list[float | None]) -> dict[str, Any]:
    xs = [v for v in values if v is not None]
    if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
        return {"type": "log"}
    return {"type": "linear"}


def _group(frame: pd.DataFrame, keys: list[str]) -> list[tuple[tuple[Any, ...], pd.DataFrame]]:
    if frame is None or frame.empty or not set(keys) <= set(frame.columns):
        return []
    out = []
    for key, sub in frame.groupby(keys, sort=True, dropna=False):
        out.append((key if isinstance(key, tuple) else (key,), sub))
    return out


def _band_traces(band: pd.DataFrame) -> list[dict[str, Any]]:
    """The bootstrap band (filled) and the fitted line; band is sorted and has _x."""
    bx = list(band["_x"])
    traces: list[dict[str, Any]] = []
    lows, highs = _num(band["y_low"]), _num(band["y_high"])
    if any(v is not None for v in lows) and any(v is not None for v in highs):
        traces.append({
            "type": "scatter", "mode": "lines", "x": bx + bx[::-1], "y": highs + lows[::-1],
            "fill": "toself", "fillcolor": ACCENT_FILL, "line": {"width": 0}, "hoverinfo": "skip",
            "name": "bootstrap 95% band",
        })
    traces.append({
        "type": "scatter", "mode": "lines", "x": bx, "y": _num(band["y_fit"]),
        "line": {"color": ACCENT, "width": 2}, "name": "fit",
        "hovertemplate": "fit %{y:.4g} at %{x:.3s}<extra></extra>",
    })
    return traces


def _point_traces(pts: pd.DataFrame) -> list[dict[str, Any]]:
    """The models of the family that carries the law, and beside them, labelled and apart, the others: a law is
    fitted across models that differ in size alone (`curves.in_fit`), never through other families."""
    if "in_fit" not in pts or pts["in_fit"].isna().all():
        return [_point_trace(pts)]
    inside = pts["in_fit"].map(lambda v: bool(v) if not is_missing(v) else True)
    traces = [_point_trace(pts[inside])] if inside.any() else []
    if (~inside).any():
        other = _point_trace(pts[~inside])
        other.update(name="other families (not in the fit)",
                     marker={"color": GREY, "size": 9, "symbol": "diamond-open", "line": {"width": 2}})
        traces.append(other)
    return traces


def _point_trace(pts: pd.DataFrame) -> dict[str, Any]:
    xs, ys = list(pts["_x"]), _num(pts["y"])
    errs = _num(pts["y_stderr"]) if "y_stderr" in pts else [None] * len(xs)
    return {
        "type": "scatter", "mode": "markers+text" if len(xs) <= MAX_TEXT_LABELS else "markers",
        "x": xs, "y": ys, "text": [e(m) for m in pts["model"]], "textposition": "top center", "cliponaxis": False,
        "textfont": {"size": 10, "color": "#4b5563"},
        "error_y": {"type": "data", "array": [v if v is not None else 0 for v in errs],
                    "visible": any(v is not None for v in errs), "color": "#6b7280", "thickness": 1},
        "marker": {"color": INK, "size": 8},
        "name": "measured (± stderr)",
        "hovertemplate": "%{text}<br>x = %{x:.3s}<br>y = %{y:.4g}<extra></extra>",
    }


def _knee_traces(knees: pd.DataFrame, lo_y: float, hi_y: float) -> list[dict[str, Any]]:
    traces = []
    for _, knee in knees.iterrows():
        kx = as_float(knee.get("x"))
        if kx is None or kx <= 0:
            continue
        traces.append({
            "type": "scatter", "mode": "lines+text", "x": [kx, kx], "y": [lo_y, hi_y],
            "text": ["", "knee: " + e(knee.get("model"))], "textposition": "top right",
            "textfont": {"color": KNEE, "size": 11}, "line": {"color": KNEE, "dash": "dash", "width": 1.5},
            "name": "knee (" + e(knee.get("method")) + ")", "hoverinfo": "skip",
        })
    return traces


def _axis_name(axis: str, estimated: set[str] | frozenset[str]) -> str:
    """Axis label, with '(estimated)' when any figure on that axis is an estimate (its *_source says so)."""
    return axis_label(axis) + (" (estimated)" if axis in estimated else "")


def returns_figures(curves: pd.DataFrame, fit_bands: pd.DataFrame, knees: pd.DataFrame,
                    estimated: frozenset[str] = frozenset()) -> list[Figure]:
    """Score vs each size axis (log2 x) per task/metric: points with stderr, fitted line, band, knees."""
    figs: list[Figure] = []
    for (task, metric, axis), pts in _group(curves, ["task", "metric", "axis"]):
        pts = pts.assign(_x=_num(pts["x"])).dropna(subset=["_x"]).sort_values("_x")
        if pts.empty:
            continue
        band = _select(fit_bands, task=task, metric=metric, axis=axis)
        traces: list[dict[str, Any]] = []
        all_x = list(pts["_x"])
        if not band.empty:
            band = band.assign(_x=_num(band["x"])).dropna(subset=["_x"]).sort_values("_x")
            all_x += list(band["_x"])
            traces += _band_traces(band)
        traces += _point_traces(pts)
        y_all = [v for v in _num(pts["y"]) if v is not None] + [
            v for v in (_num(band["y_low"]) + _num(band["y_high"]) if not band.empty else []) if v is not None]
        lo_y, hi_y = (min(y_all), max(y_all)) if y_all else (0.0, 1.0)
        traces += _knee_traces(_select(knees, task=task, metric=metric, axis=axis), lo_y, hi_y)
        layout = _layout(
            f"{e(task)} · {e(metric)} vs {e(_axis_name(str(axis), estimated))}",
            xaxis={"title": {"text": e(_axis_name(str(axis), estimated)) + " (log₂ scale)"}, **log2_axis(all_x)},
            yaxis={"title": {"text": _metric_title(metric)}},
        )
        figs.append(Figure(f"fig-returns-{len(figs)}", f"{task} {metric} vs {axis}",
                           {"data": traces, "layout": layout, "config": _config()},
                           {"task": task, "metric": metric, "axis": axis}))
    return figs


def pareto_figures(pareto: pd.DataFrame, estimated: frozenset[str] = frozenset()) -> list[Figure]:
    """Quality vs each cost axis; frontier highlighted and joined, dominated models greyed."""
    figs: list[Figure] = []
    for (task, metric, cost_axis), pts in _group(pareto, ["task", "metric", "cost_axis"]):
        pts = pts.assign(_c=_num(pts["cost"]), _q=_num(pts["quality"])).dropna(subset=["_c", "_q"])
        if pts.empty:
            continue
        on = pts["on_frontier"].map(lambda v: bool(v) if not is_missing(v) else False)
        front, dominated = pts[on].sort_values("_c"), pts[~on]
        label_points = len(pts) <= MAX_TEXT_LABELS
        hover = "%{text}<br>cost = %{x:.4g}<br>quality = %{y:.4g}<extra></extra>"
        traces: list[dict[str, Any]] = []
        if not dominated.empty:
            traces.append({
                "type": "scatter", "mode": "markers+text" if label_points else "markers",
                "x": list(dominated["_c"]), "y": list(dominated["_q"]), "text": [e(m) for m in dominated["model"]],
                "textposition": "top center", "textfont": {"size": 10, "color": GREY}, "cliponaxis": False,
                "marker": {"color": GREY, "size": 9, "symbol": "circle-open", "line": {"width": 2}},
                "name": "dominated", "hovertemplate": hover,
            })
        if not front.empty:
            traces.append({
                "type": "scatter", "mode": "lines+markers+text" if label_points else "lines+markers",
                "x": list(front["_c"]), "y": list(front["_q"]), "text": [e(m) for m in front["model"]],
                "textposition": "top center", "textfont": {"size": 10, "color": INK}, "cliponaxis": False,
                "line": {"color": ACCENT, "width": 2, "shape": "linear"},
                "marker": {"color": ACCENT, "size": 10},
                "name": "Pareto frontier", "hovertemplate": hover,
            })
        title = f"{e(task)} · {e(metric)} vs {e(_axis_name(str(cost_axis), estimated))}"
        layout = _layout(
            title,
            xaxis={"title": {"text": e(_axis_name(str(cost_axis), estimated)) + " · lower is cheaper"},
                   **_cost_axis(list(pts["_c"]))},
            yaxis={"title": {"text": _metric_title(metric)}},
        )
        figs.append(Figure(f"fig-pareto-{len(figs)}", f"{task} {metric} vs {cost_axis}",
                           {"data": traces, "layout": layout, "config": _config()},
                           {"task": task, "metric": metric, "cost_axis": cost_axis}))
    return figs


def ece_lookup(scores: pd.DataFrame | None) -> dict[tuple[str, str], float]:
    """(model, task) -> ECE from the scores frame (metric 'ece')."""
    if scores is None or scores.empty or not {"model", "task", "metric", "value"} <= set(scores.columns):
        return {}
    out: dict[tuple[str, str], float] = {}
    for _, row in scores[scores["metric"] == "ece"].iterrows():
        v = as_float(row["value"])
        if v is not None:
            out[(str(row["model"]), str(row["task"]))] = v
    return out


def calibration_figures(calibration: pd.DataFrame, scores: pd.DataFrame | None) -> list[Figure]:
    """Reliability diagrams per model and task, with the diagonal of perfect calibration."""
    figs: list[Figure] = []
    eces = ece_lookup(scores)
    for (model, task), pts in _group(calibration, ["model", "task"]):
        pts = pts.assign(_c=_num(pts["confidence"]), _a=_num(pts["accuracy"])).dropna(subset=["_c", "_a"])
        if pts.empty:
            continue
        pts = pts.sort_values("_c")
        counts = _num(pts["count"]) if "count" in pts else [None] * len(pts)
        biggest = max([c for c in counts if c is not None] or [1.0])
        sizes = [6 + 10 * math.sqrt((c or 0) / biggest) for c in counts]
        traces = [
            {"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "perfect calibration",
             "line": {"color": GREY, "dash": "dash", "width": 1}, "hoverinfo": "skip"},
            {"type": "scatter", "mode": "lines+markers", "x": list(pts["_c"]), "y": list(pts["_a"]),
             "customdata": [c if c is not None else "" for c in counts],
             "marker": {"color": ACCENT, "size": sizes}, "line": {"color": ACCENT, "width": 1.5},
             "name": "bins (size = items)",
             "hovertemplate": "confidence %{x:.3f}<br>accuracy %{y:.3f}<br>%{customdata} items<extra></extra>"},
        ]
        ece = eces.get((str(model), str(task)))
        title = f"{e(model)} · {e(task)}" + (f" · ECE {sig(ece, 3)}" if ece is not None else "")
        layout = _layout(
            title, height=330, showlegend=False,
            margin={"l": 52, "r": 12, "t": 44, "b": 46},
            xaxis={"title": {"text": "confidence"}, "range": [0, 1], "dtick": 0.2},
            yaxis={"title": {"text": "accuracy"}, "range": [0, 1], "dtick": 0.2},
        )
        figs.append(Figure(f"fig-calibration-{len(figs)}", f"reliability {model} {task}",
                           {"data": traces, "layout": layout, "config": _config()},
                           {"model": model, "task": task, "ece": ece}))
    return figs


def _select(frame: pd.DataFrame | None, **where: Any) -> pd.DataFrame:
    if frame is None or frame.empty or not set(where) <= set(frame.columns):
        return pd.DataFrame()
    mask = pd.Series(True, index=frame.index)
    for col, value in where.items():
        mask &= frame[col] == value
    return frame[mask]


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int | float):
        return as_float(obj) if isinstance(obj, float) else obj
    f = as_float(obj)
    return f if f is not None else (None if is_missing(obj) else str(obj))


def figures_json(figures: list[Figure]) -> str:
    """All figures as one JSON object {id: figure}, safe inside <script type="application/json">.

    ``<``, ``>`` and ``&`` only occur inside JSON strings, so escaping them as ``\\u003c`` etc. keeps the
    JSON identical once parsed while ``</script>`` or ``<!--`` can never appear in the page source.
    """
    payload = json.dumps({f.id: _clean(f.figure) for f in figures}, allow_nan=False, ensure_ascii=False)
    return (payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
