"""The answer first: the headline is at most five lines, and each figure in it is recomputed here by hand from
the findings and the paired table it summarises."""

from __future__ import annotations

import math

import pandas as pd

from beyondscale.analysis.findings import ComputeWorth, DoublingGain, Placement, Recommendation
from beyondscale.analysis.headline import headline


def _paired(effect: float, lo: float, hi: float, n: int) -> pd.DataFrame:
    return pd.DataFrame([{"task": "heldout", "metric": "bits_per_byte", "model_a": "d2", "model_b": "d3",
                          "n_items": n, "effect": effect, "ci_low": lo, "ci_high": hi, "p_value": 2 / 2**n,
                          "p_floor": 2 / 2**n, "test": "sign_flip_exact"}])


def test_headline_answers_first_with_the_doubling_interval_by_hand() -> None:
    step = DoublingGain("d2", "d3", 1e5, 4e5, 3.3, 3.1)  # two doublings, 0.1 less per doubling
    rec = Recommendation("d3", "primary", "detail")
    moe = ComputeWorth("moe", "moe", 5e4, 1e5, 1.5, 1.2, 2.4, False)
    lines = headline([rec, step, moe], _paired(-0.2, -0.26, -0.14, 10), min_items=10)
    assert len(lines) <= 5 and lines[0].startswith("Answer: d3, the smallest model that no other beats")
    # every one of 10 documents favours d3: the exact sign-flip p is 2/2^10, the smallest 10 items allow
    assert "0.1 bits per byte less" in lines[1]
    assert "paired on the same 10 documents: p=0.002 (the smallest 10 items allow)" in lines[1]
    assert "the MoE worth 1.5× dense compute (95% CI 1.2× to 2.4×)" in lines[2]
    # the interval moved to 1x: 1.2/1.5 = 0.80, 2.4/1.5 = 1.60
    assert "between 0.80× and 1.60× cannot be told from 1×" in lines[3]
    assert lines[4].startswith("Caveat: only 10 items")
    assert sum(len(line.split()) for line in lines) < 150


def test_open_intervals_and_the_farthest_extrapolation() -> None:
    moe = ComputeWorth("moe", "moe", 5e4, 1e5, 0.9, 0.0, math.inf, False)
    far = Placement("real", 1e8, 0.9, 2.3, 1.0, 3.4, 600.0)
    lines = headline([moe, far], None, min_items=200)
    assert "95% CI 0× to no upper bound" in lines[0]
    assert lines[1].startswith("Power: the multipliers' intervals are open-ended")
    assert lines[2].startswith("Caveat: real (100M) lies 600× beyond the largest rung")


def test_nothing_to_say_is_no_headline() -> None:
    assert headline([], None) == []


def test_without_a_ladder_the_largest_size_step_per_doubling() -> None:
    from beyondscale.analysis.findings import Change, PValue, SizeStep

    change = Change("arc", "acc", 0.25, True, True, True, PValue(2 / 2**10, 2 / 2**10, 4 / 2**10, 2, True, 40))
    step = SizeStep("small", "big", 4.0, 4.0, (change,), 1.5, 1.0, True, False)  # 2 doublings
    (line,) = headline([step], None, min_items=40)
    # +25 accuracy points over log2(4) = 2 doublings: +12.5 per doubling, with its test
    assert line == ("A doubling bought, from small to big (2.00 doublings): arc +12.5 accuracy points per doubling "
                    "(p=0.002 (the smallest 10 items that differ allow), Holm p=0.0039).")
