"""Scaling laws fitted on points a user brings: `fit` says what `analyze` says about a curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from beyondscale.analysis.fit_summary import FitSettings, fit_summary


def fit(data: str | Path | FitSettings, **settings: Any) -> dict[str, Any]:
    """The law of a CSV of points (`FitSettings`' fields as keywords): floor or asymptote with its interval,
    the law at the largest size, gains per doubling, knee, backtest and their words; L(N, D) allocations."""
    return fit_summary(data if isinstance(data, FitSettings) else FitSettings(data=str(data), **settings))
