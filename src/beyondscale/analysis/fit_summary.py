"""`beyondscale fit` as a function: a scaling law fitted on the user's own points, with what it implies
for compute-optimal (Chinchilla, C = 6 N D) and, given served tokens, inference-aware model sizes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from beyondscale.errors import UserError

BUDGETS = (1e18, 1e20, 1e22, 1e24)  # compute budgets (FLOPs) the allocation tables are shown at


@dataclass(frozen=True)
class FitSettings:
    data: str  # CSV: params, tokens (optional), loss or score
    exclude_worst: int = 0  # drop the K highest-loss points first (as Epoch AI did with Chinchilla's)
    n_boot: int = 1000  # bootstrap resamples for the intervals
    seed: int = 0
    inference_tokens: float | None = None  # tokens the model will serve (Sardana et al. 2024)
    budgets: tuple[float, ...] = BUDGETS


def fit_summary(settings: FitSettings) -> dict[str, Any]:
    """The fitted constants with their bootstrap intervals; for an L(N, D) fit also `compute_optimal`
    (N, D per budget) and, with `inference_tokens`, `inference_optimal`."""
    from beyondscale.analysis import fit_points, read_points_csv

    if settings.n_boot < 0 or settings.exclude_worst < 0:
        raise UserError("--n-boot and --exclude-worst must not be negative")
    if settings.inference_tokens is not None and not settings.inference_tokens >= 0:
        raise UserError(f"--inference-tokens {settings.inference_tokens}: must be a non-negative number of tokens")
    result = fit_points(read_points_csv(settings.data), exclude_worst=settings.exclude_worst,
                        n_boot=settings.n_boot, seed=settings.seed)
    doc = result.to_json()
    budgets = list(settings.budgets)
    if doc.get("B") is None:
        if settings.inference_tokens is not None:
            raise UserError("--inference-tokens: needs a CSV with a tokens column (an L(N, D) fit)")
        return doc
    n_opt, d_opt = result.compute_optimal(budgets)
    doc["compute_optimal"] = [{"C": c, "N_opt": float(n), "D_opt": float(d)}
                              for c, n, d in zip(budgets, n_opt, d_opt, strict=True)]
    if settings.inference_tokens is not None:
        from beyondscale.analysis.inference_optimal import budget_table

        fitted = {k: doc[k] for k in ("E", "A", "alpha", "B", "beta")}
        doc["inference_tokens"] = settings.inference_tokens
        doc["inference_optimal"] = budget_table(budgets, settings.inference_tokens, fitted)
    return doc
