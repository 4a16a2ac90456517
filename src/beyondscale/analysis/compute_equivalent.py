"""Compute-equivalent multipliers: what an alternative (MoE, curated data, distillation) is worth in dense compute.

The dense ladder's validation loss against training FLOPs is fitted with a saturating power law
L(C) = E + A C^-alpha (Huber on log loss, bootstrap intervals: `analysis.fits`). An alternative that
reached loss L_alt with C_alt FLOPs is worth C_dense(L_alt) / C_alt dense compute, where C_dense(L)
inverts the fitted curve.

The interval: for a curve that decreases in C, C_b(L) <= c exactly when L_b(c) <= L, so the q-quantile
of the bootstrap inverses is where the pointwise q-quantile band of the curve crosses L. Crossing points
are read off a fine log grid of C, so only the fit's public prediction band is needed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from beyondscale.analysis.fits import FitResult, fit_arrays
from beyondscale.errors import UserError

GRID_DECADES_BELOW, GRID_DECADES_ABOVE, GRID_POINTS = 3.0, 8.0, 4000


@dataclass
class Multiplier:
    name: str
    loss: float
    flops: float
    dense_flops: float  # dense compute the fit needs to reach `loss` (inf: beyond its asymptote)
    multiplier: float
    low: float
    high: float
    extrapolated: bool  # dense_flops lies outside the FLOPs the dense ladder covered
    wall_ratio: float | None = None  # alternative's wall time / its matched dense rung's, when given

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_dense(flops: Any, losses: Any, *, n_boot: int = 1000, seed: int = 0) -> FitResult:
    """The dense ladder's loss-vs-FLOPs curve (needs at least 4 distinct rungs)."""
    flops, losses = np.asarray(flops, float), np.asarray(losses, float)
    if len(np.unique(flops)) < 4:
        raise UserError(f"compute-equivalent multipliers need at least 4 dense rungs; got {len(np.unique(flops))}")
    return fit_arrays(flops, losses, "loss", n_boot=n_boot, seed=seed)


def _crossing(grid: np.ndarray, curve: np.ndarray, loss: float) -> float:
    """First C on the grid where a decreasing curve falls to `loss` (log-interpolated); inf if never."""
    below = np.nonzero(curve <= loss)[0]
    if len(below) == 0:
        return math.inf
    i = int(below[0])
    if i == 0:
        return float(grid[0])
    x0, x1, y0, y1 = math.log(grid[i - 1]), math.log(grid[i]), curve[i - 1], curve[i]
    return math.exp(x0 + (x1 - x0) * (y0 - loss) / (y0 - y1)) if y0 != y1 else float(grid[i])


def dense_flops_for(fit: FitResult, loss: float, span: tuple[float, float]) -> tuple[float, float, float]:
    """(point, low, high) dense FLOPs to reach `loss`, on a grid around the ladder's FLOPs span."""
    grid = np.logspace(math.log10(span[0]) - GRID_DECADES_BELOW, math.log10(span[1]) + GRID_DECADES_ABOVE,
                       GRID_POINTS)
    mid, lo, hi = fit.predict_interval(grid)
    return _crossing(grid, mid, loss), _crossing(grid, lo, loss), _crossing(grid, hi, loss)


def multiplier(fit: FitResult, name: str, loss: float, flops: float, span: tuple[float, float],
               wall_ratio: float | None = None) -> Multiplier:
    point, low, high = dense_flops_for(fit, loss, span)
    return Multiplier(name, loss, flops, point, point / flops, low / flops, high / flops,
                      not span[0] <= point <= span[1], wall_ratio)


def compute_equivalents(dense: list[dict], alternatives: list[dict], *, n_boot: int = 1000,
                        seed: int = 0) -> dict[str, Any]:
    """`dense` and `alternatives` are records with `val_loss` and `train_flops` (`name`, `wall_ratio` optional)."""
    flops = [r["train_flops"] for r in dense]
    fit = fit_dense(flops, [r["val_loss"] for r in dense], n_boot=n_boot, seed=seed)
    span = (min(flops), max(flops))
    rows = [multiplier(fit, a.get("name", f"alternative {i}"), a["val_loss"], a["train_flops"], span,
                       a.get("wall_ratio")).to_dict() for i, a in enumerate(alternatives)]
    return {"fit": fit.to_json(), "span": span, "multipliers": rows}
