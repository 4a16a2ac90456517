"""Scaling-law fits, done the way Hoffmann et al. 2022 (Chinchilla, approach 3) and the Epoch AI
replication (Besiroglu et al. 2024) do them, so our constants can be compared with theirs.

Forms (x is a size such as parameters; N parameters, D training tokens):

- ``loss``:    L(x)   = E + A x^-alpha                 = exp(LSE(a - alpha log x, e))
- ``loss_nd``: L(N,D) = E + A N^-alpha + B D^-beta      = exp(LSE(a - alpha log N, b - beta log D, e))
- ``score``:   s(x)   = s_inf - A x^-alpha              (E holds s_inf)

Loss forms minimise the Huber loss (delta = 1e-3) of log(predicted) - log(observed); the score form
the Huber loss of predicted - observed. The point fit is L-BFGS-B started from the best points of a
grid of initialisations (the Chinchilla grid plus data-scaled starts); the best optimum is kept.
Bootstrap confidence intervals refit every resample at once (vectorised damped IRLS / Gauss-Newton
on the same Huber objective, warm-started at the point fit), so 1,000 resamples cost milliseconds.
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
from scipy.optimize import minimize

from beyondscale.errors import UserError

DELTA = 1e-3
FORMS = ("loss", "loss_nd", "score")
# Free parameters of each form (internal, normalised coordinates).
_PARAMS = {"loss": ("a", "e", "alpha"), "loss_nd": ("a", "b", "e", "alpha", "beta"), "score": ("s", "a", "alpha")}
# Minimum number of points (distinct sizes for one-variable forms) to fit each form.
MIN_POINTS = {"loss": 4, "loss_nd": 6, "score": 4}


# --------------------------------------------------------------------------- model functions


def _lse_weights(us: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    m = us[0]
    for u in us[1:]:
        m = np.maximum(m, u)
    ex = [np.exp(u - m) for u in us]
    s = ex[0]
    for v in ex[1:]:
        s = s + v
    lse = m + np.log(s)
    return lse, [v / s for v in ex]


def _resid_jac(form: str, theta: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residuals (B, n) and Jacobian (B, n, p) for a batch of parameter vectors theta (B, p).

    For loss forms ``y`` is log(observed); ``t`` holds centred log sizes: (n,) or (n, 2) for loss_nd.
    """
    if form == "loss":
        a, e, al = (theta[:, i : i + 1] for i in range(3))
        u1 = a - al * t[None, :]
        u2 = np.broadcast_to(e, u1.shape)
        lse, (w1, w2) = _lse_weights([u1, u2])
        r = lse - y[None, :]
        jac = np.stack([w1, w2, -t[None, :] * w1], axis=-1)
    elif form == "loss_nd":
        a, b, e, al, be = (theta[:, i : i + 1] for i in range(5))
        tn, td = t[:, 0][None, :], t[:, 1][None, :]
        u1 = a - al * tn
        u2 = b - be * td
        u3 = np.broadcast_to(e, u1.shape)
        lse, (w1, w2, w3) = _lse_weights([u1, u2, u3])
        r = lse - y[None, :]
        jac = np.stack([w1, w2, w3, -tn * w1, -td * w2], axis=-1)
    elif form == "score":
        s, a, al = (theta[:, i : i + 1] for i in range(3))
        p = np.exp(np.clip(a - al * t[None, :], -700, 700))
        r = s - p - y[None, :]
        jac = np.stack([np.ones_like(p), -p, t[None, :] * p], axis=-1)
    else:  # pragma: no cover - guarded by callers
        raise ValueError(f"unknown form {form!r}")
    return r, jac


def _huber(r: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Huber loss divided by delta (same minimiser; behaves like |r| so tolerances stay sane)."""
    ar = np.abs(r)
    return np.where(ar <= delta, 0.5 * r * r / delta, ar - 0.5 * delta)


def _objective(form: str, theta: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray | None = None):
    r, _ = _resid_jac(form, theta, t, y)
    h = _huber(r)
    if w is not None:
        h = h * w
    return h.sum(axis=1)


# --------------------------------------------------------------------------- optimisers


def _grid(form: str, t: np.ndarray, y: np.ndarray, log_x0: np.ndarray) -> np.ndarray:
    """Initialisations: the Chinchilla grid (converted to centred coordinates) plus data-scaled starts."""
    alphas = np.arange(0.0, 2.01, 0.5)
    es = np.arange(-1.0, 1.01, 0.5)
    abs_ = np.arange(0.0, 25.01, 5.0)
    rows: list[tuple[float, ...]] = []
    if form == "loss":
        ly = np.exp(y)
        span = max(float(ly.max() - ly.min()), 1e-3)
        rows += [(a - al * log_x0[0], e, al) for a, e, al in itertools.product(abs_, es, alphas)]
        a_data = math.log(span) + np.arange(-2.0, 2.01, 1.0)
        e_data = math.log(max(float(ly.min()), 1e-6)) + np.array([-2.0, -1.0, -0.5, -0.1])
        al_data = np.array([0.05, 0.1, 0.25, 0.5, 1.0, 2.0])
        rows += list(itertools.product(a_data, e_data, al_data))
    elif form == "loss_nd":
        for a, b, e, al, be in itertools.product(abs_, abs_, es, alphas, alphas):
            rows.append((a - al * log_x0[0], b - be * log_x0[1], e, al, be))
        ly = np.exp(y)
        span = max(float(ly.max() - ly.min()), 1e-3)
        a_data = math.log(span) + np.array([-2.0, -1.0, 0.0])
        e_data = math.log(max(float(ly.min()), 1e-6)) + np.array([-1.0, -0.3])
        al_data = np.array([0.1, 0.3, 0.6])
        rows += list(itertools.product(a_data, a_data, e_data, al_data, al_data))
    else:  # score
        span = max(float(y.max() - y.min()), 1e-3)
        s_data = float(y.max()) + span * np.array([0.0, 0.25, 1.0, 3.0])
        a_data = math.log(span) + np.arange(-2.0, 2.01, 1.0)
        al_data = np.array([0.05, 0.1, 0.25, 0.5, 1.0, 2.0])
        rows += list(itertools.product(s_data, a_data, al_data))
        rows += [(s, a - al * log_x0[0], al) for s, a, al in itertools.product(s_data[:2], abs_, alphas)]
    return np.asarray(rows, dtype=float)


def _bounds(form: str) -> list[tuple[float | None, float | None]]:
    nb = len(_PARAMS[form])
    b: list[tuple[float | None, float | None]] = [(None, None)] * nb
    for i, name in enumerate(_PARAMS[form]):
        if name in ("alpha", "beta"):
            b[i] = (0.0, 10.0)
    return b


def _lbfgs(form: str, theta0: np.ndarray, t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    def fun(th: np.ndarray) -> tuple[float, np.ndarray]:
        r, jac = _resid_jac(form, th[None, :], t, y)
        psi = np.clip(r, -DELTA, DELTA) / DELTA
        return float(_huber(r).sum()), np.einsum("bn,bnp->p", psi, jac)

    res = minimize(fun, theta0, jac=True, method="L-BFGS-B", bounds=_bounds(form),
                   options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-10})
    return np.asarray(res.x, dtype=float), float(res.fun)


def _batched_refit(form: str, theta0: np.ndarray, t: np.ndarray, y: np.ndarray, w: np.ndarray,
                   iters: int = 60) -> np.ndarray:
    """Minimise the weighted Huber objective for every row of ``w`` (B, n) at once.

    Damped Gauss-Newton on the IRLS majoriser of the Huber loss (weights 1/max(|r|, delta)), one
    Levenberg-Marquardt damping factor per resample; exponents are kept >= 0 as in the point fit.
    Rows that have converged drop out, so the work shrinks as the fits settle.
    """
    nb, p = w.shape[0], theta0.shape[-1]
    theta = np.array(np.broadcast_to(theta0, (nb, p)), dtype=float)
    lam = np.full(nb, 1e-3)
    exp_idx = [i for i, n in enumerate(_PARAMS[form]) if n in ("alpha", "beta")]
    eye = np.eye(p)
    act = np.arange(nb)
    for _ in range(iters):
        if act.size == 0:
            break
        th, wa, la = theta[act], w[act], lam[act]
        r, jac = _resid_jac(form, th, t, y)
        f = (_huber(r) * wa).sum(axis=1)
        g = np.matmul((wa * (np.clip(r, -DELTA, DELTA) / DELTA))[:, None, :], jac)[:, 0, :]
        om = wa / np.maximum(np.abs(r), DELTA)
        h = np.matmul(jac.transpose(0, 2, 1) * om[:, None, :], jac)
        diag = np.diagonal(h, axis1=1, axis2=2)
        a_mat = h + (la[:, None] * diag + 1e-12)[:, :, None] * eye[None]
        try:
            step = -np.linalg.solve(a_mat, g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = -(np.linalg.pinv(a_mat) @ g[:, :, None])[:, :, 0]
        step = np.nan_to_num(step, nan=0.0, posinf=0.0, neginf=0.0)
        cand = th + step
        if exp_idx:
            cand[:, exp_idx] = np.clip(cand[:, exp_idx], 0.0, 10.0)
        rc, _ = _resid_jac(form, cand, t, y)
        fc = (_huber(rc) * wa).sum(axis=1)
        ok = np.isfinite(fc) & (fc <= f)
        theta[act[ok]] = cand[ok]
        lam[act] = np.where(ok, np.maximum(la / 3.0, 1e-9), np.minimum(la * 4.0, 1e9))
        small = np.abs(cand - th).max(axis=1) < 1e-7
        flat = ok & (f - fc <= 1e-9 * np.maximum(f, 1e-300))
        done = small | flat | (lam[act] >= 1e9)
        act = act[~done]
    return theta


# --------------------------------------------------------------------------- results


def _natural(form: str, theta: np.ndarray, log_x0: np.ndarray) -> dict[str, np.ndarray]:
    """Internal (centred, log) coordinates -> E, A, alpha (, B, beta) in the caller's units."""
    theta = np.atleast_2d(theta)
    if form == "loss":
        a, e, al = theta.T
        return {"E": np.exp(e), "A": np.exp(a + al * log_x0[0]), "alpha": al}
    if form == "loss_nd":
        a, b, e, al, be = theta.T
        return {"E": np.exp(e), "A": np.exp(a + al * log_x0[0]), "alpha": al,
                "B": np.exp(b + be * log_x0[1]), "beta": be}
    s, a, al = theta.T
    return {"E": s, "A": np.exp(a + al * log_x0[0]), "alpha": al}


@dataclass
class FitResult:
    """A fitted curve with bootstrap intervals; ``E`` is the asymptote (s_inf for the score form)."""

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
    theta: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    boot: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    log_x0: np.ndarray = field(default_factory=lambda: np.zeros(2), repr=False)

    def to_json(self) -> dict[str, Any]:
        """The JSON shape promised to callers (CLI `fit`, report)."""
        return {"E": self.E, "A": self.A, "alpha": self.alpha, "B": self.B, "beta": self.beta,
                "ci": {k: [v[0], v[1]] for k, v in self.ci.items()}, "n_points": self.n_points}

    def _t(self, params: Any, tokens: Any = None) -> np.ndarray:
        ln = np.log(np.asarray(params, dtype=float)) - self.log_x0[0]
        if self.form != "loss_nd":
            return np.atleast_1d(ln)
        if tokens is None:
            raise ValueError("a loss_nd fit needs tokens to predict")
        ld = np.log(np.asarray(tokens, dtype=float)) - self.log_x0[1]
        ln, ld = np.broadcast_arrays(np.atleast_1d(ln), np.atleast_1d(ld))
        return np.stack([ln, ld], axis=1)

    def _predict_theta(self, theta: np.ndarray, t: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            r, _ = _resid_jac(self.form, np.atleast_2d(theta), t, np.zeros(t.shape[0]))
        return r if self.form == "score" else np.exp(r)

    def predict(self, params: Any, tokens: Any = None) -> np.ndarray:
        """Fitted loss (or score) at the given sizes."""
        return self._predict_theta(self.theta, self._t(params, tokens))[0]

    def predict_interval(self, params: Any, tokens: Any = None, level: float | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fit, low, high): bootstrap percentile band of the prediction."""
        t = self._t(params, tokens)
        y = self._predict_theta(self.theta, t)[0]
        if self.boot.size == 0:
            return y, np.full_like(y, np.nan), np.full_like(y, np.nan)
        q = (1 - (level or self.level)) / 2
        pb = self._predict_theta(self.boot, t)
        lo, hi = _quantiles(pb, [q, 1 - q])
        return y, lo, hi

    def transformed(self, power: float, log_x0: float) -> FitResult:
        """The same fit for sizes x' = c * x**power whose mean log is ``log_x0`` (no refit).

        Exact for one-variable forms: A x^-alpha = A' x'^-(alpha/power). Lets proportional axes
        (FLOPs/token = 2 x parameters) or power-related ones (6 N D with D = 20 N) share a fit.
        """
        if self.form == "loss_nd":
            raise ValueError("only one-variable fits can be transformed")
        k = _PARAMS[self.form].index("alpha")
        theta = self.theta.copy()
        theta[k] = theta[k] / power
        boot = self.boot.copy()
        if boot.size:
            boot[:, k] = boot[:, k] / power
        return _result(self.form, theta, boot, np.array([log_x0, 0.0]), self.n_points, self.level, self.objective)

    def compute_optimal(self, compute: Any) -> tuple[np.ndarray, np.ndarray]:
        """Chinchilla's closed form for C = 6 N D: N_opt = G (C/6)^(beta/(alpha+beta)), D_opt = (C/6)/N_opt."""
        if self.form != "loss_nd" or self.B is None or self.beta is None:
            raise ValueError("compute-optimal allocation needs a two-variable (loss_nd) fit")
        return compute_optimal(self.A, self.alpha, self.B, self.beta, compute)


def _quantiles(a: np.ndarray, qs: list[float]) -> np.ndarray:
    """Quantiles along axis 0, ignoring NaN (np.nanquantile is slow on 2-D input, so only when needed)."""
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


def fit_arrays(x: Any, y: Any, form: str, *, tokens: Any = None, n_boot: int = 1000, seed: int = 0,
               level: float = 0.95, max_starts: int | None = 8) -> FitResult:
    """Fit ``form`` to sizes ``x`` (and ``tokens`` for loss_nd) and observations ``y``.

    ``max_starts``: how many of the best grid points L-BFGS-B starts from (None: all of them, as in
    Chinchilla; the rest of the grid is screened by its objective value first, which finds the same
    optimum far faster).
    """
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; expected one of {FORMS}")
    with single_thread_blas(), np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _fit_arrays(x, y, form, tokens, n_boot, seed, level, max_starts)


def single_thread_blas() -> contextlib.AbstractContextManager:
    """Limit BLAS to one thread: these problems are tiny, and OpenBLAS thread wake-ups made the
    bounded L-BFGS-B about 30x slower per iteration on a busy 2-core machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only a speed-up
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _fit_arrays(x: Any, y: Any, form: str, tokens: Any, n_boot: int, seed: int, level: float,
                max_starts: int | None) -> FitResult:
    x = np.asarray(x, dtype=float)
    yv = np.asarray(y, dtype=float)
    if form == "loss_nd":
        lt = np.stack([np.log(x), np.log(np.asarray(tokens, dtype=float))], axis=1)
        log_x0 = lt.mean(axis=0)
        t = lt - log_x0
    else:
        lx = np.log(x)
        log_x0 = np.array([lx.mean(), 0.0])
        t = lx - log_x0[0]
    yt = yv if form == "score" else np.log(yv)

    grid = _grid(form, t, yt, log_x0)
    fvals = _objective(form, grid, t, yt)
    fvals = np.where(np.isfinite(fvals), fvals, np.inf)
    order = np.argsort(fvals, kind="stable")
    if max_starts is None:  # Chinchilla: L-BFGS from every grid point
        starts = grid[order]
    else:  # refine the most promising grid points together, then L-BFGS from the best of them
        top = grid[order[: max(4 * max_starts, 16)]]
        refined = _batched_refit(form, top, t, yt, np.ones((len(top), len(yt))), iters=40)
        fr = _objective(form, refined, t, yt)
        starts = refined[np.argsort(np.where(np.isfinite(fr), fr, np.inf), kind="stable")[:max_starts]]
    best_theta, best_f = grid[order[0]], float(fvals[order[0]])
    for th0 in starts:
        th, fv = _lbfgs(form, th0, t, yt)
        if np.isfinite(fv) and fv < best_f:
            best_theta, best_f = th, fv

    boot = np.zeros((0, len(best_theta)))
    n = len(yv)
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(n_boot, n))
        w = np.bincount((idx + n * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n)
        w = w.reshape(n_boot, n).astype(float)
        boot = _batched_refit(form, best_theta, t, yt, w)

    return _result(form, best_theta, boot, log_x0, n, level, best_f)


def _result(form: str, theta: np.ndarray, boot: np.ndarray, log_x0: np.ndarray, n: int, level: float,
            objective: float) -> FitResult:
    nat = {k: float(v[0]) for k, v in _natural(form, theta, log_x0).items()}
    ci: dict[str, tuple[float, float]] = {}
    if boot.shape[0]:
        q = (1 - level) / 2
        for name, vals in _natural(form, boot, log_x0).items():
            lo, hi = _quantiles(vals, [q, 1 - q])
            ci[name] = (float(lo), float(hi))
    return FitResult(form=form, E=nat["E"], A=nat["A"], alpha=nat["alpha"], B=nat.get("B"), beta=nat.get("beta"),
                     ci=ci, n_points=n, n_boot=int(boot.shape[0]), level=level, objective=objective, theta=theta,
                     boot=boot, log_x0=log_x0)


def _choose_form(df: pd.DataFrame) -> tuple[str, str]:
    has_tokens = "tokens" in df.columns and df["tokens"].notna().any()
    if "loss" in df.columns:
        return ("loss_nd" if has_tokens else "loss"), "loss"
    return "score", "score"


def fit_points(df: pd.DataFrame, exclude_worst: int = 0, n_boot: int = 1000, seed: int = 0, *,
               level: float = 0.95, max_starts: int | None = 8) -> FitResult:
    """Fit a scaling law to a table of points: columns ``params``, optional ``tokens``, ``loss`` or ``score``.

    With ``tokens`` and ``loss`` it fits L(N, D) (Chinchilla approach 3); otherwise the one-variable
    form of whichever of ``loss``/``score`` is present. ``exclude_worst`` drops the K worst points
    (highest loss / lowest score) first, as Epoch did with the Chinchilla data.
    """
    form, col = _choose_form(df)
    cols = ["params", col] + (["tokens"] if form == "loss_nd" else [])
    data = df[cols].astype(float).dropna()
    if exclude_worst > 0:
        data = data.sort_values(col, ascending=(col == "score"), kind="stable").iloc[exclude_worst:]
    _check_count(data, form, exclude_worst)
    return fit_arrays(data["params"].to_numpy(), data[col].to_numpy(), form,
                      tokens=data["tokens"].to_numpy() if form == "loss_nd" else None,
                      n_boot=n_boot, seed=seed, level=level, max_starts=max_starts)


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
