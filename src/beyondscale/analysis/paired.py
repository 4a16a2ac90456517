"""Paired comparisons of models on the same items.

Scale comparisons are only fair on the same questions: per-item results are joined on
(task, doc_id) and compared pairwise. 0/1 metrics use McNemar's exact test (a two-sided binomial
test on the discordant pairs); other metrics a paired bootstrap that resamples items jointly for
both models. bits_per_byte is a ratio of sums per model (-sum(logprob)/ln 2/sum(bytes)), so it is
recomputed on every resample rather than averaged per item. Bootstraps are vectorised: one
(n_boot x n_items) count matrix per item set, multiplied into every model's per-item values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import binom

LN2 = math.log(2.0)


def mcnemar_exact(b: Any, c: Any) -> np.ndarray:
    """Two-sided exact McNemar p-value from discordant counts b (a right, b wrong) and c (the reverse).

    p = min(1, 2 * P[X <= min(b, c)]) with X ~ Binomial(b + c, 1/2); p = 1 when there are no
    discordant pairs. Equals scipy.stats.binomtest(b, b + c, 0.5).pvalue.
    """
    b = np.asarray(b, dtype=float)
    c = np.asarray(c, dtype=float)
    n = b + c
    p = np.minimum(1.0, 2.0 * binom.cdf(np.minimum(b, c), n, 0.5))
    return np.where(n > 0, p, 1.0)


def is_binary(values: np.ndarray) -> bool:
    """True when every finite value is 0 or 1 (McNemar applies)."""
    v = values[np.isfinite(values)]
    return v.size > 0 and bool(np.all((v == 0) | (v == 1)))


def count_matrix(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) multiplicities of each item in each bootstrap resample (rows sum to n)."""
    idx = rng.integers(0, n, size=(n_boot, n))
    w = np.bincount((idx + n * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n)
    return w.reshape(n_boot, n).astype(float)


def bootstrap_means(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(n_boot, n_models) resampled means of per-item ``values`` (n_items, n_models)."""
    return counts @ values / counts.sum(axis=1, keepdims=True)


def bits_per_byte(logprob: np.ndarray, nbytes: np.ndarray) -> np.ndarray:
    """-sum(logprob) / ln 2 / sum(bytes) over the item axis (axis 0)."""
    return -np.nansum(logprob, axis=0) / LN2 / np.nansum(nbytes, axis=0)


def bootstrap_bpb(logprob: np.ndarray, nbytes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(n_boot, n_models) bits_per_byte of each resample, items resampled jointly across models."""
    return -(counts @ logprob) / LN2 / (counts @ nbytes)


def percentile_ci(boot: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval along axis 0."""
    q = (1 - level) / 2
    fn = np.nanquantile if np.isnan(boot).any() else np.quantile
    lo, hi = fn(boot, [q, 1 - q], axis=0)
    return lo, hi


def bootstrap_p(boot_diff: np.ndarray, effect: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-value for 'no difference' by the shift method: P(|d* - d| >= |d|)."""
    nb = boot_diff.shape[0]
    extreme = (np.abs(boot_diff - effect) >= np.abs(effect) - 1e-15).sum(axis=0)
    return np.minimum(1.0, (extreme + 1.0) / (nb + 1.0))


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
                     ) -> dict[str, float]:
    """Mean difference b - a on the same items with a percentile CI and a bootstrap p-value."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    d = (b - a)[:, None]
    counts = count_matrix(len(d), n_boot, np.random.default_rng(seed))
    boot = bootstrap_means(d, counts)[:, 0]
    effect = float(d.mean())
    lo, hi = percentile_ci(boot[:, None], level)
    return {"effect": effect, "ci_low": float(lo[0]), "ci_high": float(hi[0]),
            "p_value": float(bootstrap_p(boot[:, None], np.array([effect]))[0]), "n_items": int(len(d))}


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control, Holm 1979).

    Sorted ascending, p_(i) is multiplied by (m - i), running maxima keep the order, capped at 1.
    """
    p = np.asarray(p, dtype=float)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = scaled
    return out
