"""Report sections built from an Analysis: verdict lines, recommendation, returns groups, run info."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from beyondscale.analysis.findings import FramingWarning
from beyondscale.analysis.types import Analysis
from beyondscale.analysis.wording import words
from beyondscale.report import figures as F
from beyondscale.report.data import as_frame, jsonable
from beyondscale.report.format import (
    COLUMNS,
    as_float,
    axis_label,
    column_label,
    count,
    format_cell,
    is_missing,
    sig,
    text,
)
from beyondscale.report.tables import fits_table, frame_table, marginal_table


def verdict_lines(analysis: Analysis) -> list[str]:
    """The verdict every renderer shows: the findings worded by `analysis.wording` (the CLI prints the same)."""
    return words(analysis.findings) if analysis.findings else list(analysis.verdict or [])


def framing_note(analysis: Analysis) -> str:
    """Said under the title when models differ in more than size, whatever the title claims."""
    if not any(isinstance(f, FramingWarning) for f in analysis.findings):
        return ""
    if any(getattr(f, "controlled_scaling", False) for f in analysis.findings):  # a trained ladder's fit
        return ("These models differ in more than size (family, tokenizer, vocabulary, architecture or "
                "quantisation): comparisons across all of them do not measure what scale alone buys; the trained "
                "dense ladder's fit does, because its rungs differ only in size.")
    return ("These models differ in more than size (family, tokenizer, vocabulary or quantisation): this report "
            "compares models; it does not measure what scale alone buys.")


def select(frame: pd.DataFrame, **where: Any) -> pd.DataFrame:
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
        frame = as_frame(frame)
        if not frame.empty and {"task", "metric"} <= set(frame.columns):
            keys |= {(str(t), str(m)) for t, m in frame[["task", "metric"]].drop_duplicates().itertuples(index=False)}
    groups = []
    for task, metric in sorted(keys):
        knees = select(as_frame(analysis.knees), task=task, metric=metric)
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
            "fits": fits_table(select(as_frame(analysis.fits), task=task, metric=metric)),
            "marginal": marginal_table(select(as_frame(analysis.marginal), task=task, metric=metric)),
            "knees": knee_lines,
        })
    return groups


def recommendation_view(rec: Mapping[str, Any] | None) -> dict[str, Any] | None:
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


def run_info_items(run_info: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    out = []
    for k, v in (run_info or {}).items():
        if isinstance(v, Mapping | list | tuple):
            v = json.dumps(jsonable(v), ensure_ascii=False)
        out.append((str(k), text(v)))
    return out


def extra_sections_view(extra: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """extra_sections hook: dicts with 'title', optional 'text', 'frames' ({caption: DataFrame} or a list) and
    'figures' (plotly figures; their data strings must already be escaped, as report/figures.e does)."""
    out = []
    for sec in extra or []:
        frames = sec.get("frames") or {}
        items = frames.items() if isinstance(frames, Mapping) else [("", f) for f in frames]
        tables = [{"caption": str(cap), "table": frame_table(df)} for cap, df in items]
        out.append({"title": text(sec.get("title")) or "extra", "text": text(sec.get("text")),
                    "tables": [t for t in tables if t["table"] is not None],
                    "figures": list(sec.get("figures") or [])})
    return out


def counts(models: pd.DataFrame, scores: pd.DataFrame, lb: pd.DataFrame) -> dict[str, int]:
    n_models = 0
    for df, col in ((models, "model_key"), (scores, "model_key"), (lb, "model")):
        if not df.empty and col in df.columns:
            n_models = max(n_models, df[col].nunique())
    n_tasks = scores["task"].nunique() if not scores.empty and "task" in scores.columns else 0
    return {"models": int(n_models), "tasks": int(n_tasks)}

