"""Turn the store's frames into what scale buys: curves, fits, marginal gains, knees, paired tests,
Pareto frontiers, calibration, a recommendation and verdict sentences.

Never raises for thin data: with one model, or models that share no items, the frames that need
more stay empty and `Analysis.notes` says why.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np
import pandas as pd

from beyondscale.analysis.calibration import calibration_bins
from beyondscale.analysis.fits import MIN_POINTS, FitResult, fit_arrays, single_thread_blas
from beyondscale.analysis.marginal import (
    adjacent_gains,
    default_threshold,
    gains_arrays,
    higher_is_better,
    improvement,
    is_accuracy_like,
    knee_threshold,
    kneedle_arrays,
)
from beyondscale.analysis.paired import (
    bits_per_byte,
    bootstrap_bpb,
    bootstrap_means,
    bootstrap_p,
    count_matrix,
    is_binary,
    mcnemar_exact,
    percentile_ci,
)
from beyondscale.analysis.pareto import pareto_frontier
from beyondscale.analysis.recommend import recommend
from beyondscale.analysis.types import Analysis

MODEL_AXES = ("params_total", "params_active", "flops_per_token", "training_flops")
COST_CURVE_AXES = ("joules_per_token", "usd_per_1m_tokens")
AXES = MODEL_AXES + COST_CURVE_AXES
# Fits are made against size axes; cost axes get curves, marginal gains and knees (and Pareto).
FIT_AXES = MODEL_AXES
PARETO_COSTS = ("joules_per_token", "usd_per_1m_tokens", "latency_ms_per_item", "peak_memory_bytes")
# Per-item values that are not quality metrics on their own.
NON_QUALITY = {"confidence", "p_gold", "logprob", "bytes", "words", "tokens", "n_items", "correct", "pred", "gold"}
PRIMARY_ORDER = ("acc", "acc_norm", "exact_match", "f1", "mc2", "bits_per_byte", "word_perplexity", "perplexity")
EFF_COLS = ("tokens_per_s", "latency_ms_per_item", "peak_memory_bytes", "joules_per_token", "energy_source",
            "gco2e_per_1k_tokens", "usd_per_1m_tokens", "usd_per_correct", "mfu")
ALPHA = 0.05
BAND_POINTS = 40
AXIS_WORDS = {"params_total": "parameters", "params_active": "active parameters", "flops_per_token": "FLOPs per token",
              "training_flops": "training compute", "joules_per_token": "energy per token",
              "usd_per_1m_tokens": "cost per token"}

_MODEL_COLS = ("model_key", "model", "family", "params_total", "params_active", "flops_per_token",
               "training_tokens", "training_flops")
_SCORE_COLS = ("model_key", "model", "task", "metric", "value", "stderr", "n_items")
_EFF_FRAME_COLS = ("model_key", "model", "task", "seconds", "tokens_in", "tokens_out") + EFF_COLS
_ITEM_COLS = ("model_key", "model", "task", "doc_id", "metric", "value")


def _frame(df: pd.DataFrame | None, cols: tuple[str, ...]) -> pd.DataFrame:
    out = pd.DataFrame() if df is None else df.copy()
    for c in cols:
        if c not in out.columns:
            out[c] = np.nan
    if "model_key" in out.columns and out["model_key"].isna().all() and out["model"].notna().any():
        out["model_key"] = out["model"]
    return out


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f


def primary_metric(metrics: list[str]) -> str:
    """The metric a task is judged by: the first of acc, acc_norm, exact_match, ... present, else the first."""
    for m in PRIMARY_ORDER:
        if m in metrics:
            return m
    return sorted(metrics)[0]


# --------------------------------------------------------------------------- frames


def _model_table(models: pd.DataFrame, scores: pd.DataFrame, efficiency: pd.DataFrame,
                 items: pd.DataFrame) -> pd.DataFrame:
    """One row per model_key with display name and size facts (NaN when unknown)."""
    keys: list[str] = []
    names: dict[str, str] = {}
    for df in (models, scores, efficiency, items):
        pairs = df[["model_key", "model"]].drop_duplicates()
        for k, n in zip(pairs["model_key"].astype(object), pairs["model"].astype(object), strict=False):
            if k is None or (isinstance(k, float) and math.isnan(k)):
                continue
            k = str(k)
            if k not in names:
                keys.append(k)
                names[k] = str(n) if n is not None and not (isinstance(n, float) and math.isnan(n)) else k
    m = models.copy()
    m["model_key"] = m["model_key"].astype(str)
    m = m.drop_duplicates("model_key").set_index("model_key")
    rows = []
    for k in keys:
        r = {"model_key": k, "model": names[k]}
        for c in ("family", "params_total", "params_active", "params_non_embedding", "flops_per_token",
                  "training_tokens", "training_flops"):
            r[c] = m.at[k, c] if k in m.index and c in m.columns else np.nan
        for c in ("params_total", "params_active", "params_non_embedding", "flops_per_token", "training_tokens",
                  "training_flops"):
            r[c] = _num(r[c])
        if not math.isfinite(r["params_active"]):
            r["params_active"] = r["params_total"]
        if not math.isfinite(r["training_flops"]) and math.isfinite(r["training_tokens"]) \
                and math.isfinite(r["params_total"]):
            r["training_flops"] = 6.0 * r["params_total"] * r["training_tokens"]
        rows.append(r)
    table = pd.DataFrame(rows, columns=list(_MODEL_COLS)[:2] + ["family", "params_total", "params_active",
                                                                 "params_non_embedding", "flops_per_token",
                                                                 "training_tokens", "training_flops"])
    # disambiguate duplicate display names so every frame can key on `model`
    dup = table["model"].duplicated(keep=False)
    table.loc[dup, "model"] = table.loc[dup, "model"] + " [" + table.loc[dup, "model_key"] + "]"
    table["size"] = table["params_total"].where(table["params_total"].notna(), table["params_active"])
    table["size"] = table["size"].where(table["size"].notna(), table["flops_per_token"])
    return table.sort_values(["size", "model"], kind="stable", na_position="last").reset_index(drop=True)


def _efficiency_by_model(eff: pd.DataFrame) -> pd.DataFrame:
    """Model-level efficiency: means over tasks, peak memory as the max, energy sources joined."""
    if eff.empty:
        return pd.DataFrame(columns=["model_key", *EFF_COLS])
    num = [c for c in EFF_COLS if c not in ("energy_source", "peak_memory_bytes")]
    e = eff.copy()
    for c in num + ["peak_memory_bytes"]:
        e[c] = pd.to_numeric(e[c], errors="coerce")
    g = e.groupby("model_key", sort=False)
    out = g[num].mean()
    out["peak_memory_bytes"] = g["peak_memory_bytes"].max()
    out["energy_source"] = g["energy_source"].agg(
        lambda s: ",".join(sorted({str(v) for v in s if isinstance(v, str) and v})) or None)
    return out.reset_index()[["model_key", *EFF_COLS]]


# --------------------------------------------------------------------------- analysis


class _Ctx:
    def __init__(self, table: pd.DataFrame, n_boot: int, seed: int, min_gain: float | None) -> None:
        self.table = table
        self.n_boot = n_boot
        self.seed = seed
        self.min_gain = min_gain
        self.name = dict(zip(table["model_key"], table["model"], strict=True))
        self.size = dict(zip(table["model_key"], table["size"], strict=True))
        self.fit_cache: dict[tuple, tuple[FitResult, float]] = {}
        self.notes: list[str] = []


def _fit_curve(ctx: _Ctx, form: str, x: np.ndarray, y: np.ndarray, key: tuple) -> FitResult:
    """Fit with a cache keyed on the standardised log-x pattern: axes that are c * x**k of another
    (FLOPs/token = 2 x params, active = total for dense models, 6 N D with D = 20 N) reuse one fit."""
    lx = np.log(x)
    tc = lx - lx.mean()
    scale = float(np.sqrt(np.mean(tc**2)))
    pattern = tuple(np.round(tc / scale, 9)) + tuple(np.round(y, 12))
    ck = (form, pattern)
    hit = ctx.fit_cache.get(ck)
    if hit is not None:
        return hit[0].transformed(scale / hit[1], float(lx.mean()))
    res = fit_arrays(x, y, form, n_boot=ctx.n_boot, seed=ctx.seed + zlib.crc32(repr(key).encode()) % 100_000,
                     max_starts=2)
    ctx.fit_cache[ck] = (res, scale)
    return res


def _fit_rows(task: str, metric: str, axis: str, form: str, res: FitResult | None, n: int, reason: str = ""
              ) -> list[dict[str, Any]]:
    base = {"task": task, "metric": metric, "axis": axis, "form": form, "n_points": n}
    if res is None:
        return [{**base, "param": "", "value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "status": "skipped",
                 "reason": reason}]
    names = {"score": ("s_inf", "A", "alpha"), "loss": ("E", "A", "alpha"), "loss_nd": ("E", "A", "alpha", "B", "beta")}
    rows = []
    for name in names[form]:
        key = "E" if name == "s_inf" else name
        lo, hi = res.ci.get(key, (np.nan, np.nan))
        rows.append({**base, "param": name, "value": getattr(res, key), "ci_low": lo, "ci_high": hi, "status": "ok",
                     "reason": ""})
    return rows


def _axis_values(ctx: _Ctx, eff: pd.DataFrame, eff_model: pd.DataFrame) -> tuple[dict, dict]:
    """Lookups: model-level axis values {axis: {key: x}}, and per-task cost values {axis: {(key, task): x}}
    with the model's mean over tasks as fallback {axis: {key: x}} (merged into the first)."""
    model_vals = {a: dict(zip(ctx.table["model_key"], ctx.table[a].astype(float), strict=True)) for a in MODEL_AXES}
    task_vals: dict[str, dict] = {}
    for a in COST_CURVE_AXES:
        v = pd.to_numeric(eff[a], errors="coerce").to_numpy(float)
        task_vals[a] = {(k, t): x for k, t, x in zip(eff["model_key"].astype(str), eff["task"], v, strict=True)
                        if math.isfinite(x)}
        model_vals[a] = dict(zip(eff_model["model_key"].astype(str),
                                 pd.to_numeric(eff_model[a], errors="coerce").astype(float), strict=True))
    return model_vals, task_vals


def _curves_and_fits(ctx: _Ctx, scores: pd.DataFrame, eff: pd.DataFrame, eff_model: pd.DataFrame,
                     quality: list[tuple[str, str]]) -> dict[str, list]:
    out: dict[str, list] = {"curves": [], "fits": [], "fit_bands": [], "marginal": [], "knees": []}
    model_vals, task_vals = _axis_values(ctx, eff, eff_model)
    groups = {key: g for key, g in scores.groupby(["task", "metric"], sort=False)}
    for task, metric in quality:
        s = groups[(task, metric)].drop_duplicates("model_key")
        keys = s["model_key"].astype(str).to_numpy()
        yv = s["value"].to_numpy(float)
        sev = s["stderr"].to_numpy(float)
        names_all = np.array([ctx.name.get(k, k) for k in keys], dtype=object)
        hb = higher_is_better(metric)
        thr = ctx.min_gain if ctx.min_gain is not None else default_threshold(metric, yv)
        for axis in AXES:
            xv = np.array([task_vals.get(axis, {}).get((k, task), model_vals[axis].get(k, np.nan)) for k in keys],
                          dtype=float)
            ok = np.isfinite(xv) & (xv > 0) & np.isfinite(yv)
            if ok.sum() < 2:
                continue
            order = np.lexsort((names_all[ok].astype(str), xv[ok]))
            x, y, se, names = xv[ok][order], yv[ok][order], sev[ok][order], names_all[ok][order]
            base = {"task": task, "metric": metric, "axis": axis}
            out["curves"] += [{**base, "model": m, "x": a, "y": b, "y_stderr": c}
                              for m, a, b, c in zip(names, x, y, se, strict=True)]
            gains = gains_arrays(x, y, names, hb)
            gcols = list(gains)
            for vals in zip(*(gains[c] for c in gcols), strict=True):
                out["marginal"].append({**base, **dict(zip(gcols, vals, strict=True)), "source": "adjacent"})
            kt = knee_threshold(gains, thr)
            if kt is not None:
                out["knees"].append({**base, "model": kt[0], "x": kt[1], "method": "threshold", "threshold": thr})
            kk = kneedle_arrays(x, y, names, hb)
            if kk is not None:
                out["knees"].append({**base, "model": kk[0], "x": kk[1], "method": "kneedle", "threshold": np.nan})
            if axis not in FIT_AXES:
                continue
            form = "score" if hb else "loss"
            n_distinct = len(np.unique(x))
            need = MIN_POINTS[form]
            if n_distinct < need:
                what = f"{len(x)} models" if n_distinct == len(x) else f"{n_distinct} distinct {axis} values"
                out["fits"] += _fit_rows(task, metric, axis, form, None, len(x),
                                         f"{what}: a 3-parameter curve needs at least {need}")
                continue
            if form == "loss" and (y <= 0).any():
                out["fits"] += _fit_rows(task, metric, axis, form, None, len(x),
                                         "non-positive values: the loss form is fitted in log space")
                continue
            res = _fit_curve(ctx, form, x, y, (task, metric, axis))
            out["fits"] += _fit_rows(task, metric, axis, form, res, len(x))
            grid = np.logspace(np.log10(x.min()), np.log10(x.max()), BAND_POINTS)
            yf, lo, hi = res.predict_interval(grid)
            out["fit_bands"] += [{**base, "x": a, "y_fit": b, "y_low": c, "y_high": d}
                                 for a, b, c, d in zip(grid, yf, lo, hi, strict=True)]
            fg = improvement(res.predict(x[:-1]), res.predict(x[1:]), hb)
            dbl = gains["doublings"]
            with np.errstate(divide="ignore", invalid="ignore"):
                fgpd = np.where(dbl > 0, fg / np.where(dbl > 0, dbl, 1.0), np.nan)
            for i, vals in enumerate(zip(*(gains[c] for c in gcols), strict=True)):
                out["marginal"].append({**base, **dict(zip(gcols, vals, strict=True)), "gain": fg[i],
                                        "gain_per_doubling": fgpd[i], "source": "fit"})
    return out


def _compute_optimal(ctx: _Ctx, scores: pd.DataFrame, quality: list[tuple[str, str]]) -> tuple[list, list]:
    """Two-variable L(N, D) fits where training tokens vary, and Chinchilla-optimal allocations."""
    fits: list[dict[str, Any]] = []
    co: list[dict[str, Any]] = []
    t = ctx.table.set_index("model_key")
    for task, metric in quality:
        if higher_is_better(metric):
            continue
        s = scores[(scores["task"] == task) & (scores["metric"] == metric)].drop_duplicates("model_key")
        n = t.reindex(s["model_key"].astype(str))["params_total"].to_numpy(float)
        d = t.reindex(s["model_key"].astype(str))["training_tokens"].to_numpy(float)
        y = s["value"].to_numpy(float)
        ok = np.isfinite(n) & np.isfinite(d) & np.isfinite(y) & (n > 0) & (d > 0) & (y > 0)
        if ok.sum() < MIN_POINTS["loss_nd"] or len(np.unique(d[ok])) < 2 or len(np.unique(n[ok])) < 2:
            continue
        if abs(np.corrcoef(np.log(n[ok]), np.log(d[ok]))[0, 1]) > 0.99:
            ctx.notes.append("no L(N, D) fit: training tokens move in lockstep with parameters across these "
                             "models, so their effects cannot be told apart")
            continue
        res = fit_arrays(n[ok], y[ok], "loss_nd", tokens=d[ok], n_boot=min(ctx.n_boot, 200), seed=ctx.seed,
                         max_starts=4)
        fits += _fit_rows(task, metric, "params_total,training_tokens", "loss_nd", res, int(ok.sum()))
        c = 6.0 * n[ok] * d[ok]
        grid = np.logspace(np.log10(c.min()), np.log10(c.max()) + 2, 13)
        nn, dd = res.compute_optimal(grid)
        if not np.isfinite(nn).all():
            ctx.notes.append(f"{task}/{metric}: the L(N, D) fit has a zero exponent: no compute-optimal allocation")
            continue
        co += [{"C": a, "N_opt": b, "D_opt": e, "task": task, "metric": metric} for a, b, e in zip(grid, nn, dd,
                                                                                                    strict=True)]
    return fits, co


def _paired(ctx: _Ctx, items: pd.DataFrame, tasks: list[str], metrics: list[str] | None,
            scored: dict[str, set[str]] | None = None) -> list[dict[str, Any]]:
    """Paired tests on the metrics each task reports (`scored`), not on every per-item value."""
    rows: list[dict[str, Any]] = []
    if items.empty:
        return rows
    items = items.assign(model_key=items["model_key"].astype(str))
    have = set(items["model_key"].unique())
    order = [k for k in ctx.table["model_key"] if k in have]
    rank = {k: i for i, k in enumerate(order)}
    rng_seed = ctx.seed
    by_task = {t: g for t, g in items.groupby("task", sort=False)}
    for ti, task in enumerate(tasks):
        it = by_task.get(task)
        if it is None or it.empty:
            continue
        keys = sorted(it["model_key"].unique(), key=lambda k: rank.get(k, 1 << 30))
        if len(keys) < 2:
            continue
        doc_codes, docs = pd.factorize(it["doc_id"])
        model_codes = pd.Index(keys).get_indexer(it["model_key"])
        metric_codes, present = pd.factorize(it["metric"])
        present = [str(m) for m in present]
        vals_all = it["value"].to_numpy(float)

        def matrix(m: str, doc_codes=doc_codes, model_codes=model_codes, metric_codes=metric_codes,
                   present=present, vals_all=vals_all, n_docs=len(docs), n_keys=len(keys)) -> np.ndarray:
            sel = metric_codes == present.index(m)
            arr = np.full((n_docs, n_keys), np.nan)
            arr[doc_codes[sel], model_codes[sel]] = vals_all[sel]
            return arr

        reported = scored.get(task) if scored else None
        qual = [m for m in present if m not in NON_QUALITY and (metrics is None or m in metrics)
                and (reported is None or m in reported)]
        want_bpb = {"logprob", "bytes"} <= set(present) and (metrics is None or "bits_per_byte" in metrics) \
            and (reported is None or "bits_per_byte" in reported)
        piv = {m: matrix(m) for m in qual + (["logprob", "bytes"] if want_bpb else [])}
        shared_any = set()
        for mi, m in enumerate(qual + (["bits_per_byte"] if want_bpb else [])):
            if m == "bits_per_byte":
                vals = (piv["logprob"], piv["bytes"])
                present_mask = np.isfinite(vals[0]) & np.isfinite(vals[1])
            else:
                vals = (piv[m],)
                present_mask = np.isfinite(vals[0])
            keep = present_mask.any(axis=1)
            vals = tuple(v[keep] for v in vals)
            present_mask = present_mask[keep]
            rng = np.random.default_rng([rng_seed, ti, mi])
            hb = higher_is_better(m)
            binary = m != "bits_per_byte" and is_binary(vals[0])
            res = _pairs_for_metric(keys, vals, present_mask, m, binary, ctx.n_boot, rng)
            for (i, j), r in res.items():
                if r is None:
                    continue
                shared_any.add((i, j))
                a, b = keys[i], keys[j]
                bigger = _num(ctx.size.get(b)) > _num(ctx.size.get(a))
                better = r["effect"] > 0 if hb else r["effect"] < 0
                sig = bool(r["p_value"] < ALPHA)
                rows.append({"task": task, "metric": m, "model_a": ctx.name.get(a, a), "model_b": ctx.name.get(b, b),
                             "n_items": r["n_items"], "effect": r["effect"], "ci_low": r["ci_low"],
                             "ci_high": r["ci_high"], "p_value": r["p_value"],
                             "test": "mcnemar" if binary else "paired_bootstrap", "significant": sig,
                             "flag": "bigger but not significantly better" if bigger and not (sig and better) else ""})
        for i in range(len(keys)):
            for j in range(i + 1, len(keys)):
                if (i, j) not in shared_any:
                    ctx.notes.append(f"{ctx.name.get(keys[i], keys[i])} and {ctx.name.get(keys[j], keys[j])} share "
                                     f"no items on {task}: no paired test")
    return rows


def _pairs_for_metric(keys: list[str], vals: tuple[np.ndarray, ...], mask: np.ndarray, metric: str, binary: bool,
                      n_boot: int, rng: np.random.Generator) -> dict[tuple[int, int], dict[str, Any] | None]:
    """All pairs (i < j, j the bigger) for one metric on one task; vectorised when every model has every item."""
    m = len(keys)
    out: dict[tuple[int, int], dict[str, Any] | None] = {}
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
    full_rows = mask.all(axis=1)
    groups: list[tuple[list[tuple[int, int]], np.ndarray]] = []
    if full_rows.all():
        groups.append((pairs, full_rows))
    else:
        for pr in pairs:
            groups.append(([pr], mask[:, pr[0]] & mask[:, pr[1]]))
    for prs, rows in groups:
        n = int(rows.sum())
        if n == 0:
            for pr in prs:
                out[pr] = None
            continue
        cols = sorted({c for pr in prs for c in pr})
        sub = [v[rows][:, cols] for v in vals]
        pos = {c: k for k, c in enumerate(cols)}
        counts = count_matrix(n, n_boot, rng) if n_boot > 0 else np.zeros((0, n))
        if metric == "bits_per_byte":
            point = bits_per_byte(sub[0], sub[1])
            boot = bootstrap_bpb(sub[0], sub[1], counts) if n_boot > 0 else np.zeros((0, len(cols)))
        else:
            point = sub[0].mean(axis=0)
            boot = bootstrap_means(sub[0], counts) if n_boot > 0 else np.zeros((0, len(cols)))
        ia = np.array([pos[i] for i, _ in prs])
        ib = np.array([pos[j] for _, j in prs])
        effect = point[ib] - point[ia]
        if n_boot > 0:
            bd = boot[:, ib] - boot[:, ia]
            lo, hi = percentile_ci(bd)
            pb = bootstrap_p(bd, effect)
        else:
            lo = hi = pb = np.full(len(prs), np.nan)
        if binary:
            x = sub[0]
            disc_ab = x.T @ (1.0 - x)  # [i, j]: i right, j wrong
            pm = mcnemar_exact(disc_ab[ia, ib], disc_ab[ib, ia])
        else:
            pm = pb
        for k, pr in enumerate(prs):
            out[pr] = {"n_items": n, "effect": float(effect[k]), "ci_low": float(lo[k]), "ci_high": float(hi[k]),
                       "p_value": float(pm[k])}
    return out


def _pareto(ctx: _Ctx, scores: pd.DataFrame, eff: pd.DataFrame, eff_model: pd.DataFrame, primary: dict[str, str],
            leaderboard: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    eff_t = eff.assign(model_key=eff["model_key"].astype(str)).drop_duplicates(["model_key", "task"])
    eff_t = eff_t.set_index(["model_key", "task"])
    eff_m = eff_model.set_index("model_key")
    sets: list[tuple[str, str, pd.DataFrame]] = []
    for task, metric in primary.items():
        s = scores[(scores["task"] == task) & (scores["metric"] == metric)].drop_duplicates("model_key")
        sets.append((task, metric, pd.DataFrame({"model_key": s["model_key"].astype(str),
                                                 "quality": s["value"].astype(float)})))
    if "mean_score" in leaderboard.columns and leaderboard["mean_score"].notna().sum() >= 2 and len(primary) > 1:
        sets.append(("all", "mean_score", pd.DataFrame({"model_key": leaderboard["model_key"].astype(str),
                                                        "quality": leaderboard["mean_score"].astype(float)})))
    for task, metric, q in sets:
        hb = True if metric == "mean_score" else higher_is_better(metric)
        for cost in PARETO_COSTS:
            cs = []
            for k in q["model_key"]:
                v = _num(eff_t.at[(k, task), cost]) if (k, task) in eff_t.index else float("nan")
                if not math.isfinite(v) and k in eff_m.index:
                    v = _num(eff_m.at[k, cost])
                cs.append(v)
            df = pd.DataFrame({"model": [ctx.name.get(k, k) for k in q["model_key"]], "quality": q["quality"].values,
                               "cost": cs})
            df = df[np.isfinite(df["quality"]) & np.isfinite(df["cost"])]
            if len(df) < 2:
                continue
            fr = pareto_frontier(df, higher_better=hb)
            rows += [{"task": task, "metric": metric, "cost_axis": cost, **r} for r in fr.to_dict("records")]
    return rows


def _calibration(ctx: _Ctx, items: pd.DataFrame, tasks: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    it = items[items["metric"].isin(["confidence", "acc"]) & items["task"].isin(tasks)]
    if it.empty:
        return rows
    for (k, task), g in it.groupby(["model_key", "task"], sort=False):
        doc_codes, docs = pd.factorize(g["doc_id"])
        is_conf = (g["metric"] == "confidence").to_numpy()
        arr = np.full((len(docs), 2), np.nan)
        arr[doc_codes, is_conf.astype(int)] = g["value"].to_numpy(float)
        if np.isnan(arr[:, 1]).all() or np.isnan(arr[:, 0]).all():
            continue
        b = calibration_bins(arr[:, 1], arr[:, 0])
        rows += [{"model": ctx.name.get(str(k), str(k)), "task": task, **r} for r in b.to_dict("records")]
    return rows


def _ratio(a: float, b: float) -> float:
    return b / a if math.isfinite(a) and math.isfinite(b) and a > 0 else float("nan")


def _verdict(ctx: _Ctx, an: Analysis, primary: dict[str, str], eff_model: pd.DataFrame) -> list[str]:
    out: list[str] = []
    rec = an.recommendation
    if rec.get("reason"):
        out.append(("Recommended: " if rec.get("model") else "") + rec["reason"] + ".")
    lb = an.leaderboard.set_index("model")
    models = [m for m in ctx.table["model"] if m in lb.index]
    acc_tasks = [t for t, m in primary.items() if is_accuracy_like(m, lb.get(f"{t}/{m}"))]
    bpb_tasks = [t for t, m in primary.items() if m == "bits_per_byte"]
    paired = an.paired
    for a, b in zip(models[:-1], models[1:], strict=True):
        ra, rb = lb.loc[a], lb.loc[b]
        size_ratio = _ratio(_num(ra.get("params_total")), _num(rb.get("params_total")))
        if not math.isfinite(size_ratio):
            head = f"{b} compared with {a}"
        elif round(size_ratio, 1) == 1.0:
            head = f"{b} has as many parameters as {a}"
        else:
            head = f"{b} has {size_ratio:.1f}x the parameters of {a}"
            facts = ctx.table.set_index("model")
            ne = _ratio(_num(facts.at[a, "params_non_embedding"]), _num(facts.at[b, "params_non_embedding"]))
            if math.isfinite(ne) and abs(ne - size_ratio) > 0.25 * size_ratio:
                head += f" (but {ne:.1f}x the non-embedding parameters)"
        parts: list[str] = []
        diffs = []
        for t in acc_tasks:
            col = f"{t}/{primary[t]}"
            pr = paired[(paired["task"] == t) & (paired["metric"] == primary[t]) & (paired["model_a"] == a)
                        & (paired["model_b"] == b)] if not paired.empty else paired
            if len(pr):
                diffs.append((t, float(pr["effect"].iloc[0]), pr.iloc[0]))
            elif math.isfinite(_num(ra.get(col))) and math.isfinite(_num(rb.get(col))):
                diffs.append((t, _num(rb.get(col)) - _num(ra.get(col)), None))
        if len(diffs) == 1:
            t, d, pr = diffs[0]
            p = f" (paired {'McNemar' if pr['test'] == 'mcnemar' else 'bootstrap'} p={pr['p_value']:.2g})" \
                if pr is not None else ""
            parts.append(f"{100 * d:+.1f} accuracy points on {t}{p}")
        elif diffs:
            mean = float(np.mean([d for _, d, _ in diffs]))
            t, d, pr = max(diffs, key=lambda z: abs(z[1]))
            p = f", p={pr['p_value']:.2g}" if pr is not None else ""
            parts.append(f"{100 * mean:+.1f} accuracy points on average over {len(diffs)} tasks "
                         f"(largest: {100 * d:+.1f} on {t}{p})")
        for t in bpb_tasks[:1]:
            col = f"{t}/bits_per_byte"
            d = _num(rb.get(col)) - _num(ra.get(col))
            if math.isfinite(d):
                pr = paired[(paired["task"] == t) & (paired["metric"] == "bits_per_byte") & (paired["model_a"] == a)
                            & (paired["model_b"] == b)] if not paired.empty else paired
                p = f", paired bootstrap p={pr['p_value'].iloc[0]:.2g}" if len(pr) else ""
                parts.append(f"{d:+.3f}".replace("-", "\u2212") + f" bits-per-byte on {t} "
                             f"({'better' if d < 0 else 'worse'}{p})")
        cost: list[str] = []
        er = _ratio(_num(ra.get("joules_per_token")), _num(rb.get("joules_per_token")))
        if math.isfinite(er):
            srcs = f"{ra.get('energy_source') or ''},{rb.get('energy_source') or ''}"
            est = any(s.strip().startswith("estimate") for s in srcs.split(","))
            cost.append(f"{er:.1f}x the {'estimated ' if est else ''}energy per token")
        lr = _ratio(_num(ra.get("latency_ms_per_item")), _num(rb.get("latency_ms_per_item")))
        if math.isfinite(lr):
            cost.append(f"{lr:.1f}x the latency")
        s = head + (": " + ", ".join(parts) if parts else "")
        if cost:
            s += (", at " if parts else ": at ") + " and ".join(cost)
        out.append(s + ".")
    if not paired.empty:
        flagged = paired[(paired["flag"] != "")]
        adj = {(a, b) for a, b in zip(models[:-1], models[1:], strict=True)}
        for (a, b), g in flagged.groupby(["model_a", "model_b"], sort=False):
            if (a, b) not in adj:
                continue
            prim = g[[primary.get(t) == m for t, m in zip(g["task"], g["metric"], strict=True)]]
            if prim.empty:
                continue
            hb = [higher_is_better(m) for m in prim["metric"]]
            worse = [bool(sig) and ((e < 0) if h else (e > 0))
                     for sig, e, h in zip(prim["significant"], prim["effect"], hb, strict=True)]
            same = [f"{t} (p={p:.2g})" for t, p, w in zip(prim["task"], prim["p_value"], worse, strict=True) if not w]
            bad = [f"{t} (p={p:.2g})" for t, p, w in zip(prim["task"], prim["p_value"], worse, strict=True) if w]
            if same:
                out.append(f"{b} is bigger than {a} but not significantly better on {', '.join(same)}.")
            if bad:
                out.append(f"{b} is bigger than {a} and significantly worse on {', '.join(bad)}.")
    if not an.knees.empty:
        k = an.knees[(an.knees["axis"] == "params_total") & (an.knees["method"] == "threshold")]
        for r in k.itertuples(index=False):
            if primary.get(r.task) != r.metric:
                continue
            unit = f"{100 * r.threshold:.0f} accuracy point" if is_accuracy_like(r.metric) and r.threshold < 1 \
                else f"{r.threshold:g} {r.metric}"
            out.append(f"On {r.task}, returns flatten after {r.model}: beyond it a doubling of parameters gains less "
                       f"than {unit}.")
    return out


def analyze(models: pd.DataFrame, scores: pd.DataFrame, efficiency: pd.DataFrame, items: pd.DataFrame, *,
            tasks: list[str] | None = None, metrics: list[str] | None = None,
            min_gain_per_doubling: float | None = None, constraints: dict[str, Any] | None = None,
            seed: int = 0, n_boot: int = 1000) -> Analysis:
    """What scale buys across the models in the store frames (see `Analysis` for the frames).

    ``min_gain_per_doubling``: the gain a doubling must buy to be worth it (default 0.01 = one accuracy
    point for accuracy-like metrics, 0.02 for losses). ``constraints``: see `recommend`. Bootstraps
    (fits, paired tests) use ``n_boot`` resamples drawn from ``seed``.
    """
    with single_thread_blas():
        return _analyze(models, scores, efficiency, items, tasks=tasks, metrics=metrics,
                        min_gain_per_doubling=min_gain_per_doubling, constraints=constraints, seed=seed,
                        n_boot=n_boot)


def _analyze(models: pd.DataFrame, scores: pd.DataFrame, efficiency: pd.DataFrame, items: pd.DataFrame, *,
             tasks: list[str] | None, metrics: list[str] | None, min_gain_per_doubling: float | None,
             constraints: dict[str, Any] | None, seed: int, n_boot: int) -> Analysis:
    an = Analysis()
    models = _frame(models, _MODEL_COLS)
    scores = _frame(scores, _SCORE_COLS)
    efficiency = _frame(efficiency, _EFF_FRAME_COLS)
    items = _frame(items, _ITEM_COLS)
    for df in (scores, efficiency, items):
        df["model_key"] = df["model_key"].astype(str)
    if tasks is not None:
        tasks = list(tasks)
        scores = scores[scores["task"].isin(tasks)]
        efficiency = efficiency[efficiency["task"].isin(tasks)]
        items = items[items["task"].isin(tasks)]
    if metrics is not None:
        metrics = list(metrics)
        scores = scores[scores["metric"].isin(metrics)]
    scores = scores.assign(value=pd.to_numeric(scores["value"], errors="coerce"),
                           stderr=pd.to_numeric(scores["stderr"], errors="coerce"))
    items = items.assign(value=pd.to_numeric(items["value"], errors="coerce"))

    table = _model_table(models, scores, efficiency, items)
    ctx = _Ctx(table, n_boot, seed, min_gain_per_doubling)
    task_list = list(dict.fromkeys(scores["task"].dropna().astype(str)))
    quality: list[tuple[str, str]] = []
    primary: dict[str, str] = {}
    for t in task_list:
        ms = [m for m in dict.fromkeys(scores.loc[scores["task"] == t, "metric"].astype(str)) if m not in NON_QUALITY]
        if ms:
            primary[t] = primary_metric(ms)
            quality += [(t, m) for m in ms]

    # leaderboard
    eff_model = _efficiency_by_model(efficiency)
    lb = table[["model", "model_key", "params_total", "params_active", "flops_per_token"]].copy()
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
    an.leaderboard = lb

    if table.empty or scores.empty:
        an.notes.append("no scores in the store: nothing to analyze (run `beyondscale eval` first)")
        an.recommendation = {"model": None, "reason": "no scored models", "constraints": dict(constraints or {}),
                             "candidates": []}
        return an
    an.calibration = _frame_of(_calibration(ctx, items, task_list), an.calibration)
    n_models = int(scores["model_key"].nunique())
    if n_models < 2:
        an.notes.append(f"only 1 model ({table['model'].iloc[0]}): curves, fits, marginal gains, knees, paired "
                        "tests and Pareto frontiers need at least 2 models")
    else:
        parts = _curves_and_fits(ctx, scores, efficiency, eff_model, quality)
        for name in ("curves", "fits", "fit_bands", "marginal", "knees"):
            setattr(an, name, _frame_of(parts[name], getattr(an, name)))
        f2, co = _compute_optimal(ctx, scores, quality)
        if f2:
            an.fits = pd.concat([an.fits, pd.DataFrame(f2)], ignore_index=True)
            an.compute_optimal = pd.DataFrame(co)
        scored = {t: set(g["metric"].astype(str)) for t, g in scores.groupby("task")}
        an.paired = _frame_of(_paired(ctx, items, task_list, metrics, scored), an.paired)
        if items.empty:
            an.notes.append("no per-item results: paired significance tests need them")
        an.pareto = _frame_of(_pareto(ctx, scores, efficiency, eff_model, primary, lb), an.pareto,
                              extra=("dominated_by",))
        if an.fits.empty or (an.fits["status"] == "ok").sum() == 0:
            an.notes.append(f"no curve fits: a 3-parameter curve needs at least 4 models of different size "
                            f"({n_models} here)")
    an.recommendation = _recommendation(ctx, an, constraints, primary)
    an.notes = list(dict.fromkeys(an.notes + ctx.notes))
    an.verdict = _verdict(ctx, an, primary, eff_model)
    return an


def _recommendation(ctx: _Ctx, an: Analysis, constraints: dict[str, Any] | None, primary: dict[str, str]
                    ) -> dict[str, Any]:
    lb = an.leaderboard
    active = {k: v for k, v in (constraints or {}).items() if v is not None}
    if any(k not in ("task", "metric") for k in active):
        col_hb = True
        if active.get("task") is not None:
            m = active.get("metric") or primary.get(str(active["task"]))
            col_hb = higher_is_better(m) if m else True
        return recommend(lb, active, primary, higher_better=col_hb)
    # No constraints: the smallest model that no bigger model beats significantly on any task's primary
    # metric (paired tests on the same items); without paired tests, the knee of the mean score vs size.
    base = recommend(lb, {}, primary)
    paired = an.paired
    if not paired.empty and len(lb) >= 2:
        prim = paired[[primary.get(t) == m for t, m in zip(paired["task"], paired["metric"], strict=True)]]
        beaten = prim[(prim["flag"] == "") & prim["significant"].astype(bool)]
        order = ctx.table.sort_values("size")["model"].tolist()
        passed_over: list[str] = []
        for model in order:
            wins = beaten[beaten["model_a"] == model]
            if wins.empty:
                base["model"] = model
                base["reason"] = (f"{model}: no bigger model is significantly better on any task's primary metric "
                                  f"(paired tests on the same items, p<{ALPHA:g}); no constraints given")
                if passed_over:
                    base["reason"] += "; smaller models passed over: " + "; ".join(passed_over)
                worse = prim[(prim["model_b"] == model) & prim["significant"].astype(bool) & (prim["flag"] != "")]
                if not worse.empty:
                    base["reason"] += "; but it is significantly worse than " + ", ".join(
                        f"{a} on {t} (p={p:.2g})" for a, t, p in
                        zip(worse["model_a"], worse["task"], worse["p_value"], strict=True))
                return base
            passed_over.append(f"{model} (" + ", ".join(
                f"{b} is significantly better on {t}, p={p:.2g}" for b, t, p in
                zip(wins["model_b"], wins["task"], wins["p_value"], strict=True)) + ")")
    col = "mean_score" if lb["mean_score"].notna().sum() >= 2 else None
    if col is None and len(primary) == 1:
        t, m = next(iter(primary.items()))
        col = f"{t}/{m}"
    if col is None or len(lb) < 2:
        base["reason"] += "; set constraints (min_score, max_latency_ms, ...) for a real choice"
        return base
    hb = True if col == "mean_score" else higher_is_better(col.split("/", 1)[1])
    pts = pd.DataFrame({"model": lb["model"], "x": ctx.table.set_index("model_key").reindex(lb["model_key"])["size"]
                        .to_numpy(float), "y": lb[col].to_numpy(float)})
    pts = pts[np.isfinite(pts["x"]) & (pts["x"] > 0) & np.isfinite(pts["y"])]
    if len(pts) < 2:
        return base
    metric = "acc" if col == "mean_score" else col.split("/", 1)[1]
    thr = ctx.min_gain if ctx.min_gain is not None else default_threshold(metric, pts["y"])
    knee = knee_threshold(adjacent_gains(pts, hb), thr)
    if knee is None:
        best = pts.sort_values("x").iloc[-1]["model"]
        base["model"] = str(best)
        base["reason"] = (f"{best}: returns on {col} have not flattened (every doubling still gains at least "
                          f"{thr:g}); no constraints given")
    else:
        base["model"] = knee[0]
        base["reason"] = (f"{knee[0]}: beyond it a doubling of parameters gains less than {thr:g} on {col} "
                          "(no constraints given)")
    return base


def _frame_of(rows: list[dict[str, Any]], empty: pd.DataFrame, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    cols = list(empty.columns) + [c for c in extra if c not in empty.columns]
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows)
    for c in cols:
        if c not in df.columns:
            df[c] = np.nan
    return df[cols + [c for c in df.columns if c not in cols]]
