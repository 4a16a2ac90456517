"""Returns curves of quality against size and cost axes: points, fits with profile-t bands, marginal gains
per doubling, knees, backtests, and the two-variable L(N, D) fit with compute-optimal allocations.

One law per family: a law (and its knee, flattening and gains) is fitted only across models that differ in
size alone, the same facts the framing check compares (`inputs.lineage`). On each curve the family with
the most distinct sizes carries the fit; other models are points beside it (`curves.in_fit` False,
labelled by `family`). Gains per doubling compare neighbours within a family, never across a step of
under MIN_DOUBLINGS doublings (too small to divide by).

A knee needs a curve: at least MIN_KNEE_POINTS distinct sizes. A knee is where the slope changes, and a
slope change needs two slopes, hence three points; from two points any "knee" is just the first model.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pandas as pd

from beyondscale.analysis.context import Context
from beyondscale.analysis.fits import MIN_POINTS, FitResult, fit_arrays
from beyondscale.analysis.inputs import lineage
from beyondscale.analysis.law import MetricLaw, backtest, law_settings
from beyondscale.analysis.marginal import (
    default_threshold,
    gains_arrays,
    higher_is_better,
    improvement,
    knee_threshold,
    kneedle_arrays,
)

MODEL_AXES = ("params_total", "params_active", "flops_per_token", "training_flops")
COST_CURVE_AXES = ("joules_per_token", "usd_per_1m_tokens")
AXES = MODEL_AXES + COST_CURVE_AXES
FIT_AXES = MODEL_AXES
BAND_POINTS = 40
MIN_KNEE_POINTS = 3
MIN_DOUBLINGS = 0.1  # a step smaller than this (7% in size) is not divided by: its gain per doubling is NaN
_FIT_PARAMS = {"score": ("asymptote", "A", "alpha"), "loss": ("floor", "A", "alpha"),
               "loss_nd": ("floor", "A", "alpha", "B", "beta")}


def fit_curve(ctx: Context, form: str, x: np.ndarray, y: np.ndarray, key: tuple, settings: dict | None = None
              ) -> FitResult:
    """Fit with a cache keyed on the standardised log-x pattern: axes that are c * x**k of another
    (FLOPs/token = 2 x params, active = total for dense models, 6 N D with D = 20 N) reuse one fit."""
    settings = settings or {}
    lx = np.log(x)
    tc = lx - lx.mean()
    scale = float(np.sqrt(np.mean(tc**2)))
    ck = (form, repr(sorted(settings.items())), tuple(np.round(tc / scale, 9)) + tuple(np.round(y, 12)))
    hit = ctx.fit_cache.get(ck)
    if hit is not None:
        return hit[0].transformed(scale / hit[1], float(lx.mean()))
    res = fit_arrays(x, y, form, n_boot=ctx.n_boot, seed=ctx.seed + zlib.crc32(repr(key).encode()) % 100_000,
                     floor_bounds=settings.get("floor_bounds"), noise=settings.get("noise"))
    ctx.fit_cache[ck] = (res, scale)
    return res


def fit_rows(task: str, metric: str, axis: str, form: str, res: FitResult | None, n: int, reason: str = "",
             space: str = "linear") -> list[dict[str, Any]]:
    """One row per constant: the floor (losses) or asymptote (scores) in the metric's units, A and alpha on
    the fitting scale (`space`: 'ln' for perplexities); a skipped fit or a missing interval says why."""
    base = {"task": task, "metric": metric, "axis": axis, "form": form, "n_points": n, "space": space}
    if res is None:
        return [{**base, "param": "", "value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "status": "skipped",
                 "reason": reason}]
    rows = []
    back = np.exp if space == "ln" else (lambda v: v)
    for name in _FIT_PARAMS[form]:
        key = "E" if name in ("floor", "asymptote") else name
        lo, hi = res.ci.get(key, (np.nan, np.nan))
        value = getattr(res, key)
        if key == "E":
            value, lo, hi = back(value), back(lo), back(hi)
        rows.append({**base, "param": name, "value": value, "ci_low": lo, "ci_high": hi, "status": "ok",
                     "reason": res.interval_note})
    return rows


def axis_lookup(ctx: Context, eff: pd.DataFrame, eff_model: pd.DataFrame) -> tuple[dict, dict]:
    """{axis: {model_key: x}} for model-level values and {axis: {(model_key, task): x}} for per-task costs."""
    model_vals = {a: dict(zip(ctx.table["model_key"], ctx.table[a].astype(float), strict=True)) for a in MODEL_AXES}
    task_vals: dict[str, dict] = {}
    for a in COST_CURVE_AXES:
        v = pd.to_numeric(eff[a], errors="coerce").to_numpy(float)
        task_vals[a] = {(k, t): x for k, t, x in zip(eff["model_key"].astype(str), eff["task"], v, strict=True)
                        if np.isfinite(x)}
        model_vals[a] = dict(zip(eff_model["model_key"].astype(str),
                                 pd.to_numeric(eff_model[a], errors="coerce").astype(float), strict=True))
    return model_vals, task_vals


def _knees(base: dict, gains: dict, x: np.ndarray, y: np.ndarray, names: np.ndarray, hb: bool, thr: float
           ) -> list[dict[str, Any]]:
    if len(np.unique(x)) < MIN_KNEE_POINTS:
        return []
    out = []
    kt = knee_threshold(gains, thr)
    if kt is not None:
        out.append({**base, "model": kt[0], "x": kt[1], "method": "threshold", "threshold": thr})
    kk = kneedle_arrays(x, y, names, hb)
    if kk is not None:
        out.append({**base, "model": kk[0], "x": kk[1], "method": "kneedle", "threshold": np.nan})
    return out


def _fit_axis(ctx: Context, out: dict[str, list], base: dict, pts: tuple, gains: dict, hb: bool) -> None:
    x, y, _, names = pts
    task, metric, axis = base["task"], base["metric"], base["axis"]
    settings = law_settings(metric, y)
    form, space = settings["form"], settings["space"]
    n_distinct, need = len(np.unique(x)), MIN_POINTS[form]
    if n_distinct < need:
        what = f"{len(x)} models" if n_distinct == len(x) else f"{n_distinct} distinct {axis} values"
        out["fits"] += fit_rows(task, metric, axis, form, None, len(x),
                                f"{what}: a 3-parameter curve needs at least {need} of one family", space)
        return
    if form == "loss" and (y <= 0).any():
        out["fits"] += fit_rows(task, metric, axis, form, None, len(x),
                                "non-positive values: a loss law needs positive values", space)
        return
    fit_y = np.log(y) if space == "ln" else y
    res = fit_curve(ctx, form, x, fit_y, (task, metric, axis),
                    {"floor_bounds": settings["floor_bounds"], "noise": settings["noise"]})
    law = MetricLaw(metric, res, space)
    out["fits"] += fit_rows(task, metric, axis, form, res, len(x), space=space)
    grid = np.logspace(np.log10(x.min()), np.log10(x.max()), BAND_POINTS)
    yf, lo, hi = law.predict_interval(grid)
    out["fit_bands"] += [{**base, "x": a, "y_fit": b, "y_low": c, "y_high": d}
                         for a, b, c, d in zip(grid, yf, lo, hi, strict=True)]
    fg = improvement(law.predict(x[:-1]), law.predict(x[1:]), hb)
    dbl = gains["doublings"]
    with np.errstate(divide="ignore", invalid="ignore"):
        fgpd = np.where(dbl >= MIN_DOUBLINGS, fg / np.where(dbl > 0, dbl, 1.0), np.nan)
    cols = list(gains)
    for i, vals in enumerate(zip(*(gains[c] for c in cols), strict=True)):
        out["marginal"].append({**base, **dict(zip(cols, vals, strict=True)), "gain": fg[i],
                                "gain_per_doubling": fgpd[i], "source": "fit"})
    bt = backtest(x, y, names, metric) if axis == "params_total" else None
    if bt is not None:
        out["backtests"].append({**base, **bt.to_json(), "low": bt.low, "high": bt.high})


def _family_gains(x: np.ndarray, y: np.ndarray, names: np.ndarray, fam: np.ndarray, hb: bool
                  ) -> list[dict[str, Any]]:
    """Adjacent gains within each family (never across families), NaN per doubling under MIN_DOUBLINGS."""
    rows = []
    for f in dict.fromkeys(fam):
        sel = fam == f
        if sel.sum() < 2:
            continue
        g = gains_arrays(x[sel], y[sel], names[sel], hb)
        g["gain_per_doubling"] = np.where(g["doublings"] >= MIN_DOUBLINGS, g["gain_per_doubling"], np.nan)
        cols = list(g)
        rows += [{**dict(zip(cols, vals, strict=True)), "family": f}
                 for vals in zip(*(g[c] for c in cols), strict=True)]
    return rows


def main_family(x: np.ndarray, fam: np.ndarray) -> str:
    """The family with the most distinct sizes (ties: the one with the largest model) carries the law."""
    return max(dict.fromkeys(fam), key=lambda f: (len(np.unique(x[fam == f])), float(x[fam == f].max())))


def _axis(ctx: Context, out: dict[str, list], base: dict, pts: tuple, thr: float) -> None:
    x, y, se, names, fam = pts
    hb = higher_is_better(base["metric"])
    main = main_family(x, fam)
    inside = fam == main
    out["curves"] += [{**base, "model": m, "x": a, "y": b, "y_stderr": c, "family": f, "in_fit": bool(i)}
                      for m, a, b, c, f, i in zip(names, x, y, se, fam, inside, strict=True)]
    out["marginal"] += [{**base, **r, "source": "adjacent"} for r in _family_gains(x, y, names, fam, hb)]
    xs, ys, ses, ns = x[inside], y[inside], se[inside], names[inside]
    gains = gains_arrays(xs, ys, ns, hb)
    gains["gain_per_doubling"] = np.where(gains["doublings"] >= MIN_DOUBLINGS, gains["gain_per_doubling"], np.nan)
    out["knees"] += [{**k, "family": main} for k in _knees(base, gains, xs, ys, ns, hb, thr)]
    if base["axis"] in FIT_AXES:
        _fit_axis(ctx, out, {**base, "family": main}, (xs, ys, ses, ns), gains, hb)


def curves_and_fits(ctx: Context, scores: pd.DataFrame, eff: pd.DataFrame, eff_model: pd.DataFrame,
                    quality: list[tuple[str, str]]) -> dict[str, list]:
    """Curve points, fits, bands, marginal gains, knees and backtests for every quality (task, metric) and axis."""
    out: dict[str, list] = {"curves": [], "fits": [], "fit_bands": [], "marginal": [], "knees": [], "backtests": []}
    model_vals, task_vals = axis_lookup(ctx, eff, eff_model)
    fam_of = lineage(ctx.table)
    groups = {key: g for key, g in scores.groupby(["task", "metric"], sort=False)}
    for task, metric in quality:
        s = groups[(task, metric)].drop_duplicates("model_key")
        keys = s["model_key"].astype(str).to_numpy()
        yv, sev = s["value"].to_numpy(float), s["stderr"].to_numpy(float)
        names_all = np.array([ctx.name.get(k, k) for k in keys], dtype=object)
        fams = np.array([fam_of.get(k, k) for k in keys], dtype=object)
        thr = ctx.min_gain if ctx.min_gain is not None else default_threshold(metric, yv)
        for axis in AXES:
            xv = np.array([task_vals.get(axis, {}).get((k, task), model_vals[axis].get(k, np.nan)) for k in keys])
            ok = np.isfinite(xv) & (xv > 0) & np.isfinite(yv)
            if ok.sum() < 2:
                continue
            o = np.lexsort((keys[ok].astype(str), xv[ok]))
            pts = (xv[ok][o], yv[ok][o], sev[ok][o], names_all[ok][o], fams[ok][o])
            _axis(ctx, out, {"task": task, "metric": metric, "axis": axis}, pts, thr)
    return out


def compute_optimal(ctx: Context, scores: pd.DataFrame, quality: list[tuple[str, str]]) -> tuple[list, list]:
    """Two-variable L(N, D) fits where training tokens vary, and Chinchilla-optimal allocations."""
    fits: list[dict[str, Any]] = []
    co: list[dict[str, Any]] = []
    t = ctx.table.set_index("model_key")
    for task, metric in quality:
        if higher_is_better(metric):
            continue
        s = scores[(scores["task"] == task) & (scores["metric"] == metric)].drop_duplicates("model_key")
        facts = t.reindex(s["model_key"].astype(str))
        n, d = facts["params_total"].to_numpy(float), facts["training_tokens"].to_numpy(float)
        y = s["value"].to_numpy(float)
        ok = np.isfinite(n) & np.isfinite(d) & np.isfinite(y) & (n > 0) & (d > 0) & (y > 0)
        if ok.sum() < MIN_POINTS["loss_nd"] or len(np.unique(d[ok])) < 2 or len(np.unique(n[ok])) < 2:
            continue
        if abs(np.corrcoef(np.log(n[ok]), np.log(d[ok]))[0, 1]) > 0.99:
            ctx.notes.append("no L(N, D) fit: training tokens move in lockstep with parameters across these "
                             "models, so their effects cannot be told apart")
            continue
        res = fit_arrays(n[ok], y[ok], "loss_nd", tokens=d[ok], n_boot=ctx.n_boot, seed=ctx.seed)
        fits += fit_rows(task, metric, "params_total,training_tokens", "loss_nd", res, int(ok.sum()))
        c = 6.0 * n[ok] * d[ok]
        grid = np.logspace(np.log10(c.min()), np.log10(c.max()) + 2, 13)
        nn, dd = res.compute_optimal(grid)
        if not np.isfinite(nn).all():
            ctx.notes.append(f"{task}/{metric}: the L(N, D) fit has a zero exponent: no compute-optimal allocation")
            continue
        co += [{"C": a, "N_opt": b, "D_opt": e, "task": task, "metric": metric} for a, b, e in zip(grid, nn, dd, strict=True)]
    return fits, co
