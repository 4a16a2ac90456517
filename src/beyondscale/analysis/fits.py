"""Scaling-law fits with intervals that hold their level at the handful of sizes a study has.

Forms (x is a size such as parameters; N parameters, D training tokens):

- ``loss``:    L(x)   = E + A x^-alpha                  (E: the floor)
- ``loss_nd``: L(N,D) = E + A N^-alpha + B D^-beta       (Hoffmann et al. 2022)
- ``score``:   s(x)   = E - A x^-alpha                  (E: the asymptote, at most 1 for an accuracy)

The fit. Given the exponents the law is linear in its other constants, so it is fitted by variable
projection (Golub & Pereyra 1973): weighted least squares in closed form at every exponent of a fine grid,
then the best grid point refined. Nothing is started from a guess, so no resample or refit can stop at a
worse optimum than the global one. Loss forms weight residuals by 1/y^2 (relative errors, as a fit of
log(loss) would); scores are unweighted. The point fit keeps E >= 0 for losses, E in [chance, 1] for
accuracies and A, B >= 0 (an active-set solve per grid point).

The intervals are profile-t intervals (Bates & Watts 1988, ch. 6; Venzon & Moolgavkar 1988): a value of any
quantity (a constant, a prediction at a size, the dense compute that reaches a loss) is in the interval when
the best fit that takes that value has a residual sum of squares within RSS_min (1 + t^2 / (n - p)) of the
best fit, t the two-sided quantile of Student's t with n - p degrees of freedom. This is the exact t
interval for a linear model and, unlike a bootstrap of 4 to 8 points, it does not shrink when few distinct
sizes are resampled; it is invariant to how the law is parametrised. With fewer than MIN_DOF residual
degrees of freedom (n - p) no interval is given, and ``interval_note`` says why. Coverage and widths are
measured on planted laws by ``bench/fit_coverage.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize, minimize_scalar
from scipy.stats import t as student_t

from beyondscale.errors import UserError

FORMS = ("loss", "loss_nd", "score")
N_PARAMS = {"loss": 3, "loss_nd": 5, "score": 3}
# Minimum number of points (distinct sizes for one-variable forms) to fit each form.
MIN_POINTS = {"loss": 4, "loss_nd": 6, "score": 4}
# Residual degrees of freedom (points - parameters) an interval needs: with 1 the profile-t interval still
# holds its level (bench/fit_coverage.py: 4 sizes, 6 points for L(N, D)), though often unbounded on one side.
MIN_DOF = 1
ALPHA_MIN, ALPHA_MAX = 1e-3, 4.0
GRID_1D, GRID_2D = 600, 160


# --------------------------------------------------------------------------- the linear sub-problem


def _grid(form: str) -> np.ndarray:
    """Exponent grid (G, k): log-spaced, so small and large exponents are resolved alike."""
    if form == "loss_nd":
        a = np.geomspace(ALPHA_MIN, ALPHA_MAX, GRID_2D)
        return np.array(list(itertools.product(a, a)))
    return np.geomspace(ALPHA_MIN, ALPHA_MAX, GRID_1D)[:, None]


def _features(t: np.ndarray, exps: np.ndarray) -> np.ndarray:
    """(G, n, q) design [1, z_1, (z_2)] with z = ((x/x0)^-a - 1) / a, well conditioned as a -> 0 (z -> -log)."""
    t2 = t if t.ndim == 2 else t[:, None]
    z = np.expm1(-exps[:, None, :] * t2[None, :, :]) / exps[:, None, :]
    return np.concatenate([np.ones(z.shape[:2] + (1,)), z], axis=2)


def _wls(x_mat: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares at every grid point: coefficients (G, q), (X'WX)^-1 (G, q, q), RSS (G,)."""
    xw = x_mat * w[None, :, None]
    m = np.matmul(xw.transpose(0, 2, 1), x_mat)
    b = np.matmul(xw.transpose(0, 2, 1), y)
    minv = _inv(m)
    c = np.matmul(minv, b[:, :, None])[:, :, 0]
    r = y[None, :] - np.matmul(x_mat, c[:, :, None])[:, :, 0]
    return c, minv, (w[None, :] * r * r).sum(axis=1)


def _inv(m: np.ndarray) -> np.ndarray:
    """Inverses of a stack of small symmetric matrices, with a ridge far below their scale (singular ones
    come from conflicting active sets, which the feasibility check then drops)."""
    q = m.shape[-1]
    if q == 1:
        return 1.0 / np.where(m == 0, 1e-300, m)
    ridge = 1e-13 * np.maximum(np.trace(m, axis1=1, axis2=2), 1e-300)
    return np.linalg.inv(m + ridge[:, None, None] * np.eye(q)[None])


def _lin_floor(exps: np.ndarray) -> np.ndarray:
    """E = c0 - sum_k c_k / a_k, as a row vector per grid point (G, q)."""
    return np.concatenate([np.ones((len(exps), 1)), -1.0 / exps], axis=1)


def _lin_coef(exps: np.ndarray, k: int, sign: float, log_x0: np.ndarray | None = None) -> np.ndarray:
    """K_k = sign c_k / a_k (coefficient of (x/x0)^-a), or A_k = K_k x0^a_k when log_x0 is given."""
    row = np.zeros((len(exps), exps.shape[1] + 1))
    scale = sign / exps[:, k]
    if log_x0 is not None:
        scale = scale * np.exp(exps[:, k] * log_x0[k])
    row[:, k + 1] = scale
    return row


def _constraints(form: str, exps: np.ndarray, bounds: tuple[float, float]) -> list[tuple[np.ndarray, float]]:
    """Rows g and bounds b of the point fit's constraints g.c >= b: the floor within `bounds`, A (, B) >= 0."""
    sign = -1.0 if form == "score" else 1.0
    out = [(_lin_coef(exps, k, sign), 0.0) for k in range(exps.shape[1])]
    lo, hi = bounds
    if math.isfinite(lo):
        out.append((_lin_floor(exps), lo))
    if math.isfinite(hi):
        out.append((-_lin_floor(exps), -hi))
    return out


def _constrained(c: np.ndarray, minv: np.ndarray, rss: np.ndarray, cons: list[tuple[np.ndarray, float]]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares optimum under g.c >= b at every grid point: the best feasible active set (a convex
    QP in at most 3 unknowns, so enumerating the active sets is exact)."""
    q = c.shape[1]
    best_c, best_rss = np.full_like(c, np.nan), np.full(len(c), np.inf)
    for size in range(len(cons) + 1):
        if size > q:
            break
        for sub in itertools.combinations(range(len(cons)), size):
            cc, rr = c, rss
            if sub:
                g = np.stack([cons[j][0] for j in sub], axis=1)  # (G, s, q)
                viol = (g * c[:, None, :]).sum(axis=2) - np.array([cons[j][1] for j in sub])
                gm = np.matmul(g, minv)
                lam = np.matmul(_inv(np.matmul(gm, g.transpose(0, 2, 1))), viol[:, :, None])[:, :, 0]
                cc = c - np.matmul(gm.transpose(0, 2, 1), lam[:, :, None])[:, :, 0]
                rr = rss + (viol * lam).sum(axis=1)
            ok = np.ones(len(c), dtype=bool)
            for g1, b1 in cons:
                ok &= (g1 * cc).sum(axis=1) >= b1 - 1e-9 * (1 + abs(b1))
            better = ok & (rr < best_rss)
            best_c[better], best_rss[better] = cc[better], rr[better]
    return best_c, best_rss


# --------------------------------------------------------------------------- the result


@dataclass
class FitResult:
    """A fitted law with profile-t intervals; ``E`` is the floor (loss) or the asymptote (score).

    ``ci`` is empty when ``interval_note`` says why there is no interval (too few points for the parameters).
    An interval end that is infinite means the data do not bound it on that side. ``profile`` holds every
    exponent grid point's weighted least-squares fit (coefficients, (X'WX)^-1, RSS, slack below
    ``threshold``); ``n_boot`` and ``boot`` stay for callers of the bootstrap this replaced (always empty).
    """

    form: str
    E: float
    A: float
    alpha: float
    B: float | None = None
    beta: float | None = None
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    n_points: int = 0
    n_boot: int = 0
    level: float = 0.95
    objective: float = float("nan")
    interval_note: str = ""
    floor_bounds: tuple[float, float] = (0.0, math.inf)
    noise: str = "relative"
    theta: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    boot: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    log_x0: np.ndarray = field(default_factory=lambda: np.zeros(2), repr=False)
    data: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    profile: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    threshold: float = float("nan")

    @property
    def sign(self) -> float:
        return -1.0 if self.form == "score" else 1.0

    @property
    def dof(self) -> int:
        return self.n_points - N_PARAMS[self.form]

    @property
    def has_interval(self) -> bool:
        return bool(self.profile) and not self.interval_note

    def to_json(self) -> dict[str, Any]:
        """The JSON shape promised to callers (CLI `fit`, report)."""
        return {"E": self.E, "A": self.A, "alpha": self.alpha, "B": self.B, "beta": self.beta,
                "ci": {k: [v[0], v[1]] for k, v in self.ci.items()}, "n_points": self.n_points,
                "interval_note": self.interval_note}

    def _t(self, params: Any, tokens: Any = None) -> np.ndarray:
        ln = np.log(np.asarray(params, dtype=float)) - self.log_x0[0]
        if self.form != "loss_nd":
            return np.atleast_1d(ln)
        if tokens is None:
            raise ValueError("a loss_nd fit needs tokens to predict")
        ld = np.log(np.asarray(tokens, dtype=float)) - self.log_x0[1]
        ln, ld = np.broadcast_arrays(np.atleast_1d(ln), np.atleast_1d(ld))
        return np.stack([ln, ld], axis=1)

    def _rows(self, exps: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(G, m, q) prediction rows at the m sizes t for every grid point."""
        return _features(t, exps)

    def predict(self, params: Any, tokens: Any = None) -> np.ndarray:
        """Fitted loss (or score) at the given sizes."""
        k = 2 if self.form == "loss_nd" else 1
        exps, c = self.theta[None, :k], self.theta[k:]
        return np.einsum("mq,q->m", self._rows(exps, self._t(params, tokens))[0], c)

    def _region(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        p = self.profile
        keep = p["slack"] >= 0
        return p["exps"][keep], p["c"][keep], p["minv"][keep], p["slack"][keep]

    def linear_interval(self, rows: np.ndarray, extra_var: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Profile interval of a quantity linear in the constants given the exponents: rows (G_region, m, q).

        ``extra_var``: added to the variance factor (1/w of a new observation, for prediction intervals)."""
        _, c, minv, slack = self._region()
        centre = np.einsum("gmq,gq->gm", rows, c)
        var = np.einsum("gmq,gqr,gmr->gm", rows, minv, rows) + extra_var
        half = np.sqrt(np.maximum(slack[:, None] * var, 0.0))
        return (centre - half).min(axis=0), (centre + half).max(axis=0)

    def predict_interval(self, params: Any, tokens: Any = None, level: float | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fit, low, high): the profile-t band of the fitted curve (NaN where there is no interval)."""
        t = self._t(params, tokens)
        y = self.predict(params, tokens)
        if not self.has_interval:
            return y, np.full_like(y, np.nan), np.full_like(y, np.nan)
        exps = self._region()[0]
        lo, hi = self.linear_interval(self._rows(exps, t))
        return y, np.minimum(lo, y), np.maximum(hi, y)

    def new_point_interval(self, params: Any, tokens: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fit, low, high): profile-t prediction interval for a new measurement at these sizes (the curve's
        uncertainty plus one measurement's noise), as a held-out model is checked against."""
        t = self._t(params, tokens)
        y = self.predict(params, tokens)
        if not self.has_interval:
            return y, np.full_like(y, np.nan), np.full_like(y, np.nan)
        w_new = 1.0 / y**2 if self.noise == "relative" else np.ones_like(y)
        lo, hi = self.linear_interval(self._rows(self._region()[0], t), 1.0 / w_new)
        return y, np.minimum(lo, y), np.maximum(hi, y)

    def size_for(self, value: float, sizes: np.ndarray) -> tuple[float, float, float]:
        """(point, low, high) size at which the curve reaches `value`, for a value measured with the same noise
        as the fitted points: the profile over that size, the measurement appended to the fit (inf: never)."""
        if self.form == "loss_nd":
            raise ValueError("only one-variable fits can be inverted")
        point = self._invert(value)
        if not self.has_interval:
            return point, math.nan, math.nan
        inside = np.flatnonzero(self._size_rss(value, sizes) <= self.threshold)
        if inside.size == 0:
            return point, point, point
        i0, i1, last = int(inside[0]), int(inside[-1]), len(sizes) - 1
        lo = 0.0 if i0 == 0 else self._refine(value, sizes[i0 - 1], sizes[i0])
        hi = math.inf if i1 == last else self._refine(value, sizes[i1 + 1], sizes[i1])
        return point, min(lo, point), max(hi, point)

    def _size_rss(self, value: float, sizes: np.ndarray) -> np.ndarray:
        """Least RSS over the exponents with `value` appended at each size (rank-one update of each grid fit)."""
        p = self.profile
        x_rows = self._rows(p["exps"], self._t(sizes))  # (G, m, q)
        e = value - np.matmul(x_rows, p["c"][:, :, None])[:, :, 0]
        h = (np.matmul(x_rows, p["minv"]) * x_rows).sum(axis=2)
        w = 1.0 / value**2 if self.noise == "relative" else 1.0
        return (p["rss"][:, None] + w * e * e / (1.0 + w * h)).min(axis=0)

    def _refine(self, value: float, outside: float, inside: float) -> float:
        """The interval's end between a grid size outside it and one inside, to 1/64 of the grid step."""
        fine = np.geomspace(outside, inside, 65)
        ok = np.flatnonzero(self._size_rss(value, fine) <= self.threshold)
        return float(fine[ok[0]]) if ok.size else float(inside)

    def _invert(self, value: float) -> float:
        gap = (value - self.E) * self.sign
        if gap <= 0 or self.A <= 0:
            return math.inf
        return float((self.A / gap) ** (1.0 / self.alpha)) if self.alpha > 0 else math.inf

    def range_of(self, fn: Any, directions: int = 24, seed: int = 0) -> tuple[float, float]:
        """Interval of a non-linear quantity fn(E, A, alpha, B, beta) (arrays in, array out): its range over the
        confidence region, sampled on each grid point's ellipsoid (an inner approximation)."""
        if not self.has_interval:
            return math.nan, math.nan
        exps, c, minv, slack = self._region()
        q = c.shape[1]
        u = np.random.default_rng(seed).normal(size=(directions, q))
        u = np.vstack([np.zeros(q), np.eye(q), -np.eye(q), u / np.linalg.norm(u, axis=1, keepdims=True)])
        lam, vec = np.linalg.eigh(minv)  # a square root that tolerates nearly singular matrices
        root = vec * np.sqrt(np.maximum(lam, 0.0))[:, None, :]
        pts = c[:, None, :] + np.sqrt(slack)[:, None, None] * np.einsum("gqr,dr->gdq", root, u)
        nat = _natural_from(self.form, np.repeat(exps, len(u), axis=0), pts.reshape(-1, q), self.log_x0)
        vals = np.asarray(fn(**nat), dtype=float)
        keep = ~np.isnan(vals) if vals.ndim == 1 else ~np.isnan(vals).any(axis=1)  # inf: unbounded, kept
        vals = vals[keep]
        return (np.min(vals, axis=0), np.max(vals, axis=0)) if len(vals) else (math.nan, math.nan)

    def transformed(self, power: float, log_x0: float) -> FitResult:
        """The same fit for sizes x' = c * x**power whose mean log is ``log_x0`` (refitted: exact to the grid).

        Lets proportional axes (FLOPs/token = 2 x parameters) or power-related ones (6 N D, D = 20 N) share
        one fit's cache entry."""
        if self.form == "loss_nd":
            raise ValueError("only one-variable fits can be transformed")
        lx = self.data["t"] * power + log_x0
        return fit_arrays(np.exp(lx), self.data["y"], self.form, n_boot=1 if self.profile else 0,
                          level=self.level, floor_bounds=self.floor_bounds, noise=self.noise)

    def compute_optimal(self, compute: Any) -> tuple[np.ndarray, np.ndarray]:
        """Chinchilla's closed form for C = 6 N D: N_opt = G (C/6)^(beta/(alpha+beta)), D_opt = (C/6)/N_opt."""
        if self.form != "loss_nd" or self.B is None or self.beta is None:
            raise ValueError("compute-optimal allocation needs a two-variable (loss_nd) fit")
        return compute_optimal(self.A, self.alpha, self.B, self.beta, compute)


def _natural_from(form: str, exps: np.ndarray, c: np.ndarray, log_x0: np.ndarray) -> dict[str, np.ndarray]:
    """Grid-point exponents and coefficients -> E, A, alpha (, B, beta) in the caller's units."""
    sign = -1.0 if form == "score" else 1.0
    e = np.einsum("gq,gq->g", _lin_floor(exps), c)
    out = {"E": e, "A": np.einsum("gq,gq->g", _lin_coef(exps, 0, sign, log_x0), c), "alpha": exps[:, 0]}
    if form == "loss_nd":
        out.update(B=np.einsum("gq,gq->g", _lin_coef(exps, 1, sign, log_x0), c), beta=exps[:, 1])
    return out


def _natural(form: str, theta: np.ndarray, log_x0: np.ndarray) -> dict[str, np.ndarray]:
    """theta rows (exponents then coefficients) -> E, A, alpha (, B, beta)."""
    theta = np.atleast_2d(theta)
    k = 2 if form == "loss_nd" else 1
    return _natural_from(form, theta[:, :k], theta[:, k:], log_x0)


def _quantiles(a: np.ndarray, qs: list[float]) -> np.ndarray:
    """Quantiles along axis 0, ignoring NaN."""
    a = np.asarray(a, dtype=float)
    if np.isnan(a).any():
        return np.nanquantile(a, qs, axis=0)
    return np.quantile(a, qs, axis=0)


def compute_optimal(A: float, alpha: float, B: float, beta: float, compute: Any) -> tuple[np.ndarray, np.ndarray]:
    """N_opt(C), D_opt(C) minimising E + A N^-alpha + B D^-beta subject to C = 6 N D."""
    c6 = np.asarray(compute, dtype=float) / 6.0
    if not (alpha > 0 and beta > 0 and A > 0 and B > 0):  # no interior optimum
        nan = np.full_like(c6, np.nan)
        return nan, nan.copy()
    g = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    n_opt = g * c6 ** (beta / (alpha + beta))
    d_opt = (1.0 / g) * c6 ** (alpha / (alpha + beta))
    return n_opt, d_opt


# --------------------------------------------------------------------------- fitting


def single_thread_blas() -> contextlib.AbstractContextManager:
    """Limit BLAS to one thread: these problems are tiny, and OpenBLAS thread wake-ups cost more than they
    save on a busy 2-core machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only a speed-up
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def default_bounds(form: str) -> tuple[float, float]:
    """Where the floor may lie: a loss's at or above 0; a score's anywhere (an accuracy passes (chance, 1))."""
    return (0.0, math.inf) if form != "score" else (-math.inf, math.inf)


def fit_arrays(x: Any, y: Any, form: str, *, tokens: Any = None, n_boot: int = 1000, seed: int = 0,
               level: float = 0.95, max_starts: int | None = None, floor_bounds: tuple[float, float] | None = None,
               noise: str | None = None) -> FitResult:
    """Fit ``form`` to sizes ``x`` (and ``tokens`` for loss_nd) and observations ``y``, with profile-t intervals.

    ``n_boot=0`` skips the intervals (any other value computes them; the name stays for callers of the
    bootstrap this replaced, and ``seed``/``max_starts`` are no longer needed: the fit has no random part).
    ``floor_bounds``: where E may lie (default: a loss's floor >= 0; an accuracy's asymptote in (chance, 1)).
    ``noise``: "relative" (residuals weighted 1/y^2, the default for losses) or "absolute" (scores).
    """
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; expected one of {FORMS}")
    bounds = floor_bounds if floor_bounds is not None else default_bounds(form)
    noise = noise or ("absolute" if form == "score" else "relative")
    with single_thread_blas(), np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _fit_arrays(x, y, form, tokens, n_boot > 0, level, bounds, noise)


def _centred(x: Any, tokens: Any, form: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    if form == "loss_nd":
        lt = np.stack([np.log(x), np.log(np.asarray(tokens, dtype=float))], axis=1)
        log_x0 = lt.mean(axis=0)
        return lt - log_x0, log_x0
    lx = np.log(x)
    return lx - lx.mean(), np.array([lx.mean(), 0.0])


def _point(form: str, t: np.ndarray, y: np.ndarray, w: np.ndarray, bounds: tuple[float, float], grid: np.ndarray,
           rss_c: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Refine the best grid point's exponents (log scale) on the constrained objective: (exps, coefs, RSS)."""

    def solve(log_e: np.ndarray) -> tuple[np.ndarray, float]:
        exps = np.clip(np.exp(np.atleast_2d(log_e)), ALPHA_MIN, ALPHA_MAX)
        c, minv, rss = _wls(_features(t, exps), y, w)
        cc, rc = _constrained(c, minv, rss, _constraints(form, exps, bounds))
        return cc[0], float(rc[0])

    i = int(np.argmin(rss_c))
    start = np.log(grid[i])
    if grid.shape[1] == 1:
        step = math.log(ALPHA_MAX / ALPHA_MIN) / (GRID_1D - 1)
        lo, hi = max(start[0] - step, math.log(ALPHA_MIN)), min(start[0] + step, math.log(ALPHA_MAX))
        res = minimize_scalar(lambda v: solve(np.array([v]))[1], bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-7})
        best = np.array([res.x]) if res.fun <= rss_c[i] else start
    else:
        res = minimize(lambda v: solve(v)[1], start, method="Nelder-Mead",
                       options={"xatol": 1e-6, "fatol": 1e-14 * max(rss_c[i], 1e-300), "maxiter": 400})
        best = np.clip(res.x, math.log(ALPHA_MIN), math.log(ALPHA_MAX)) if res.fun <= rss_c[i] else start
    coefs, rss = solve(best)
    return np.clip(np.exp(best), ALPHA_MIN, ALPHA_MAX), coefs, rss


def _fit_arrays(x: Any, y: Any, form: str, tokens: Any, intervals: bool, level: float,
                bounds: tuple[float, float], noise: str) -> FitResult:
    t, log_x0 = _centred(x, tokens, form)
    yv = np.asarray(y, dtype=float)
    w = 1.0 / yv**2 if noise == "relative" else np.ones_like(yv)
    grid = _grid(form)
    c, minv, rss = _wls(_features(t, grid), yv, w)
    cc, rss_c = _constrained(c, minv, rss, _constraints(form, grid, bounds))
    exps, coefs, best = _point(form, t, yv, w, bounds, grid, rss_c)
    nat = {k: float(v[0]) for k, v in _natural_from(form, exps[None], coefs[None], log_x0).items()}
    n = len(yv)
    res = FitResult(form=form, E=nat["E"], A=nat["A"], alpha=nat["alpha"], B=nat.get("B"), beta=nat.get("beta"),
                    n_points=n, level=level, objective=best, floor_bounds=bounds, noise=noise,
                    theta=np.concatenate([exps, coefs]), log_x0=log_x0, data={"t": t, "y": yv, "w": w})
    dof = n - N_PARAMS[form]
    if dof < MIN_DOF:
        what = "points" if form == "loss_nd" else "sizes"
        res.interval_note = (f"{n} {what}: too few for an interval on {N_PARAMS[form]} parameters "
                             f"(an interval needs {N_PARAMS[form] + MIN_DOF})")
        return res
    if not intervals:
        return res
    factor = 1.0 + float(student_t.ppf(0.5 + level / 2, dof)) ** 2 / dof
    local = np.vstack([exps[None], _local_grid(grid, rss, best * factor, exps)])
    c1, minv1, rss1 = _wls(_features(t, local), yv, w)
    all_rss = np.concatenate([rss, rss1])
    # The profile is of the unconstrained law (its RSS minimum sets the threshold), intersected with the
    # bounds afterwards: valid, and not widened when a bound binds at the point fit.
    res.threshold = float(min(all_rss.min(), best)) * factor * (1 + 1e-12) + 1e-300
    res.profile = {"exps": np.vstack([grid, local]), "c": np.vstack([c, c1]), "minv": np.concatenate([minv, minv1]),
                   "rss": all_rss, "slack": res.threshold - all_rss}
    res.ci = _constant_intervals(res, grid, rss)
    return res


def _local_grid(grid: np.ndarray, rss: np.ndarray, thr: float, point: np.ndarray, per_axis: int = 0) -> np.ndarray:
    """A fine grid over the confidence region's box (one coarse step of margin), so a region narrower than
    the coarse grid's step is still resolved."""
    k = grid.shape[1]
    per_axis = per_axis or (200 if k == 1 else 48)
    step = math.log(ALPHA_MAX / ALPHA_MIN) / ((GRID_1D if k == 1 else GRID_2D) - 1)
    inside = np.log(np.vstack([grid[rss <= thr], point[None]]))
    lo = np.maximum(inside.min(axis=0) - step, math.log(ALPHA_MIN))
    hi = np.minimum(inside.max(axis=0) + step, math.log(ALPHA_MAX))
    axes = [np.exp(np.linspace(a, b, per_axis)) for a, b in zip(lo, hi, strict=True)]
    return np.array(list(itertools.product(*axes)))


def _exp_interval(values: np.ndarray, prof: np.ndarray, thr: float, point: float) -> tuple[float, float]:
    """Interval of an exponent from its profile on a sorted grid, ends interpolated; 0 or inf at the grid's edges."""
    inside = np.flatnonzero(prof <= thr)
    if inside.size == 0:
        return point, point
    lv = np.log(values)

    def cross(i: int, j: int) -> float:  # i inside, j outside
        f = (thr - prof[i]) / (prof[j] - prof[i]) if prof[j] != prof[i] else 0.0
        return float(np.exp(lv[i] + np.clip(f, 0, 1) * (lv[j] - lv[i])))

    i0, i1 = int(inside[0]), int(inside[-1])
    lo = 0.0 if i0 == 0 else cross(i0, i0 - 1)
    hi = math.inf if i1 == len(values) - 1 else cross(i1, i1 + 1)
    return min(lo, point), max(hi, point)


def _constant_intervals(res: FitResult, grid: np.ndarray, rss: np.ndarray) -> dict[str, tuple[float, float]]:
    """Profile-t intervals of E, A, alpha (, B, beta); an end reached at the exponent grid's edge is unbounded."""
    form, thr = res.form, res.threshold
    exps = res._region()[0]
    edge = (exps <= ALPHA_MIN * 1.0001).any(axis=1) | (exps >= ALPHA_MAX * 0.9999).any(axis=1)
    names = [("E", _lin_floor(exps))] + [(n, _lin_coef(exps, k, res.sign, res.log_x0))
                                          for k, n in enumerate(("A", "B")[: exps.shape[1]])]
    ci: dict[str, tuple[float, float]] = {}
    for name, rows in names:
        lo, hi = (v[0] for v in res.linear_interval(rows[:, None, :]))
        _, c, minv, slack = res._region()
        centre = np.einsum("gq,gq->g", rows, c)
        half = np.sqrt(np.maximum(slack * np.einsum("gq,gqr,gr->g", rows, minv, rows), 0))
        if edge[np.argmin(centre - half)]:
            lo = -math.inf
        if edge[np.argmax(centre + half)]:
            hi = math.inf
        bound = res.floor_bounds if name == "E" else (0.0, math.inf)
        v = getattr(res, name)
        ci[name] = (min(max(lo, bound[0]), v), max(min(hi, bound[1]), v))
    n_coarse = len(grid)
    local, local_rss = res.profile["exps"][n_coarse + 1:], res.profile["rss"][n_coarse + 1:]
    if form == "loss_nd":
        prof = rss.reshape(GRID_2D, GRID_2D)
        axis = np.geomspace(ALPHA_MIN, ALPHA_MAX, GRID_2D)
        lprof = local_rss.reshape(48, 48)
        la, lb = np.unique(local[:, 0]), np.unique(local[:, 1])
        ci["alpha"] = _exp_interval(*_merged(axis, prof.min(axis=1), la, lprof.min(axis=1)), thr, res.alpha)
        ci["beta"] = _exp_interval(*_merged(axis, prof.min(axis=0), lb, lprof.min(axis=0)), thr, float(res.beta))
    else:
        ci["alpha"] = _exp_interval(*_merged(grid[:, 0], rss, local[:, 0], local_rss), thr, res.alpha)
    return ci


def _merged(a: np.ndarray, fa: np.ndarray, b: np.ndarray, fb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two profiles on two grids as one, sorted (the coarse grid keeps the edges, the fine one the ends)."""
    v, f = np.concatenate([a, b]), np.concatenate([fa, fb])
    order = np.argsort(v, kind="stable")
    return v[order], f[order]


def _choose_form(df: pd.DataFrame) -> tuple[str, str]:
    has_tokens = "tokens" in df.columns and df["tokens"].notna().any()
    if "loss" in df.columns:
        return ("loss_nd" if has_tokens else "loss"), "loss"
    return "score", "score"


def fit_points(df: pd.DataFrame, exclude_worst: int = 0, n_boot: int = 1000, seed: int = 0, *,
               level: float = 0.95, max_starts: int | None = None) -> FitResult:
    """Fit a scaling law to a table of points: columns ``params``, optional ``tokens``, ``loss`` or ``score``.

    With ``tokens`` and ``loss`` it fits L(N, D); otherwise the one-variable form of whichever of
    ``loss``/``score`` is present. ``exclude_worst`` drops the K worst points (highest loss / lowest score)
    first, as Epoch did with the Chinchilla data.
    """
    form, col = _choose_form(df)
    cols = ["params", col] + (["tokens"] if form == "loss_nd" else [])
    data = df[cols].astype(float).dropna()
    if exclude_worst > 0:
        data = data.sort_values(col, ascending=(col == "score"), kind="stable").iloc[exclude_worst:]
    _check_count(data, form, exclude_worst)
    return fit_arrays(data["params"].to_numpy(), data[col].to_numpy(), form,
                      tokens=data["tokens"].to_numpy() if form == "loss_nd" else None,
                      n_boot=n_boot, seed=seed, level=level)


def _check_count(data: pd.DataFrame, form: str, exclude_worst: int = 0) -> None:
    need = MIN_POINTS[form]
    distinct = data["params"].nunique() if form != "loss_nd" else len(data)
    if distinct < need:
        what = "distinct params values" if form != "loss_nd" else "points"
        extra = f" after excluding the {exclude_worst} worst" if exclude_worst else ""
        raise UserError(f"too few points for the {form} form: {distinct} {what}{extra}, need at least {need}")


def read_points_csv(path: str | Path) -> pd.DataFrame:
    """Read a points CSV for `fit_points`, with one-line `UserError`s for anything the user can fix."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: file not found")
    try:
        df = pd.read_csv(p)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise UserError(f"{p}: cannot read as CSV ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    df.columns = [str(c).strip() for c in df.columns]
    if "params" not in df.columns:
        raise UserError(f"{p}: missing column 'params' (columns: {', '.join(df.columns) or 'none'})")
    if "loss" not in df.columns and "score" not in df.columns:
        raise UserError(f"{p}: needs a 'loss' or a 'score' column (columns: {', '.join(df.columns)})")
    form, col = _choose_form(df)
    keep = ["params", col] + (["tokens"] if "tokens" in df.columns else [])
    out = pd.DataFrame(index=df.index)
    for c in keep:
        vals = pd.to_numeric(df[c], errors="coerce")
        bad = vals.isna() | ~np.isfinite(vals.astype(float))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise UserError(f"{p}: column '{c}' row {i + 1}: {df[c].iloc[i]!r} is not a number")
        if c != "score" and (vals <= 0).any():
            i = int(np.flatnonzero((vals <= 0).to_numpy())[0])
            raise UserError(f"{p}: column '{c}' row {i + 1}: {vals.iloc[i]!r} must be positive")
        out[c] = vals.astype(float)
    _check_count(out, form)
    return out.reset_index(drop=True)
