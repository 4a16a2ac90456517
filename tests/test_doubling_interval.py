"""The interval on what a doubling bought: the held-out bits-per-byte difference of two rungs on the same
documents (`analysis.paired.bpb_difference_interval`), divided by the doublings between them.

Checked against scipy's paired t interval where it must equal it (documents of one length), then for
coverage on planted data at the document counts the study uses: a printed "95%" must contain the planted
difference in 93-97% of seeded draws.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from beyondscale.analysis.paired import LN2, bpb_difference_interval

TRUE_GAIN = 0.13  # bits per byte between the two rungs (the order of `make run`'s last step)


def test_equal_lengths_give_scipys_paired_t_interval() -> None:
    rng = np.random.default_rng(3)
    bpb_a = 3.3 + rng.normal(0, 0.4, 12)
    bpb_b = bpb_a - rng.normal(TRUE_GAIN, 0.05, 12)
    nbytes = np.full(12, 990.0)
    effect, lo, hi = bpb_difference_interval(-bpb_a * nbytes * LN2, nbytes, -bpb_b * nbytes * LN2, nbytes)
    ci = stats.ttest_rel(bpb_a, bpb_b).confidence_interval(0.95)
    assert effect == pytest.approx(np.mean(bpb_a - bpb_b), rel=1e-12)
    assert (lo, hi) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_unequal_lengths_match_the_delta_method_by_hand() -> None:
    """Ratio-of-sums difference; the standard error from the linearised residuals, written out naively."""
    rng = np.random.default_rng(4)
    n = 12
    y = rng.uniform(300, 1500, n)
    bits_a, bits_b = y * (3.3 + rng.normal(0, 0.3, n)), y * (3.1 + rng.normal(0, 0.3, n))
    effect, lo, hi = bpb_difference_interval(-bits_a * LN2, y, -bits_b * LN2, y)
    r_a, r_b = sum(bits_a) / sum(y), sum(bits_b) / sum(y)
    resid = [((bits_a[i] - r_a * y[i]) - (bits_b[i] - r_b * y[i])) / (sum(y) / n) for i in range(n)]
    mean = sum(resid) / n
    se = math.sqrt(sum((r - mean) ** 2 for r in resid) / (n - 1) / n)
    half = stats.t.ppf(0.975, n - 1) * se
    assert effect == pytest.approx(r_a - r_b) and (lo, hi) == pytest.approx((r_a - r_b - half, r_a - r_b + half))


def test_under_ten_documents_there_is_no_interval() -> None:
    effect, lo, hi = bpb_difference_interval([-10.0] * 9, [5.0] * 9, [-9.0] * 9, [5.0] * 9)
    assert effect == pytest.approx(1 / LN2 / 5) and math.isnan(lo) and math.isnan(hi)
    assert not math.isnan(bpb_difference_interval([-10.0, -11] * 5, [5.0] * 10, [-9.0] * 10, [5.0] * 10)[1])


def coverage(n: int, gains, draws: int = 4000, seed: int = 0) -> float:
    """Share of draws whose interval holds the planted gain; documents of 300-1000 bytes (as the study cuts
    them), each with its own difficulty, and a per-document gain drawn from `gains` (mean TRUE_GAIN)."""
    rng = np.random.default_rng(seed)
    held = 0
    for _ in range(draws):
        y = rng.uniform(300, 1000, n)
        a = 3.3 + rng.normal(0, 0.4, n)
        b = a - gains(rng, n)
        _, lo, hi = bpb_difference_interval(-a * y * LN2, y, -b * y * LN2, y)
        held += lo <= TRUE_GAIN <= hi
    return held / draws


GAINS = {
    "normal": lambda rng, n: rng.normal(TRUE_GAIN, 0.04, n),  # as `make run`'s last step (sd 0.045 over 10)
    "skewed": lambda rng, n: rng.gamma(4.0, TRUE_GAIN / 4.0, n),  # skewness 1
}


@pytest.mark.parametrize(("shape", "n", "low"), [("normal", 10, 0.93), ("normal", 20, 0.93), ("normal", 40, 0.93),
                                                 ("skewed", 10, 0.92), ("skewed", 20, 0.93), ("skewed", 40, 0.93)])
def test_a_printed_95_percent_interval_covers_about_95_percent(shape: str, n: int, low: float) -> None:
    """4,000 draws: a binomial standard error of 0.34 points around 95%. Skewed gains at 10 documents cover
    92.6-93.1% (8,000 draws, two seeds): the bound says so rather than hide it."""
    assert low <= coverage(n, GAINS[shape]) <= 0.97


def test_the_paired_bootstraps_percentile_interval_would_undercover_at_ten() -> None:
    """Why not the paired table's percentile bootstrap: at 10 documents its "95%" holds about 89%."""
    rng = np.random.default_rng(5)
    held, draws = 0, 800
    for _ in range(draws):
        d = GAINS["normal"](rng, 10)
        boot = d[rng.integers(0, 10, (1000, 10))].mean(axis=1)
        lo, hi = np.quantile(boot, [0.025, 0.975])
        held += lo <= TRUE_GAIN <= hi
    assert held / draws < 0.925


def _frames(bpb_small: np.ndarray, bpb_large: np.ndarray, nbytes: np.ndarray):
    """A store's frames holding two rungs' per-document log-probabilities and lengths, and an older task version
    with other documents that must not be mixed in."""
    import pandas as pd

    from beyondscale.store import Frames

    rows = []
    for key, bpb in (("k-small", bpb_small), ("k-large", bpb_large)):
        for doc, (v, y) in enumerate(zip(bpb, nbytes, strict=True)):
            rows += [{"model_key": key, "task_key": "new", "task": "heldout_source_bpb", "doc_id": doc,
                      "metric": "logprob", "value": -v * y * LN2},
                     {"model_key": key, "task_key": "new", "task": "heldout_source_bpb", "doc_id": doc,
                      "metric": "bytes", "value": y},
                     {"model_key": key, "task_key": "old", "task": "heldout_source_bpb", "doc_id": doc,
                      "metric": "logprob", "value": -9.0 * y * LN2 if key == "k-small" else -1.0}]
    tasks = pd.DataFrame([{"task_key": "old", "task": "heldout_source_bpb", "created": 1.0},
                          {"task_key": "new", "task": "heldout_source_bpb", "created": 2.0}])
    empty = pd.DataFrame()
    return Frames(empty, empty, empty, pd.DataFrame(rows), tasks)


def _points(params: tuple[float, float], bpb: tuple[float, float]):
    import pandas as pd

    return pd.DataFrame([{"model": m, "kind": "dense", "params_total": n, "heldout_bpb": b}
                         for m, n, b in zip(("small", "large"), params, bpb, strict=True)])


@pytest.mark.parametrize("n", [12, 8])
def test_the_studys_doubling_carries_scipys_interval_per_doubling(n: int) -> None:
    from beyondscale.analysis.headline import headline
    from beyondscale.quickstart.conclude import _step

    rng = np.random.default_rng(11)
    small = 3.3 + rng.normal(0, 0.3, n)
    large = small - rng.normal(0.26, 0.05, n)  # over two doublings: 0.13 per doubling
    step = _step(_points((1e5, 4e5), (small.mean(), large.mean())), _frames(small, large, np.full(n, 990.0)),
                 {"small": "k-small", "large": "k-large"})
    assert step.n_items == n
    (line,) = headline([step], None)
    if n >= 10:
        ci = stats.ttest_rel(small, large).confidence_interval(0.95)
        assert (step.ci_low, step.ci_high) == pytest.approx((ci.low / 2, ci.high / 2), rel=1e-9)
        assert f"(95% CI {ci.low / 2:.3g} to {ci.high / 2:.3g}; held-out bits per byte" in line
    else:
        assert math.isnan(step.ci_low)
        assert f"(no interval: {n} documents, under the 10 at which its 95% was checked to hold; held-out" in line
    assert len(line.split()) < 45
