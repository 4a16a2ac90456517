"""The inference-aware optimum (Sardana et al. 2024) against brute force, and their Figure 1 example."""

from __future__ import annotations

import numpy as np
import pytest

from beyondscale.analysis.inference_optimal import (
    CHINCHILLA,
    chinchilla_optimal,
    compare,
    compute_optimal_tokens,
    inference_optimal,
    loss_nd,
)


@pytest.mark.parametrize("inference_tokens", [0.0, 1e9, 2e12, 1e14])
@pytest.mark.parametrize("c", [CHINCHILLA, {"E": 2.0, "A": 50.0, "alpha": 0.5, "B": 80.0, "beta": 0.4}])
def test_optimum_matches_a_brute_force_grid(c, inference_tokens):
    loss = loss_nd(1e9, 2e10, **c)
    best = inference_optimal(loss, inference_tokens, c)
    # brute force: every N on a fine log grid, D from the loss constraint solved by bisection (not the closed form)
    ns = np.logspace(6, 14, 40001)
    totals = []
    for n in ns[:: 40]:
        lo, hi = 1.0, 1e30
        if loss_nd(n, hi, **c) > loss:
            totals.append(np.inf)
            continue
        for _ in range(200):
            mid = np.sqrt(lo * hi)
            lo, hi = (mid, hi) if loss_nd(n, mid, **c) > loss else (lo, mid)
        totals.append(6 * n * hi + 2 * n * inference_tokens)
    i = int(np.argmin(totals))
    assert best.total_flops <= totals[i] * (1 + 1e-6)
    assert best.params == pytest.approx(ns[:: 40][i], rel=0.02)
    assert loss_nd(best.params, best.train_tokens, **c) == pytest.approx(loss, rel=1e-9)


def test_without_inference_the_optimum_is_chinchillas_closed_form():
    n, d = chinchilla_optimal(1e23, CHINCHILLA)
    best = inference_optimal(loss_nd(n, d, **CHINCHILLA), 0.0, CHINCHILLA)
    assert best.params == pytest.approx(n, rel=1e-4) and best.train_tokens == pytest.approx(d, rel=1e-4)


def test_sardana_figure_1_with_chinchilla_constants():
    """'13B Chinchilla quality' = 13B trained on the tokens that make 13B compute-optimal under the fit:
    serving 2T tokens, a ~7B model on more data matches it and saves ~1.7e22 FLOPs (~17%)."""
    result = compare(13e9, compute_optimal_tokens(13e9, CHINCHILLA), 2e12, CHINCHILLA)
    assert 6.9e9 < result["inference_optimal"]["params"] < 7.4e9
    assert result["flops_saved"] == pytest.approx(1.7e22, rel=0.06)
    assert result["fraction_saved"] == pytest.approx(0.17, abs=0.01)


def test_fit_cli_reports_the_inference_aware_optimum(tmp_path, monkeypatch, capsys):
    import json
    import sys

    from beyondscale.cli import main

    c = {"E": 1.9, "A": 300.0, "alpha": 0.33, "B": 700.0, "beta": 0.3}
    rows = ["params,tokens,loss"] + [f"{n},{d},{loss_nd(n, d, **c)}" for n in np.logspace(7, 9, 5)
                                     for d in np.logspace(9, 11, 5)]
    (tmp_path / "pts.csv").write_text("\n".join(rows))
    monkeypatch.setattr(sys, "argv", ["beyondscale", "fit", "--data", str(tmp_path / "pts.csv"),
                                      "--inference-tokens", "2e12", "--json"])
    main()
    doc = json.loads(capsys.readouterr().out)
    row = doc["inference_optimal"][2]  # C = 1e22
    n, d = chinchilla_optimal(1e22, c)
    expected = compare(n, d, 2e12, c)
    assert row["N_inference_optimal"] == pytest.approx(expected["inference_optimal"]["params"], rel=0.05)
    assert row["fraction_saved"] == pytest.approx(expected["fraction_saved"], abs=0.02)
    monkeypatch.setattr(sys, "argv", ["beyondscale", "fit", "--data", str(tmp_path / "pts.csv"),
                                      "--inference-tokens", "2e12"])
    main()
    assert "inference-aware optimum" in capsys.readouterr().out
