"""`beyondscale fit` as a function: the returns law of the user's own points, worded as `analyze` words a
curve (`analysis.fit_table`), plus what an L(N, D) fit implies for compute-optimal (Chinchilla, C = 6 N D)
and, given served tokens, inference-aware model sizes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from beyondscale.analysis.fit_table import fit_data
from beyondscale.errors import UserError

BUDGETS = (1e18, 1e20, 1e22, 1e24)  # compute budgets (FLOPs) the allocation tables are shown at


@dataclass(frozen=True)
class FitSettings:
    data: str  # CSV: params, tokens (optional), and a column named for its metric
    metric: str | None = None  # loss, perplexity, bits_per_byte, accuracy or score (default: the column found)
    chance: float | None = None  # an accuracy's floor when the number of choices is known (1/choices)
    min_gain: float | None = None  # the gain per doubling worth paying for (default: 1 accuracy point, 0.02 loss)
    exclude_worst: int = 0  # drop the K worst points first (as Epoch AI did with Chinchilla's)
    inference_tokens: float | None = None  # tokens the model will serve (Sardana et al. 2024)
    budgets: tuple[float, ...] = BUDGETS


def fit_summary(settings: FitSettings) -> dict[str, Any]:
    """The law with its floor (or asymptote), intervals, gains per doubling, knee and backtest, and its words
    (`lines`); for an L(N, D) fit also `compute_optimal` (N, D per budget) and, with `inference_tokens`,
    `inference_optimal`."""
    if settings.exclude_worst < 0:
        raise UserError("--exclude-worst must not be negative")
    if settings.inference_tokens is not None and not settings.inference_tokens >= 0:
        raise UserError(f"--inference-tokens {settings.inference_tokens}: must be a non-negative number of tokens")
    table = fit_data(settings.data, metric=settings.metric, chance=settings.chance,
                     exclude_worst=settings.exclude_worst, min_gain=settings.min_gain)
    doc = {**table.to_json(), "lines": table.lines()}
    if table.nd is None:
        if settings.inference_tokens is not None:
            raise UserError("--inference-tokens: needs a CSV with a tokens column (an L(N, D) fit)")
        return doc
    budgets = list(settings.budgets)
    n_opt, d_opt = table.nd.compute_optimal(budgets)
    doc["compute_optimal"] = [{"C": c, "N_opt": float(n), "D_opt": float(d)}
                              for c, n, d in zip(budgets, n_opt, d_opt, strict=True)]
    if settings.inference_tokens is not None:
        from beyondscale.analysis.inference_optimal import budget_table

        fitted = {"E": table.nd.E, **{k: doc[k] for k in ("A", "alpha", "B", "beta")}}
        doc["inference_tokens"] = settings.inference_tokens
        doc["inference_optimal"] = budget_table(budgets, settings.inference_tokens, fitted)
    return doc
