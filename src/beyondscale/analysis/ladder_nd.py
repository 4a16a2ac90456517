"""L(N, D) from a trained ladder whose dense rungs vary both size and training tokens.

The fit is `fit`'s (`analysis.fits.fit_points`, Chinchilla approach 3, with its minimum-points rule) on
(N = total parameters, embeddings included as Hoffmann et al. 2022 count them; D = training tokens;
validation loss). From it: the compute-optimal allocation over the ladder's compute range (C = 6·N·D,
Chinchilla's closed form), and the inference-aware optimum (Sardana et al. 2024) for the loss of the
best dense rung, set against the Chinchilla-optimal model of the same loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from beyondscale.errors import UserError

__all__ = ["INFERENCE_MULTIPLE", "LadderND", "chinchilla_for_loss", "fit_nd"]

#: Default served tokens: this many times the best rung's training tokens (an assumption, labelled as such).
INFERENCE_MULTIPLE = 100.0


@dataclass
class LadderND:
    fit: Any  # FitResult, form loss_nd, N = params_total
    n_points: int
    sizes: int
    budgets: int
    allocation: pd.DataFrame  # C, N_opt (+CI), D_opt (+CI), tokens per param, predicted loss
    best: str  # the dense rung whose loss is the target
    target_loss: float
    inference_tokens: float
    inference_assumed: bool  # True when the served tokens are the default multiple, not the caller's
    chinchilla: dict[str, float] | None = None  # Plan.to_dict() of the Chinchilla-optimal model at the target
    inference_optimal: dict[str, float] | None = None  # Plan.to_dict() of the inference-aware model
    note: str = ""  # why there is no inference-aware comparison

    @property
    def constants(self) -> dict[str, float]:
        return {k: float(getattr(self.fit, k)) for k in ("E", "A", "alpha", "B", "beta")}


def chinchilla_for_loss(loss: float, c: dict[str, float]) -> tuple[float, float]:
    """The (N, D) that is compute-optimal under the fit and reaches `loss`: N solves
    L(N, D_opt(N)) = loss, where D_opt(N) is the token count that makes N the compute-optimal size."""
    from beyondscale.analysis.inference_optimal import compute_optimal_tokens, loss_nd

    if not loss > c["E"]:
        raise UserError(f"target loss {loss:.4g}: at or below the fitted irreducible loss E = {c['E']:.4g}")

    def gap(log_n: float) -> float:
        n = math.exp(log_n)
        return loss_nd(n, compute_optimal_tokens(n, c), **c) - loss

    hi = 1.0
    while gap(hi) > 0:
        hi += 5.0
        if hi > 200:
            raise UserError(f"target loss {loss:.4g}: no compute-optimal model under the fit reaches it")
    log_n = brentq(gap, -50.0, hi, xtol=1e-12)
    return math.exp(log_n), compute_optimal_tokens(math.exp(log_n), c)


def _why_not(dense: pd.DataFrame) -> str:
    sizes, budgets = dense["params_total"].nunique(), dense["tokens"].nunique()
    if budgets < 2:
        return (f"no L(N, D) fit: every dense rung trained on the same {_tokens(dense)} tokens, so the ladder "
                "varies size alone (a sweep with several --tokens budgets varies both)")
    if sizes < 2:
        return f"no L(N, D) fit: every dense rung has the same size ({int(dense['params_total'].iloc[0]):,} parameters)"
    return ""


def _tokens(dense: pd.DataFrame) -> str:
    return f"{int(dense['tokens'].iloc[0]):,}" if len(dense) else "0"


def outside(dense: pd.DataFrame, params: float, tokens: float) -> bool:
    """True when (params, tokens) lies outside the sizes or the budgets the ladder measured (an extrapolation)."""
    n, d = dense["params_total"].astype(float), dense["tokens"].astype(float)
    return not (n.min() <= params <= n.max() and d.min() <= tokens <= d.max())


def _allocation(fit: Any, flops: np.ndarray) -> pd.DataFrame:
    """Chinchilla's closed form over the ladder's compute range, with its profile-t intervals (the range of
    N_opt over the fit's confidence region; none when the fit has no interval)."""
    grid = np.geomspace(flops.min(), flops.max(), 5)
    n_opt, d_opt = fit.compute_optimal(grid)
    rows = {"C_6ND": grid, "N_opt": n_opt, "D_opt": d_opt, "tokens_per_param": d_opt / n_opt,
            "predicted_loss": fit.predict(n_opt, d_opt)}
    if fit.has_interval:
        def n_opt_at(E: Any, A: Any, alpha: Any, B: Any, beta: Any) -> np.ndarray:
            ok = (A > 0) & (B > 0)
            a, al, b, be = A[ok, None], alpha[ok, None], B[ok, None], beta[ok, None]
            return (al * a / (be * b)) ** (1.0 / (al + be)) * (grid[None, :] / 6.0) ** (be / (al + be))

        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # inf: the region does not bound it
            n_lo, n_hi = fit.range_of(n_opt_at)
        if np.ndim(n_lo):
            with np.errstate(divide="ignore"):
                rows.update(N_opt_low=n_lo, N_opt_high=n_hi, D_opt_low=grid / 6 / n_hi, D_opt_high=grid / 6 / n_lo)
    return pd.DataFrame(rows)


def fit_nd(dense: pd.DataFrame, *, inference_tokens: float | None = None, n_boot: int = 1000,
           seed: int = 0) -> tuple[LadderND | None, str]:
    """The dense baseline's L(N, D), allocation and inference-aware optimum; (None, why) when it cannot be fitted."""
    from beyondscale.analysis.fits import MIN_POINTS, fit_points

    why = _why_not(dense)
    if why:
        return None, why
    points = pd.DataFrame({"params": dense["params_total"].astype(float), "tokens": dense["tokens"].astype(float),
                           "loss": dense["val_loss"].astype(float)})
    try:
        fit = fit_points(points, n_boot=n_boot, seed=seed)
    except UserError as err:  # fewer points than `fit` needs (MIN_POINTS)
        return None, f"no L(N, D) fit: {err} (the L(N, D) form needs {MIN_POINTS['loss_nd']})"
    if not (fit.alpha > 0 and fit.beta > 0):
        return None, (f"no L(N, D) allocation: the fit's exponents (alpha {fit.alpha:.3g}, beta {fit.beta:.3g}) "
                      "are not both positive, so loss does not fall with size and data")
    best = dense.loc[dense["val_loss"].astype(float).idxmin()]
    served = float(inference_tokens) if inference_tokens is not None else INFERENCE_MULTIPLE * float(best["tokens"])
    law = LadderND(fit, len(points), int(dense["params_total"].nunique()), int(dense["tokens"].nunique()),
                   _allocation(fit, 6.0 * points["params"].to_numpy() * points["tokens"].to_numpy()),
                   str(best["model"]), float(best["val_loss"]), served, inference_tokens is None)
    law.allocation["extrapolated"] = [outside(dense, n, d) for n, d in
                                      zip(law.allocation["N_opt"], law.allocation["D_opt"], strict=True)]
    return _with_inference(law), ""


def _with_inference(law: LadderND) -> LadderND:
    from beyondscale.analysis.inference_optimal import compare

    try:
        n, d = chinchilla_for_loss(law.target_loss, law.constants)
        cmp = compare(n, d, law.inference_tokens, law.constants)
    except UserError as err:
        law.note = f"no inference-aware optimum: {err}"
        return law
    law.chinchilla, law.inference_optimal = cmp["reference"], cmp["inference_optimal"]
    return law
