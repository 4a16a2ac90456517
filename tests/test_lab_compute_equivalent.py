"""Compute-equivalent multipliers: the inverse of the dense loss-vs-FLOPs fit, with bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from beyondscale.analysis.compute_equivalent import compute_equivalents
from beyondscale.errors import UserError

E, A, ALPHA = 2.0, 40.0, 0.12


def curve(c):
    return E + A * np.asarray(c, float) ** -ALPHA


def test_multiplier_recovers_a_planted_compute_advantage():
    flops = np.logspace(13, 17, 6)
    dense = [{"train_flops": c, "val_loss": float(curve(c))} for c in flops]
    # an alternative that reaches, with 1e15 FLOPs, the loss dense reaches with 2.5e15: worth 2.5x
    alt = {"name": "moe", "train_flops": 1e15, "val_loss": float(curve(2.5e15))}
    out = compute_equivalents(dense, [alt], n_boot=200)
    row = out["multipliers"][0]
    assert row["multiplier"] == pytest.approx(2.5, rel=0.01)
    assert row["low"] <= row["multiplier"] <= row["high"]
    assert not row["extrapolated"]
    fit = out["fit"]  # the closed-form inverse of the fitted curve agrees with the grid inversion
    inverse = (fit["A"] / (alt["val_loss"] - fit["E"])) ** (1 / fit["alpha"])
    assert row["dense_flops"] == pytest.approx(inverse, rel=0.01)


def test_noisy_ladder_gives_an_interval_and_an_asymptote_gives_infinity():
    rng = np.random.default_rng(0)
    flops = np.logspace(13, 17, 8)
    dense = [{"train_flops": c, "val_loss": float(curve(c) * np.exp(rng.normal(0, 0.01)))} for c in flops]
    alts = [{"name": "curated", "train_flops": 1e15, "val_loss": float(curve(2e15))},
            {"name": "impossible", "train_flops": 1e15, "val_loss": 1.0}]  # below the irreducible loss
    rows = compute_equivalents(dense, alts, n_boot=300)["multipliers"]
    assert rows[0]["low"] < rows[0]["multiplier"] < rows[0]["high"]
    assert rows[0]["high"] / rows[0]["low"] > 1.05
    assert rows[1]["multiplier"] == float("inf")


def test_too_few_dense_rungs_is_a_clear_error():
    with pytest.raises(UserError, match="at least 4 dense rungs"):
        compute_equivalents([{"train_flops": 1e12 * i, "val_loss": 3.0 - i / 10} for i in range(1, 4)], [])
