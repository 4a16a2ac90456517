"""Expected calibration error with HELM's equal-mass binning, and the bins behind it.

HELM reports `ece_10_bin = calibration.get_ece_em(max_probs, correct, num_bins=10)` from the
`uncertainty-calibration` package (p-lambda/verified_calibration, `calibration/utils.py`). With
1-D confidences and 0/1 labels that call is the plug-in L1 calibration error on equal-mass bins:

1. `get_equal_bins`: sort the confidences, cut them into `min(n_bins, n)` consecutive chunks with
   `np.array_split` (the first `n % k` chunks hold one extra item), put a boundary halfway between
   the last value of each chunk and the first of the next, append 1.0, drop duplicate boundaries.
2. `fast_bin`: item goes to bin `searchsorted(boundaries, confidence, side="left")`, so a value
   equal to a boundary falls in the lower bin (ties never straddle a boundary).
3. `plugin_ce(power=1)`: sum over bins of `count/n * |mean(confidence) - mean(correct)|`; empty
   bins add nothing.

We reimplement those steps here (the package is unmaintained and not a dependency) so the numbers
agree with HELM's to floating-point precision, and expose the bins so the report can draw
reliability diagrams from the very bins the ECE was computed on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def equal_mass_boundaries(confidences: Sequence[float] | np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Upper bin boundaries (ending with 1.0) holding about equal numbers of items, as HELM's."""
    probs = np.sort(np.asarray(confidences, dtype=float))
    if probs.size == 0:
        return np.array([1.0])
    k = min(int(n_bins), probs.size)
    if k < 1:
        raise ValueError("n_bins must be at least 1")
    chunks = np.array_split(probs, k)
    bounds = [(chunks[i][-1] + chunks[i + 1][0]) / 2.0 for i in range(k - 1)]
    bounds.append(1.0)
    return np.array(sorted(set(bounds)), dtype=float)


def _assign(confidences: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    bounds = equal_mass_boundaries(confidences, n_bins)
    idx = np.searchsorted(bounds, confidences, side="left")
    # fast_bin puts anything past the last boundary (a confidence rounded above 1.0) in the last bin.
    return np.minimum(idx, len(bounds) - 1), bounds


def _as_arrays(confidences: Sequence[float], correct: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidences, dtype=float).reshape(-1)
    corr = np.asarray(correct, dtype=float).reshape(-1)
    if conf.shape != corr.shape:
        raise ValueError("confidences and correct must have the same length")
    return conf, corr


def reliability_bins(
    confidences: Sequence[float] | np.ndarray, correct: Sequence[float] | np.ndarray, n_bins: int = 10
) -> list[dict]:
    """Equal-mass bins of a reliability diagram: one dict per non-empty bin, lowest first.

    Each dict has `bin` (index), `confidence` (mean confidence), `accuracy` (mean correctness),
    `count`, and the bin's `lower`/`upper` confidence edges. These are exactly the bins that
    `expected_calibration_error` averages over.
    """
    conf, corr = _as_arrays(confidences, correct)
    if conf.size == 0:
        return []
    idx, bounds = _assign(conf, n_bins)
    out: list[dict] = []
    for b in range(len(bounds)):
        mask = idx == b
        count = int(mask.sum())
        if count == 0:
            continue
        out.append(
            {
                "bin": b,
                "confidence": float(conf[mask].mean()),
                "accuracy": float(corr[mask].mean()),
                "count": count,
                "lower": float(bounds[b - 1]) if b > 0 else 0.0,
                "upper": float(bounds[b]),
            }
        )
    return out


def expected_calibration_error(
    confidences: Sequence[float] | np.ndarray, correct: Sequence[float] | np.ndarray, n_bins: int = 10
) -> float:
    """HELM's `ece_10_bin`: equal-mass-binned, count-weighted |confidence - accuracy| (NaN if empty).

    `confidences` are the model's probabilities for its own predictions, `correct` 0/1 outcomes.
    """
    conf, corr = _as_arrays(confidences, correct)
    n = conf.size
    if n == 0:
        return float("nan")
    idx, bounds = _assign(conf, n_bins)
    k = len(bounds)
    counts = np.bincount(idx, minlength=k).astype(float)
    conf_sum = np.bincount(idx, weights=conf, minlength=k)
    corr_sum = np.bincount(idx, weights=corr, minlength=k)
    nz = counts > 0
    gaps = np.abs(conf_sum[nz] / counts[nz] - corr_sum[nz] / counts[nz])
    return float(np.dot(counts[nz] / n, gaps))
