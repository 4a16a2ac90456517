"""Marginal returns of scale: gain per doubling between adjacent models, and where returns flatten.

A "gain" here is always an improvement: y_to - y_from for higher-is-better metrics, y_from - y_to
for lower-is-better ones (losses), so "less than the threshold" reads the same for both.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

# Metrics where lower is better; everything else (acc, acc_norm, exact_match, f1, ...) is higher-better.
_LOWER_EXACT = {"brier", "ece", "loss", "nll", "bits_per_byte", "bpb", "perplexity", "word_perplexity",
                "byte_perplexity", "token_perplexity", "mce", "error", "ter"}
_LOWER_PARTS = ("perplexity", "bits_per_byte", "brier", "ece", "loss", "nll")


def higher_is_better(metric: str) -> bool:
    """Direction of a metric by name: lower for perplexity/bits_per_byte/brier/ece/loss, else higher."""
    m = metric.lower().split(",")[0].strip()
    if m in _LOWER_EXACT:
        return False
    return not any(part in m for part in _LOWER_PARTS)


def is_accuracy_like(metric: str, values: Any = None) -> bool:
    """Higher-is-better and living in [0, 1] (acc, acc_norm, exact_match, f1 ...)."""
    if not higher_is_better(metric):
        return False
    if values is None:
        return True
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return v.size == 0 or bool((v >= 0).all() and (v <= 1).all())


def default_threshold(metric: str, values: Any = None) -> float:
    """Smallest gain per doubling worth paying for: 1 accuracy point (0.01) or 0.02 for losses."""
    if not higher_is_better(metric):
        return 0.02
    if is_accuracy_like(metric, values):
        return 0.01
    return 1.0  # metrics on a 0-100 scale (bleu, ...)


def improvement(y_from: Any, y_to: Any, higher_better: bool) -> Any:
    """Signed improvement from y_from to y_to in the metric's good direction."""
    return (np.asarray(y_to) - np.asarray(y_from)) if higher_better else (np.asarray(y_from) - np.asarray(y_to))


def gains_arrays(x: np.ndarray, y: np.ndarray, names: np.ndarray, higher_better: bool) -> dict[str, np.ndarray]:
    """Adjacent gains for points already sorted by x (array form of `adjacent_gains`)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    dbl = np.log2(x[1:] / x[:-1])
    gain = improvement(y[:-1], y[1:], higher_better)
    with np.errstate(divide="ignore", invalid="ignore"):
        gpd = np.where(dbl > 0, gain / np.where(dbl > 0, dbl, 1.0), np.nan)
    return {"from_model": names[:-1], "to_model": names[1:], "x_from": x[:-1], "x_to": x[1:], "doublings": dbl,
            "gain": gain, "gain_per_doubling": gpd}


def adjacent_gains(points: pd.DataFrame, higher_better: bool) -> pd.DataFrame:
    """Rows (from_model, to_model, x_from, x_to, doublings, gain, gain_per_doubling) between neighbours.

    ``points`` has columns model, x, y; it is sorted by x (ties by model name) first.
    """
    cols = ["from_model", "to_model", "x_from", "x_to", "doublings", "gain", "gain_per_doubling"]
    p = points.dropna(subset=["x", "y"]).sort_values(["x", "model"], kind="stable")
    if len(p) < 2:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(gains_arrays(p["x"].to_numpy(float), p["y"].to_numpy(float),
                                     p["model"].astype(str).to_numpy(), higher_better))


def knee_threshold(gains: Any, threshold: float) -> tuple[str, float] | None:
    """The size after which every doubling gains less than ``threshold`` (the 'from' model of the first such
    step); None when a later step gains as much again (returns did not flatten, they varied).

    ``gains``: the frame from `adjacent_gains` (or its dict-of-arrays form). Steps without a gain per doubling
    (no size change, or too small a step to divide by) are skipped.
    """
    dbl = np.asarray(gains["doublings"], dtype=float)
    gpd = np.asarray(gains["gain_per_doubling"], dtype=float)
    valid = np.flatnonzero((dbl > 0) & np.isfinite(gpd))
    if valid.size == 0 or not gpd[valid[-1]] < threshold:
        return None
    above = valid[gpd[valid] >= threshold]
    i = int(valid[valid > above[-1]][0]) if above.size else int(valid[0])
    return str(np.asarray(gains["from_model"])[i]), float(np.asarray(gains["x_from"], dtype=float)[i])


def uneven(gains: Any, threshold: float) -> bool:
    """Some doubling gained less than ``threshold`` but a later one gained as much again."""
    dbl = np.asarray(gains["doublings"], dtype=float)
    gpd = np.asarray(gains["gain_per_doubling"], dtype=float)
    ok = (dbl > 0) & np.isfinite(gpd)
    return bool((gpd[ok] < threshold).any()) and knee_threshold(gains, threshold) is None


def knee_kneedle(points: pd.DataFrame, higher_better: bool) -> tuple[str, float] | None:
    """Kneedle (Satopaa et al. 2011, `kneed`) on y vs log2(x), as a second opinion; needs >= 3 sizes."""
    p = points.dropna(subset=["x", "y"])
    p = p[p["x"] > 0]
    return kneedle_arrays(p["x"].to_numpy(float), p["y"].to_numpy(float), p["model"].astype(str).to_numpy(),
                          higher_better)


def kneedle_arrays(x: np.ndarray, y: np.ndarray, names: np.ndarray, higher_better: bool
                   ) -> tuple[str, float] | None:
    """Array form of `knee_kneedle` (x > 0, finite)."""
    ux, inv = np.unique(x, return_inverse=True)
    if len(ux) < 3:
        return None
    yy = np.bincount(inv, weights=y) / np.bincount(inv)
    try:
        from kneed import KneeLocator
    except ImportError:  # pragma: no cover - kneed is a dependency
        return None
    lx = np.log2(ux)
    if not higher_better:
        yy = -yy
    if np.ptp(yy) == 0:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            knee = KneeLocator(lx, yy, S=1.0, curve="concave", direction="increasing").knee
    except Exception:  # noqa: BLE001 - a failed second opinion is not an error
        return None
    if knee is None or not math.isfinite(float(knee)):
        return None
    i = int(np.argmin(np.abs(np.log2(x) - float(knee))))
    return str(names[i]), float(x[i])
