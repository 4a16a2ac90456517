"""The numbers beyondscale adds to lm-eval's metrics (ECE, standard errors), checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from beyondscale.metrics import (
    bootstrap_stderr,
    expected_calibration_error,
    mean_stderr,
    reliability_bins,
)

# ---------------------------------------------------------------- helpers


def test_ece_equal_mass_uneven_bins_by_hand():
    # 7 confidences, 3 bins: np.array_split sizes 3, 2, 2 (first bins get the extra item).
    #   sorted: [0.2 0.3 0.4 | 0.6 0.7 | 0.8 0.9]; boundaries (0.4+0.6)/2=0.5, (0.7+0.8)/2=0.75, 1.0
    #   correct: [0 1 0 | 1 0 | 1 1]
    #   bin0: mean conf 0.3, acc 1/3 -> |gap| = 1/30, weight 3/7 -> 0.1/7
    #   bin1: mean conf 0.65, acc 0.5 -> 0.15, weight 2/7 -> 0.3/7
    #   bin2: mean conf 0.85, acc 1.0 -> 0.15, weight 2/7 -> 0.3/7
    #   ECE = 0.7/7 = 0.1
    conf = [0.7, 0.2, 0.9, 0.3, 0.6, 0.4, 0.8]  # shuffled: binning must sort
    corr = [0, 0, 1, 1, 1, 0, 1]
    assert expected_calibration_error(conf, corr, n_bins=3) == pytest.approx(0.1)
    bins = reliability_bins(conf, corr, n_bins=3)
    assert [b["count"] for b in bins] == [3, 2, 2]
    assert [b["confidence"] for b in bins] == pytest.approx([0.3, 0.65, 0.85])
    assert [b["accuracy"] for b in bins] == pytest.approx([1 / 3, 0.5, 1.0])
    assert [b["upper"] for b in bins] == pytest.approx([0.5, 0.75, 1.0])
    # 10 bins but only 7 items: HELM caps bins at n, so each item is its own bin and
    # ECE = mean |conf - correct| = (0.2+0.7+0.4+0.4+0.7+0.2+0.1)/7 = 2.7/7
    assert expected_calibration_error(conf, corr) == pytest.approx(2.7 / 7)


def test_ece_ties_fall_in_lower_bin():
    # [0.5 0.5 | 0.5 0.5 | 0.9 0.9] -> boundaries 0.5, 0.7, 1.0; every 0.5 is <= 0.5 so lands in
    # bin 0 (4 items), bin 1 is empty, bin 2 holds the 0.9s.
    # correct [1 0 0 0 | 1 1]: bin0 |0.5 - 0.25| = 0.25 * 4/6; bin2 |0.9 - 1| = 0.1 * 2/6
    # ECE = (1.0 + 0.2)/6 = 0.2
    conf = [0.5, 0.5, 0.5, 0.5, 0.9, 0.9]
    corr = [1, 0, 0, 0, 1, 1]
    assert expected_calibration_error(conf, corr, n_bins=3) == pytest.approx(0.2)
    bins = reliability_bins(conf, corr, n_bins=3)
    assert [(b["bin"], b["count"]) for b in bins] == [(0, 4), (2, 2)]


def test_ece_twenty_items_ten_bins():
    # 20 items, 10 bins of 2: confidences 0.50, 0.52, ..., 0.88; every bin has one right, one
    # wrong -> acc 0.5 everywhere; bin i mean conf = (0.50 + 0.04 i) + 0.01, gap = 0.01 + 0.04 i.
    # ECE = mean over bins = 0.01 + 0.04 * 4.5 = 0.19
    conf = [0.50 + 0.02 * i for i in range(20)]
    corr = [i % 2 for i in range(20)]
    assert expected_calibration_error(conf, corr) == pytest.approx(0.19)
    assert len(reliability_bins(conf, corr)) == 10


def test_mean_stderr_matches_numpy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=57)
    assert mean_stderr(x) == pytest.approx(np.std(x, ddof=1) / np.sqrt(len(x)))
    assert mean_stderr([1.0]) is None


def test_bootstrap_deterministic_and_close_to_closed_form():
    rng = np.random.default_rng(11)
    x = (rng.uniform(size=400) < 0.6).astype(float)

    def mean(a):
        return float(np.mean(a))

    a = bootstrap_stderr(mean, x, n_bootstrap=1000, seed=5)
    b = bootstrap_stderr(mean, x, n_bootstrap=1000, seed=5)
    c = bootstrap_stderr(mean, x, n_bootstrap=1000, seed=6)
    assert a == b
    assert a != c
    closed = np.std(x, ddof=1) / np.sqrt(len(x))
    assert a == pytest.approx(closed, rel=0.1)

