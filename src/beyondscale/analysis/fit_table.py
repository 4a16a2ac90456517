"""`fit`: a returns law on the user's own points, saying what `analyze` says about a curve.

The CSV has ``params``, a column named for its metric (``loss``, ``perplexity``, ``bits_per_byte``,
``accuracy`` or ``score``), optionally ``tokens`` (then a loss is fitted as L(N, D)) and ``model`` (labels);
lines starting with '#' are comments (a source to cite). The law is fitted in the metric's own space
(`analysis.law`), with profile-t intervals (`analysis.fits`); the answer carries the floor (or asymptote)
in the metric's units, the law at the largest size, the gains per doubling fitted and observed, the size
after which returns flatten (when every later doubling gains less than the threshold), and the backtest:
the law refitted without the largest model, predicting it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from beyondscale.analysis.fits import MIN_POINTS, FitResult, fit_arrays
from beyondscale.analysis.law import Backtest, MetricLaw, backtest, fit_metric_law
from beyondscale.analysis.marginal import (
    default_threshold,
    gains_arrays,
    higher_is_better,
    knee_threshold,
    uneven,
)
from beyondscale.errors import UserError

METRIC_COLUMNS = ("loss", "perplexity", "bits_per_byte", "accuracy", "score")


@dataclass
class FitTable:
    """What `fit` reports; `to_json` is the CLI's --json shape (an interval end of null is unbounded when
    `interval_note` is empty), `lines` its words."""

    metric: str
    law: MetricLaw | None  # one-variable law (None for L(N, D))
    nd: FitResult | None = None  # L(N, D) when tokens vary
    points: pd.DataFrame = field(default_factory=pd.DataFrame)  # model, params, (tokens), value
    gains: list[dict[str, Any]] = field(default_factory=list)
    knee: dict[str, Any] | None = None
    uneven: bool = False
    threshold: float = math.nan
    backtest: Backtest | None = None

    def lines(self) -> list[str]:
        """The fit in words, as `analyze` words a curve (the CLI prints these above its tables)."""
        from beyondscale.analysis.findings import ReturnsFlatten, UnevenReturns
        from beyondscale.analysis.marginal import is_accuracy_like
        from beyondscale.analysis.wording import interval, word

        doc = self.to_json()
        fmt = (lambda v: f"{v:.4g}")  # noqa: E731
        space = " (fitted as ln(perplexity), read back in perplexity)" if doc["space"] == "ln" else ""
        lo, hi = self.law.floor_ci if self.law is not None else self.nd.ci.get("E", (math.nan, math.nan))
        ci = interval(lo, hi, fmt, doc["interval_note"])
        out = [f"{self.metric} over {doc['n_points']} {'points' if self.nd is not None else 'sizes'}{space}: "
               f"{doc['floor_name']} {fmt(doc['floor'])} ({ci})."]
        if self.law is None:
            return out
        acc = is_accuracy_like(self.metric, self.points["value"])
        n = int(self.points["params"].nunique())
        if self.knee:
            out.append(word(ReturnsFlatten("the data", self.metric, self.knee["model"], self.threshold, acc, n)))
        elif self.uneven:
            gains = tuple((g["from"], g["to"], g["observed"]) for g in self.gains if g["observed"] is not None)
            out.append(word(UnevenReturns("the data", self.metric, gains, self.threshold, acc, n)))
        if self.backtest is not None:
            out.append(word(self.backtest))
        return out

    def to_json(self) -> dict[str, Any]:
        if self.nd is not None:
            return _nd_json(self)
        law = self.law
        assert law is not None
        fit = law.fit
        lo, hi = law.floor_ci
        top = float(self.points["params"].max())
        at, at_lo, at_hi = (float(v[0]) for v in law.predict_interval([top]))
        ci = {"floor": _pair(lo, hi), **{k: _pair(*fit.ci[k]) for k in ("A", "alpha") if k in fit.ci}}
        return {
            "metric": self.metric, "form": fit.form, "space": law.space, "floor_name": law.param_name,
            "n_points": fit.n_points, "floor": law.floor, "A": fit.A, "alpha": fit.alpha, "ci": ci,
            "interval_note": fit.interval_note,
            "fitted_at_largest": {"params": top, "value": at, "interval": _pair(at_lo, at_hi),
                                  "observed": float(self.points.loc[self.points["params"].idxmax(), "value"])},
            "gain_per_doubling": self.gains, "threshold": self.threshold, "knee": self.knee, "uneven": self.uneven,
            "backtest": self.backtest.to_json() if self.backtest else None,
        }


def _pair(lo: float, hi: float) -> list[float | None]:
    return [None if not math.isfinite(v) else float(v) for v in (lo, hi)] if not (math.isnan(lo) or math.isnan(hi)) \
        else [None, None]


def _nd_json(t: FitTable) -> dict[str, Any]:
    f = t.nd
    assert f is not None
    ci = {("floor" if k == "E" else k): _pair(*v) for k, v in f.ci.items()}
    return {"metric": t.metric, "form": "loss_nd", "space": "linear", "floor_name": "floor", "n_points": f.n_points,
            "floor": f.E, "A": f.A, "alpha": f.alpha, "B": f.B, "beta": f.beta, "ci": ci,
            "interval_note": f.interval_note, "fitted_at_largest": None, "gain_per_doubling": [], "knee": None,
            "uneven": False, "backtest": None}


# ------------------------------------------------------------------------------------------ reading


def metric_column(df: pd.DataFrame, path: Path, metric: str | None) -> str:
    """The one metric column (or the one the caller names)."""
    if metric is not None:
        if metric not in df.columns:
            raise UserError(f"{path}: no column '{metric}' (columns: {', '.join(df.columns)})")
        return metric
    found = [c for c in METRIC_COLUMNS if c in df.columns]
    if not found:
        raise UserError(f"{path}: needs a column named for its metric, one of {', '.join(METRIC_COLUMNS)} "
                        f"(columns: {', '.join(df.columns)})")
    if len(found) > 1:
        raise UserError(f"{path}: several metric columns ({', '.join(found)}): keep one, or name it with metric=")
    return found[0]


def read_fit_csv(path: str | Path, metric: str | None = None) -> tuple[pd.DataFrame, str]:
    """(points: model, params, tokens?, value; metric name), with one-line UserErrors naming the row."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: file not found")
    try:
        df = pd.read_csv(p, comment="#")
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise UserError(f"{p}: cannot read as CSV ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    df.columns = [str(c).strip() for c in df.columns]
    if "params" not in df.columns:
        raise UserError(f"{p}: missing column 'params' (columns: {', '.join(df.columns) or 'none'})")
    col = metric_column(df, p, metric)
    out = pd.DataFrame({"model": df["model"].astype(str) if "model" in df.columns else
                        [f"row {i + 1}" for i in range(len(df))]})
    for c, name in ((("params", "params"), (col, "value")) + ((("tokens", "tokens"),) if "tokens" in df.columns else ())):
        vals = pd.to_numeric(df[c], errors="coerce")
        bad = vals.isna() | ~np.isfinite(vals.astype(float))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise UserError(f"{p}: column '{c}' row {i + 1}: {df[c].iloc[i]!r} is not a number")
        positive = c != col or not higher_is_better(col)
        if positive and (vals <= 0).any():
            i = int(np.flatnonzero((vals <= 0).to_numpy())[0])
            raise UserError(f"{p}: column '{c}' row {i + 1}: {vals.iloc[i]!r} must be positive")
        out[name] = vals.astype(float).to_numpy()
    return out.sort_values("params", kind="stable").reset_index(drop=True), col


# ------------------------------------------------------------------------------------------ fitting


def fit_data(path: str | Path, *, metric: str | None = None, chance: float | None = None, exclude_worst: int = 0,
             min_gain: float | None = None) -> FitTable:
    """Fit the returns law of a CSV of points (see the module docstring). ``chance``: an accuracy's floor when
    the number of choices is known (1/choices); ``min_gain``: the gain per doubling worth paying for
    (default: one accuracy point, or 0.02 for losses); ``exclude_worst``: drop the K worst points first."""
    pts, col = read_fit_csv(path, metric)
    if exclude_worst > 0:
        pts = pts.sort_values("value", ascending=higher_is_better(col), kind="stable").iloc[exclude_worst:]
        pts = pts.sort_values("params", kind="stable").reset_index(drop=True)
    if "tokens" in pts.columns and pts["tokens"].nunique() > 1 and not higher_is_better(col):
        return _fit_nd(pts, col, path)
    need = MIN_POINTS["score" if higher_is_better(col) else "loss"]
    if pts["params"].nunique() < need:
        raise UserError(f"{path}: {pts['params'].nunique()} distinct params values; a law needs at least {need}")
    x, y, names = pts["params"].to_numpy(), pts["value"].to_numpy(), pts["model"].to_numpy(dtype=object)
    law = fit_metric_law(x, y, col, chance=chance)
    thr = min_gain if min_gain is not None else default_threshold(col, y)
    gains = _gains(law, x, y, names)
    obs = gains_arrays(x, y, names, higher_is_better(col))
    knee = knee_threshold(obs, thr)
    return FitTable(col, law, None, pts, gains, {"model": knee[0], "params": knee[1], "threshold": thr} if knee else None,
                    uneven(obs, thr), thr, backtest(x, y, names, col, chance=chance))


def _gains(law: MetricLaw, x: np.ndarray, y: np.ndarray, names: np.ndarray) -> list[dict[str, Any]]:
    """Gain per doubling between neighbours, observed and fitted (in the good direction; None under 0.1
    doublings)."""
    from beyondscale.analysis.curves import MIN_DOUBLINGS

    hb = higher_is_better(law.metric)
    fitted = law.predict(x)
    out = []
    for i in range(len(x) - 1):
        dbl = math.log2(x[i + 1] / x[i])
        sign = 1.0 if hb else -1.0
        ok = dbl >= MIN_DOUBLINGS
        out.append({"from": str(names[i]), "to": str(names[i + 1]), "params_from": float(x[i]),
                    "params_to": float(x[i + 1]), "doublings": dbl,
                    "observed": sign * (y[i + 1] - y[i]) / dbl if ok else None,
                    "fitted": float(sign * (fitted[i + 1] - fitted[i]) / dbl) if ok else None})
    return out


def _fit_nd(pts: pd.DataFrame, col: str, path: str | Path) -> FitTable:
    if len(pts) < MIN_POINTS["loss_nd"]:
        raise UserError(f"{path}: {len(pts)} points; an L(N, D) law needs at least {MIN_POINTS['loss_nd']}")
    fit = fit_arrays(pts["params"], pts["value"], "loss_nd", tokens=pts["tokens"])
    return FitTable(col, None, fit, pts)
