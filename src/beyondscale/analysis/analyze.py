"""Turn the store's frames into what scale buys: curves, fits, marginal gains, knees, paired tests,
Pareto frontiers, calibration, a recommendation, typed findings and the verdict that words them.

This module only orchestrates; each step lives in its own module (inputs, versions, curves, comparisons,
pareto, calibration, recommend, derive, wording). Never raises for thin data: with one model, or models
that share no items, the frames that need more stay empty and `Analysis.notes` says why.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from beyondscale.analysis import derive
from beyondscale.analysis.calibration import calibration_rows
from beyondscale.analysis.comparisons import finish_paired, paired_rows
from beyondscale.analysis.context import Context
from beyondscale.analysis.curves import compute_optimal, curves_and_fits
from beyondscale.analysis.fits import single_thread_blas
from beyondscale.analysis.inputs import (
    EFF_COLS,
    EFF_FRAME_COLS,
    FRAMING_FACTS,
    ITEM_COLS,
    MODEL_COLS,
    NON_QUALITY,
    SCORE_COLS,
    efficiency_by_model,
    frame,
    model_table,
    primary_metric,
)
from beyondscale.analysis.marginal import higher_is_better
from beyondscale.analysis.pareto import pareto_rows
from beyondscale.analysis.quantised import quantised_variants
from beyondscale.analysis.recommend import choose
from beyondscale.analysis.types import Analysis
from beyondscale.analysis.versions import Versions, own_version_rows, task_versions
from beyondscale.analysis.wording import words
from beyondscale.errors import UserError

__all__ = ["analyze", "primary_metric"]


def analyze(models: pd.DataFrame, scores: pd.DataFrame, efficiency: pd.DataFrame, items: pd.DataFrame, *,
            tasks: list[str] | None = None, metrics: list[str] | None = None,
            min_gain_per_doubling: float | None = None, constraints: dict[str, Any] | None = None,
            seed: int = 0, n_boot: int = 1000, primary: str | None = None,
            task_versions: pd.DataFrame | None = None) -> Analysis:
    """What scale buys across the models in the store frames (see `Analysis` for the frames).

    ``min_gain_per_doubling``: the gain a doubling must buy to be worth it (default 0.01 = one accuracy
    point for accuracy-like metrics, 0.02 for losses). ``constraints``: see `recommend`. ``primary``: the
    task that decides the recommendation when no model dominates. ``task_versions``: the store's `tasks`
    frame (task_key, task, created), which orders a task name's versions. Bootstraps use ``n_boot``
    resamples drawn from ``seed``.
    """
    with single_thread_blas():
        return _analyze(models, scores, efficiency, items, task_versions, tasks=tasks, metrics=metrics,
                        min_gain=min_gain_per_doubling, constraints=constraints, seed=seed, n_boot=n_boot,
                        primary_task=primary)


def _prepare(models, scores, efficiency, items, tasks, metrics) -> tuple[pd.DataFrame, ...]:
    models = frame(models, MODEL_COLS)
    scores, efficiency, items = (frame(scores, SCORE_COLS), frame(efficiency, EFF_FRAME_COLS),
                                 frame(items, ITEM_COLS))
    for df in (scores, efficiency, items):
        df["model_key"] = df["model_key"].astype(str)
        df["task_key"] = df["task_key"].astype(str)
    if tasks is not None:
        scores, efficiency, items = (df[df["task"].isin(list(tasks))] for df in (scores, efficiency, items))
    if metrics is not None:
        scores = scores[scores["metric"].isin(list(metrics))]
    scores = scores.assign(value=pd.to_numeric(scores["value"], errors="coerce"),
                           stderr=pd.to_numeric(scores["stderr"], errors="coerce"))
    items = items.assign(value=pd.to_numeric(items["value"], errors="coerce"))
    return models, scores, efficiency, items


def _quality(scores: pd.DataFrame) -> tuple[list[tuple[str, str]], dict[str, str]]:
    quality: list[tuple[str, str]] = []
    primary: dict[str, str] = {}
    for t in dict.fromkeys(scores["task"].dropna().astype(str)):
        ms = [m for m in dict.fromkeys(scores.loc[scores["task"] == t, "metric"].astype(str)) if m not in NON_QUALITY]
        if ms:
            primary[t] = primary_metric(ms)
            quality += [(t, m) for m in ms]
    return quality, primary


def _leaderboard(table: pd.DataFrame, scores: pd.DataFrame, eff_model: pd.DataFrame, primary: dict[str, str]
                 ) -> pd.DataFrame:
    lb = table[["model", "model_key", "params_total", "params_active", "flops_per_token", *FRAMING_FACTS]].copy()
    for t, m in primary.items():
        s = scores[(scores["task"] == t) & (scores["metric"] == m)].drop_duplicates("model_key")
        lb[f"{t}/{m}"] = lb["model_key"].map(dict(zip(s["model_key"], s["value"], strict=True)))
    lb = lb.merge(eff_model, on="model_key", how="left")
    for c in EFF_COLS:
        if c not in lb.columns:
            lb[c] = np.nan
    hb_cols = [f"{t}/{m}" for t, m in primary.items() if higher_is_better(m)]
    lb["mean_score"] = lb[hb_cols].mean(axis=1, skipna=False) if hb_cols else np.nan
    for extra in ("training_tokens", "training_flops"):
        lb[extra] = table[extra].values
    return lb


def _frame_of(rows: list[dict[str, Any]], empty: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    cols = list(empty.columns) + [c for c in extra if c not in empty.columns]
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows)
    for c in cols:
        if c not in df.columns:
            df[c] = np.nan
    return df[cols + [c for c in df.columns if c not in cols]]


def _check_primary(primary_task: str | None, primary: dict[str, str]) -> None:
    if primary_task is not None and primary_task not in primary:
        raise UserError(f"primary={primary_task!r}: no scored task of that name "
                        f"(tasks: {', '.join(sorted(primary)) or 'none'})")


def _analyze(models, scores, efficiency, items, versions_frame, *, tasks, metrics, min_gain, constraints, seed, n_boot,
             primary_task) -> Analysis:
    an = Analysis()
    models, scores, efficiency, items = _prepare(models, scores, efficiency, items, tasks, metrics)
    versions = task_versions(scores, versions_frame)
    own_scores, own_eff = own_version_rows(scores, versions), own_version_rows(efficiency, versions)
    table = model_table(models, scores, efficiency, items)
    ctx = Context(table, n_boot, seed, min_gain)
    quality, primary = _quality(own_scores)
    _check_primary(primary_task, primary)
    eff_model = efficiency_by_model(own_eff)
    an.leaderboard = _leaderboard(table, own_scores, eff_model, primary)
    an.versions = versions.frame(ctx.name) if not scores.empty else an.versions
    if table.empty or scores.empty:
        an.notes.append("no scores in the store: nothing to analyze (run `beyondscale eval` first)")
        an.recommendation = {"model": None, "reason": "no scored models", "constraints": dict(constraints or {}),
                             "candidates": []}
        return an
    an.calibration = _frame_of(calibration_rows(ctx.name, own_version_rows(items, versions), list(primary)),
                               an.calibration)
    unshared = _comparisons(ctx, an, own_scores, own_eff, eff_model, items, versions, quality, primary, metrics)
    rec, an.recommendation = choose(ctx, an.leaderboard, an.paired, primary, primary_task, constraints)
    an.findings = [rec, *quantised_variants(ctx, models, an.leaderboard, an.paired, primary),
                   *_findings(ctx, an, primary, versions, unshared)]
    an.verdict = words(an.findings)
    an.notes = list(dict.fromkeys(an.notes + ctx.notes))
    return an


def _comparisons(ctx: Context, an: Analysis, scores, eff, eff_model, items, versions: Versions, quality, primary,
                 metrics) -> list[tuple[str, str, str]]:
    """Curves, fits, paired tests and Pareto frontiers (two models at least); returns the unshared pairs."""
    n_models = int(scores["model_key"].nunique())
    if n_models < 2:
        an.notes.append(f"only 1 model ({ctx.table['model'].iloc[0]}): curves, fits, marginal gains, knees, paired "
                        "tests and Pareto frontiers need at least 2 models")
        return []
    parts = curves_and_fits(ctx, scores, eff, eff_model, quality)
    for name in ("curves", "fits", "fit_bands", "marginal", "knees", "backtests"):
        setattr(an, name, _frame_of(parts[name], getattr(an, name)))
    f2, co = compute_optimal(ctx, scores, quality)
    if f2:
        an.fits = pd.concat([an.fits, pd.DataFrame(f2)], ignore_index=True)
        an.compute_optimal = pd.DataFrame(co)
    scored = {t: set(g["metric"].astype(str)) for t, g in scores.groupby("task")}
    rows, unshared = paired_rows(items, ctx.order, versions, scored, metrics, ctx.n_boot, ctx.seed)
    an.paired = _frame_of([], an.paired) if not rows else _frame_of(
        finish_paired(rows, primary, ctx.name, ctx.size).to_dict("records"), an.paired)
    ctx.notes += [f"{ctx.name[a]} and {ctx.name[b]} share no items on {t}: no paired test" for t, a, b in unshared]
    if items.empty:
        an.notes.append("no per-item results: paired significance tests need them")
    an.pareto = _frame_of(pareto_rows(ctx.name, scores, eff, eff_model, primary, an.leaderboard), an.pareto,
                          extra=("dominated_by",))
    if an.fits.empty or (an.fits["status"] == "ok").sum() == 0:
        an.notes.append(f"no curve fits: a 3-parameter curve needs at least 4 models of different size "
                        f"({n_models} here)")
    return unshared


def _findings(ctx: Context, an: Analysis, primary: dict[str, str], versions: Versions,
              unshared: list[tuple[str, str, str]]) -> list[Any]:
    """Every finding after the recommendation, in the order a reader needs them."""
    steps = derive.size_steps(ctx, an.leaderboard, an.paired, primary)
    key_of = {v: k for k, v in ctx.name.items()}
    adjacent = {(key_of[s.a], key_of[s.b]) for s in steps} | {(key_of[s.b], key_of[s.a]) for s in steps}
    dominance = derive.dominance(ctx, an.paired, primary)
    return [*derive.constraint_findings(an.recommendation), *([dominance] if dominance else []),
            *derive.framing(ctx), *steps,
            *derive.cheaper_better(ctx, an.paired, adjacent), *derive.same_measurement(an.leaderboard),
            *derive.knee_findings(an.knees, an.marginal, an.curves, an.paired, primary, ctx.min_gain),
            *derive.backtest_findings(an.backtests, primary),
            *derive.version_findings(ctx, an.paired, unshared, versions)]
