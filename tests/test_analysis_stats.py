"""Paired tests, Pareto frontier, knees and the recommendation on constructed cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, ttest_rel

from beyondscale.analysis.calibration import calibration_bins
from beyondscale.analysis.marginal import adjacent_gains, higher_is_better, knee_kneedle, knee_threshold
from beyondscale.analysis.paired import (
    bits_per_byte,
    bootstrap_bpb,
    count_matrix,
    mcnemar_exact,
    paired_bootstrap,
    permutation_test,
)
from beyondscale.analysis.pareto import pareto_frontier
from beyondscale.analysis.recommend import recommend
from beyondscale.errors import UserError


@pytest.mark.parametrize(("b", "c"), [(0, 0), (1, 6), (6, 1), (10, 10), (3, 17), (40, 25), (0, 9)])
def test_mcnemar_matches_binomtest(b, c):
    expected = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    assert math.isclose(float(mcnemar_exact(b, c)), expected, rel_tol=1e-9, abs_tol=1e-12)


def test_mcnemar_by_hand():
    # b=1, c=6: P(X <= 1) for Binomial(7, 1/2) = (1 + 7) / 128; two-sided doubles it.
    assert math.isclose(float(mcnemar_exact(1, 6)), 16 / 128)
    assert float(mcnemar_exact(0, 0)) == 1.0


def test_paired_bootstrap_contains_true_effect_and_matches_mean_difference():
    rng = np.random.default_rng(1)
    a = rng.normal(0.5, 0.2, 800)
    b = a + 0.05 + rng.normal(0, 0.05, 800)
    r = paired_bootstrap(a, b, n_boot=2000, seed=0)
    assert math.isclose(r["effect"], float(np.mean(b - a)))
    assert r["ci_low"] < 0.05 < r["ci_high"]
    assert r["p_value"] < 0.01
    b_null = a + rng.normal(0, 0.05, 800)
    same = paired_bootstrap(a, b_null, n_boot=2000, seed=0)
    # The null case's p must be the paired test's p (for 800 items the paired t test is the reference within
    # Monte Carlo error), not just "large": a p off by more than 0.03 fails.
    ref = ttest_rel(b_null, a).pvalue
    assert 0.05 < ref < 0.95 and abs(same["p_value"] - ref) < 0.03, (same["p_value"], ref)


def _sign_flip_by_hand(d):
    """Every one of the 2^n sign patterns, written out: share with |sum| >= |observed sum|."""
    total = extreme = 0
    for signs in itertools.product((1, -1), repeat=len(d)):
        total += 1
        extreme += abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= abs(sum(d)) - 1e-12
    return extreme / total


@pytest.mark.parametrize("d", [[0.3, -0.1, 0.2, 0.5, 0.4, 0.25, 0.1, 0.35], [1, 2, 3, 4, 5, 6],
                               [0.2, -0.3, 0.1, 0.0, 0.4, -0.05, 0.15], [1.0] * 8, [0.5, 0.5, -0.5, 0.5, 0.5, 0.5]])
def test_permutation_p_equals_exact_enumeration_and_respects_the_floor(d):
    r = permutation_test(np.zeros(len(d)), np.array(d, dtype=float))
    assert r["exact"] and math.isclose(r["p_value"], _sign_flip_by_hand(d), rel_tol=1e-12)
    assert r["p_value"] >= 2 / 2 ** len(d) - 1e-15
    assert r["p_floor"] == 2 / 2 ** sum(x != 0 for x in d)


def test_permutation_test_needs_six_items_and_goes_monte_carlo_above_twenty():
    assert math.isnan(permutation_test(np.zeros(5), np.ones(5))["p_value"])
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=40), rng.normal(size=40)
    r = permutation_test(a, b)
    assert not r["exact"] and r["p_floor"] == pytest.approx(1 / 10_001)
    from scipy.stats import permutation_test as scipy_permutation

    ref = scipy_permutation((b - a,), np.mean, permutation_type="samples", n_resamples=200_000, random_state=0)
    assert abs(r["p_value"] - ref.pvalue) < 0.01


def test_bits_per_byte_is_ratio_of_sums_on_joint_resamples():
    lp = np.array([[-10.0, -8.0], [-30.0, -20.0], [-5.0, -6.0]])
    nb = np.array([[10.0, 10.0], [20.0, 20.0], [5.0, 5.0]])
    point = bits_per_byte(lp, nb)
    assert np.allclose(point, [45 / 35 / math.log(2), 34 / 35 / math.log(2)])
    counts = count_matrix(3, 500, np.random.default_rng(0))
    boot = bootstrap_bpb(lp, nb, counts)
    k = 7
    expect = -(counts[k] @ lp) / math.log(2) / (counts[k] @ nb)
    assert np.allclose(boot[k], expect)
    assert np.allclose(counts.sum(axis=1), 3)


def test_pareto_constructed_case():
    df = pd.DataFrame({"model": ["a", "b", "c", "d"], "quality": [0.5, 0.6, 0.55, 0.7],
                       "cost": [1.0, 2.0, 3.0, 4.0]})
    out = pareto_frontier(df).set_index("model")
    assert out["on_frontier"].to_dict() == {"a": True, "b": True, "c": False, "d": True}
    assert out.loc["c", "dominated_by"] == "b"
    low = pareto_frontier(df.assign(quality=[3.0, 2.0, 2.5, 1.0]), higher_better=False).set_index("model")
    assert low["on_frontier"].to_dict() == {"a": True, "b": True, "c": False, "d": True}


def test_knee_on_constructed_curve():
    pts = pd.DataFrame({"model": list("abcde"), "x": [1e8, 2e8, 4e8, 8e8, 1.6e9],
                        "y": [0.30, 0.40, 0.48, 0.485, 0.49]})
    gains = adjacent_gains(pts, higher_better=True)
    assert np.allclose(gains["gain_per_doubling"], [0.10, 0.08, 0.005, 0.005])
    assert knee_threshold(gains, 0.01) == ("c", 4e8)
    assert knee_threshold(gains, 0.001) is None
    kk = knee_kneedle(pts, True)
    assert kk is not None and kk[0] in {"b", "c"}
    loss = pts.assign(y=[3.0, 2.8, 2.7, 2.69, 2.685])
    assert knee_threshold(adjacent_gains(loss, higher_better=False), 0.02) == ("c", 4e8)


def test_metric_direction():
    assert higher_is_better("acc") and higher_is_better("acc_norm") and higher_is_better("exact_match")
    for m in ("bits_per_byte", "word_perplexity", "brier", "ece", "loss"):
        assert not higher_is_better(m)


def _table():
    return pd.DataFrame({
        "model": ["small", "mid", "big"], "model_key": ["s", "m", "b"], "params_total": [1e8, 4e8, 2e9],
        "t/acc": [0.50, 0.62, 0.70], "mean_score": [0.50, 0.62, 0.70],
        "latency_ms_per_item": [5.0, 12.0, 40.0], "peak_memory_bytes": [1e9, 2e9, 6e9],
        "joules_per_token": [0.1, 0.3, 1.2], "usd_per_1m_tokens": [0.01, 0.05, 0.2],
    })


def test_recommend_smallest_feasible():
    r = recommend(_table(), {"min_score": 0.6, "max_latency_ms": 30}, {"t": "acc"})
    assert r["model"] == "mid"
    assert [c["feasible"] for c in r["candidates"]] == [False, True, False]
    r = recommend(_table(), {"min_score": 0.6, "task": "t", "max_memory_gb": 8}, {"t": "acc"})
    assert r["model"] == "mid"


def test_recommend_explains_infeasible():
    r = recommend(_table(), {"min_score": 0.65, "max_latency_ms": 20}, {"t": "acc"})
    assert r["model"] is None
    fails = {c["model"]: c["fails"] for c in r["candidates"]}
    assert any("mean_score" in f for f in fails["small"]) and any("latency" in f for f in fails["big"])
    assert "small" in r["reason"] and "big" in r["reason"]
    with pytest.raises(UserError):
        recommend(_table(), {"max_speed": 3}, {"t": "acc"})


def test_calibration_bins_equal_mass():
    conf = np.linspace(0.3, 1.0, 95)
    acc = (np.random.default_rng(0).random(95) < conf).astype(float)
    b = calibration_bins(conf, acc)
    assert len(b) == 10 and b["count"].sum() == 95 and b["count"].max() - b["count"].min() <= 1
    assert b["confidence"].is_monotonic_increasing
