"""Scaling laws fitted on points a user brings."""

from __future__ import annotations

from pathlib import Path

from beyondscale.analysis import fit_points, read_points_csv


def fit(data: str | Path, *, exclude_worst: int = 0, n_boot: int = 1000, seed: int = 0):
    """Fit scaling laws on points a user brings (CSV: params, tokens?, loss|score)."""
    return fit_points(read_points_csv(data), exclude_worst=exclude_worst, n_boot=n_boot, seed=seed)
