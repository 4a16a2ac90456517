"""Standard errors: lm-evaluation-harness's closed form for means, a seeded bootstrap otherwise.

Kept free of model and task types so analysis/ and report/ can reuse them on any numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


def mean_stderr(values: Sequence[float] | np.ndarray) -> float | None:
    """Standard error of a mean, `sample_stddev / sqrt(n)` (lm-eval's `mean_stderr`).

    The sample standard deviation uses Bessel's correction (ddof=1), as lm-eval does. With fewer
    than two values there is no estimate, so the answer is None rather than a division by zero.
    """
    arr = np.asarray(values, dtype=float)
    n = arr.size
    if n < 2:
        return None
    return float(np.std(arr, ddof=1) / math.sqrt(n))


def bootstrap_stderr(
    statistic: Callable[..., float],
    *columns: Sequence | np.ndarray,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> float | None:
    """Bootstrap standard error of `statistic(*columns)` for statistics with no closed form.

    Items (rows shared by all `columns`) are resampled with replacement `n_bootstrap` times using
    `numpy.random.Generator(PCG64(seed))`, so the answer is a pure function of the data and the
    seed. The spread of the replicates is their sample standard deviation (ddof=1), as in
    lm-eval's `bootstrap_stderr`. Replicates that come out non-finite are dropped. Returns None
    with fewer than two items, no resamples, or fewer than two finite replicates.
    """
    arrays = [np.asarray(c) for c in columns]
    if not arrays:
        raise ValueError("bootstrap_stderr needs at least one column")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("bootstrap_stderr columns must have the same length")
    if n < 2 or n_bootstrap < 1:
        return None
    rng = np.random.Generator(np.random.PCG64(seed))
    reps = np.empty(n_bootstrap, dtype=float)
    for b in range(n_bootstrap):
        idx = rng.integers(0, n, size=n)
        reps[b] = statistic(*(a[idx] for a in arrays))
    reps = reps[np.isfinite(reps)]
    if reps.size < 2:
        return None
    return float(np.std(reps, ddof=1))
