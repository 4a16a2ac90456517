"""Pick the smallest model that meets every constraint, or say which constraint each model fails.

"Smallest" is by total parameters (then active parameters, then FLOPs/token): the point of the
tool is to not pay for scale you do not need.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from beyondscale.errors import UserError

# constraint key -> (table column, unit scale applied to the table value, human label)
_MAX_KEYS = {
    "max_latency_ms": ("latency_ms_per_item", 1.0, "latency {v:.4g} ms/item > {lim:.4g}"),
    "max_memory_gb": ("peak_memory_bytes", 1e-9, "peak memory {v:.3g} GB > {lim:.4g}"),
    "max_joules_per_token": ("joules_per_token", 1.0, "energy {v:.3g} J/token > {lim:.4g}"),
    "max_usd_per_1m_tokens": ("usd_per_1m_tokens", 1.0, "cost ${v:.3g}/1M tokens > {lim:.4g}"),
}
KNOWN_KEYS = {"min_score", "task", "metric", *_MAX_KEYS}


def score_column(table: pd.DataFrame, constraints: dict[str, Any], primary: dict[str, str]) -> str:
    """The leaderboard column ``min_score`` applies to: task/metric, the task's primary metric, or the mean."""
    task, metric = constraints.get("task"), constraints.get("metric")
    if task is None:
        if metric is not None:
            raise UserError("constraint 'metric' needs a 'task' too")
        return "mean_score"
    metric = metric or primary.get(str(task))
    if metric is None:
        raise UserError(f"constraint task '{task}' has no results (tasks: {', '.join(sorted(primary)) or 'none'})")
    col = f"{task}/{metric}"
    if col not in table.columns:
        raise UserError(f"constraint on '{col}': no such task/metric in the results")
    return col


def _size_order(table: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("params_total", "params_active", "flops_per_token") if c in table.columns]
    return table.sort_values(keys + ["model"], kind="stable", na_position="last")


def recommend(table: pd.DataFrame, constraints: dict[str, Any] | None, primary: dict[str, str],
              higher_better: bool = True) -> dict[str, Any]:
    """Smallest model meeting every constraint; ``table`` is the leaderboard (one row per model).

    Constraints: min_score (with optional task and metric; default the mean of primary scores),
    max_latency_ms, max_memory_gb, max_joules_per_token, max_usd_per_1m_tokens. A missing figure
    fails its constraint ("unknown"), because a recommendation must not rest on data we lack.
    """
    constraints = dict(constraints or {})
    unknown = sorted(set(constraints) - KNOWN_KEYS)
    if unknown:
        raise UserError(f"unknown constraint(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_KEYS))}")
    for k, v in constraints.items():
        if k not in ("task", "metric") and v is not None:
            try:
                float(v)
            except (TypeError, ValueError):
                raise UserError(f"constraint {k}={v!r} is not a number") from None
    if table.empty:
        return {"model": None, "reason": "no models to choose from", "constraints": constraints, "candidates": []}
    col = score_column(table, constraints, primary) if constraints.get("min_score") is not None else None
    candidates: list[dict[str, Any]] = []
    for r in _size_order(table).to_dict("records"):
        fails: list[str] = []
        if col is not None:
            lim = float(constraints["min_score"])
            v = r.get(col, float("nan"))
            v = float(v) if v is not None else float("nan")
            if not math.isfinite(v):
                fails.append(f"{col} unknown")
            elif (v < lim) if higher_better else (v > lim):
                fails.append(f"{col} {v:.4g} {'<' if higher_better else '>'} {lim:.4g}")
        for key, (c, scale, fmt) in _MAX_KEYS.items():
            if constraints.get(key) is None:
                continue
            lim = float(constraints[key])
            v = r.get(c, float("nan"))
            v = float(v) * scale if v is not None and np.isfinite(float(v)) else float("nan")
            if not math.isfinite(v):
                fails.append(f"{c} unknown")
            elif v > lim:
                fails.append(fmt.format(v=v, lim=lim))
        candidates.append({"model": str(r["model"]), "params_total": _num(r.get("params_total")),
                           "feasible": not fails, "fails": fails})
    feasible = [c for c in candidates if c["feasible"]]
    if feasible:
        best = feasible[0]
        n_active = sum(1 for k in constraints if k not in ("task", "metric") and constraints[k] is not None)
        what = f"meets all {n_active} constraint(s)" if n_active else "no constraints given"
        reason = f"{best['model']} is the smallest model that {what}" if n_active else \
            f"{best['model']} is the smallest model ({what})"
        return {"model": best["model"], "reason": reason, "constraints": constraints, "candidates": candidates}
    parts = [f"{c['model']}: {'; '.join(c['fails'])}" for c in candidates]
    return {"model": None, "reason": "no model meets every constraint (" + " | ".join(parts) + ")",
            "constraints": constraints, "candidates": candidates}


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
