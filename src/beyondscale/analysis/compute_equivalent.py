"""Compute-equivalent multipliers: what an alternative (MoE, curated data, distillation) is worth in dense compute.

The dense ladder's validation loss against training FLOPs is fitted with a saturating power law
L(C) = E + A C^-alpha (`analysis.fits`). An alternative that reached loss L_alt with C_alt FLOPs is worth
C_dense(L_alt) / C_alt dense compute, where C_dense(L) inverts the fitted curve.

The interval is a profile-t interval over C_dense (`FitResult.size_for`): the alternative's loss is a
measurement with the same noise as the rungs', appended to the fit at dense compute C; every C whose fit
stays within the profile threshold is in the interval. So both the curve's uncertainty and the noise of
the alternative's own loss are counted, and the point estimate always lies inside its interval. With too
few rungs for an interval (`fits.MIN_DOF`) the interval is NaN and `interval_note` says why.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from beyondscale.analysis.fits import FitResult, fit_arrays
from beyondscale.errors import UserError

GRID_DECADES_BELOW, GRID_DECADES_ABOVE, GRID_POINTS = 3.0, 8.0, 2000


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
    interval_note: str = ""  # why there is no interval (low and high are NaN)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_dense(flops: Any, losses: Any, *, n_boot: int = 1000, seed: int = 0) -> FitResult:
    """The dense ladder's loss-vs-FLOPs curve (needs at least 4 distinct rungs)."""
    flops, losses = np.asarray(flops, float), np.asarray(losses, float)
    if len(np.unique(flops)) < 4:
        raise UserError(f"compute-equivalent multipliers need at least 4 dense rungs; got {len(np.unique(flops))}")
    return fit_arrays(flops, losses, "loss", n_boot=n_boot, seed=seed)


def dense_flops_for(fit: FitResult, loss: float, span: tuple[float, float]) -> tuple[float, float, float]:
    """(point, low, high) dense FLOPs (or size, for a law over parameters) to reach `loss`: the profile-t
    interval on a log grid around the ladder's span (0 or inf where the grid's end is inside it)."""
    grid = np.logspace(math.log10(span[0]) - GRID_DECADES_BELOW, math.log10(span[1]) + GRID_DECADES_ABOVE,
                       GRID_POINTS)
    return fit.size_for(loss, grid)


def multiplier(fit: FitResult, name: str, loss: float, flops: float, span: tuple[float, float],
               wall_ratio: float | None = None) -> Multiplier:
    point, low, high = dense_flops_for(fit, loss, span)
    return Multiplier(name, loss, flops, point, point / flops, low / flops, high / flops,
                      not span[0] <= point <= span[1], wall_ratio, fit.interval_note)


def compute_equivalents(dense: list[dict], alternatives: list[dict], *, n_boot: int = 1000,
                        seed: int = 0) -> dict[str, Any]:
    """`dense` and `alternatives` are records with `val_loss` and `train_flops` (`name`, `wall_ratio` optional)."""
    flops = [r["train_flops"] for r in dense]
    fit = fit_dense(flops, [r["val_loss"] for r in dense], n_boot=n_boot, seed=seed)
    span = (min(flops), max(flops))
    rows = [multiplier(fit, a.get("name", f"alternative {i}"), a["val_loss"], a["train_flops"], span,
                       a.get("wall_ratio")).to_dict() for i, a in enumerate(alternatives)]
    return {"fit": fit.to_json(), "span": span, "multipliers": rows}
