"""Pick the smallest model that meets every constraint, or say which constraint each model fails.

"Smallest" is by total parameters (then active parameters, then FLOPs/token, then the model key, never
the name): the point of the tool is to not pay for scale you do not need.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from beyondscale.errors import UserError

# constraint key -> (table column, unit scale applied to the table value, human label)
_MAX_KEYS = {
    "max_latency_ms": ("ms_per_item", 1.0, "batch time {v:.4g} ms/item > {lim:.4g}"),
    "max_ms_per_item": ("ms_per_item", 1.0, "batch time {v:.4g} ms/item > {lim:.4g}"),
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
    tie = ["model_key"] if "model_key" in table.columns else ["model"]
    return table.sort_values(keys + tie, kind="stable", na_position="last")


def _fails(r: dict[str, Any], col: str | None, constraints: dict[str, Any], higher_better: bool) -> list[str]:
    """Why one leaderboard row fails the constraints (a missing figure fails: no pick rests on data we lack)."""
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
            fails.append(fmt.format(v=v, lim=lim) + f" ({key})")
    return fails


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
    if "latency_ms_per_item" in table.columns and "ms_per_item" not in table.columns:  # pre-rename frames
        table = table.rename(columns={"latency_ms_per_item": "ms_per_item"})
    if table.empty:
        return {"model": None, "reason": "no models to choose from", "constraints": constraints, "candidates": []}
    col = score_column(table, constraints, primary) if constraints.get("min_score") is not None else None
    candidates = []
    for r in _size_order(table).to_dict("records"):
        fails = _fails(r, col, constraints, higher_better)
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


# ------------------------------------------------------------------------ the rule behind a recommendation
# Rules, in order (the first that applies decides, and is named in the reason):
#   constraints: the smallest model meeting every constraint (`recommend`);
#   primary:     the smallest model no other model is significantly better than on the primary task;
#   unbeaten:    the smallest model no other model is significantly better than on any task's primary metric;
#   none:        when every model is beaten somewhere (no dominant model) and no rule was given;
#   no tests:    without per-item results, the smallest model, saying the models were not told apart.
# Whatever the rule, the reason says where a smaller or same-size model is significantly better than the pick.


def _cheaper_wins(ctx: Any, ws: list, pick: str | None) -> tuple:
    from beyondscale.analysis.inputs import size_relation

    key_of = {v: k for k, v in ctx.name.items()}
    if pick is None:
        return ()
    return tuple(w for w in ws if w.worse == pick
                 and size_relation(ctx.size[key_of[w.better]], ctx.size[key_of[pick]]) in (0, -1))


def _smallest_unbeaten(ctx: Any, models: list[str], ws: list) -> str | None:
    beaten = {w.worse for w in ws}
    return next((ctx.name[k] for k in ctx.order if ctx.name[k] in models and ctx.name[k] not in beaten), None)


def _same_size_ties(ctx: Any, pick: str | None, tested: list[str], ws: list) -> list[str]:
    """Other unbeaten models of the pick's size: the order between them is only the content key."""
    from beyondscale.analysis.inputs import size_relation

    if pick is None:
        return []
    key_of = {v: k for k, v in ctx.name.items()}
    beaten = {w.worse for w in ws}
    return [m for m in tested if m != pick and m not in beaten
            and size_relation(ctx.size[key_of[m]], ctx.size[key_of[pick]]) == 0]


def _passed_over(ctx: Any, models: list[str], ws: list, pick: str) -> str:
    before = []
    for k in ctx.order:
        name = ctx.name[k]
        if name == pick:
            break
        if name in models:
            by = [w for w in ws if w.worse == name]
            first = [w for w in by if w.better == by[0].better] if by else []
            more = f"; {len(by) - len(first)} more wins by other models" if len(by) > len(first) else ""
            before.append(f"{name} ({first[0].better} is significantly better on "
                          f"{', '.join(w.task for w in first)}{more})" if by else name)
    return "; passed over: " + ", ".join(before) if before else ""


def _best_untested(lb: pd.DataFrame, task: str, metric: str) -> Any:
    from beyondscale.analysis.findings import Recommendation
    from beyondscale.analysis.marginal import higher_is_better

    col = lb[f"{task}/{metric}"].astype(float)
    if col.notna().sum() == 0:
        return Recommendation(None, "primary", f"no model has a {metric} score on the primary task {task}")
    best = lb.loc[col.idxmax() if higher_is_better(metric) else col.idxmin(), "model"]
    return Recommendation(str(best), "primary", f"the best {metric} on the primary task {task}, but with no paired "
                          "test on it (no per-item results, or too few items), so the difference is not tested")


def _tested(paired: pd.DataFrame, task: str | None) -> list[str]:
    """Models that took part in a primary-metric paired test (on `task`, or on any task) that could be run (a p
    value; not too few items): only they can be 'unbeaten'; a model never compared is not better for it."""
    if paired.empty:
        return []
    p = paired[paired["primary"].astype(bool) & pd.to_numeric(paired["p_value"], errors="coerce").notna()]
    if task is not None:
        p = p[p["task"] == task]
    return sorted(set(p["model_a"]) | set(p["model_b"]))


def choose(ctx: Any, lb: pd.DataFrame, paired: pd.DataFrame, primary: dict[str, str], primary_task: str | None,
           constraints: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """The Recommendation finding and the `Analysis.recommendation` dict, by the first rule that applies."""
    from beyondscale.analysis.derive import wins
    from beyondscale.analysis.findings import Recommendation
    from beyondscale.analysis.marginal import higher_is_better
    from beyondscale.analysis.wording import recommendation_reason

    active = {k: v for k, v in (constraints or {}).items() if v is not None}
    ws = wins(ctx, paired)
    models = [str(m) for m in lb["model"]]
    tested = _tested(paired, None)
    pool, pool_ws = tested, ws  # who the pick was chosen among, and the wins that counted
    base = {"constraints": active, "candidates": []}
    if any(k not in ("task", "metric") for k in active):
        m = active.get("metric") or primary.get(str(active.get("task")))
        out = recommend(lb, active, primary, higher_better=higher_is_better(m) if m else True)
        base, f = out, Recommendation(out["model"], "constraints", out["reason"])
    elif primary_task is not None and _tested(paired, primary_task):
        pool, pool_ws = _tested(paired, primary_task), [w for w in ws if w.task == primary_task]
        pick = _smallest_unbeaten(ctx, pool, pool_ws)
        f = Recommendation(pick, "primary", f"by the primary task {primary_task} ({primary[primary_task]}): no other "
                           "model is significantly better on it, and it is the smallest such model")
    elif primary_task is not None:
        f = _best_untested(lb, primary_task, primary[primary_task])
    elif tested:
        pick = _smallest_unbeaten(ctx, tested, ws)
        if pick is None:
            f = Recommendation(None, "none", "no model dominates and no rule was given to choose: pass a primary "
                               "task (primary=TASK, --primary TASK) or constraints")
        else:
            f = Recommendation(pick, "unbeaten", "no other model is significantly better on any task's primary metric "
                               "(paired tests on the same items, Holm-adjusted p<0.05), and it is the smallest such "
                               "model" + _passed_over(ctx, models, ws, pick))
    else:
        pick = next((ctx.name[k] for k in ctx.order if ctx.name[k] in models), None)
        f = Recommendation(pick, "no tests", "the smallest model, by default: without a paired test (no per-item "
                           "results, or too few items to test) nothing tells the models apart (give constraints or a "
                           "primary task for a real choice)")
    ties = _same_size_ties(ctx, f.model, pool, pool_ws) if f.rule in ("primary", "unbeaten") else []
    detail = f.detail + (f"; {', '.join(ties)} {'is' if len(ties) == 1 else 'are'} the same size and not "
                         "significantly worse: either will do (listed by content key)" if ties else "")
    f = Recommendation(f.model, f.rule, detail, _cheaper_wins(ctx, ws, f.model))
    return f, {**base, "model": f.model, "rule": f.rule, "primary": primary_task, "reason": recommendation_reason(f)}
