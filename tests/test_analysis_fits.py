"""Scaling-law fits: recovery with honest intervals, closed-form compute-optimal allocation, CSV errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from beyondscale.analysis.fits import compute_optimal, fit_arrays, fit_points, read_points_csv
from beyondscale.errors import UserError


def _coverage(form: str, true: dict[str, float], make_y, trials: int = 100, n: int = 16, n_boot: int = 150):
    hits = dict.fromkeys(true, 0)
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        x = np.logspace(7, 10, n)
        r = fit_arrays(x, make_y(x, rng), form, n_boot=n_boot, seed=seed, max_starts=2)
        for k, v in true.items():
            lo, hi = r.ci[k]
            hits[k] += lo <= v <= hi
    return hits


def test_loss_fit_intervals_cover_true_parameters():
    true = {"E": 1.8, "A": 400.0, "alpha": 0.34}

    def make_y(x, rng):
        return (true["E"] + true["A"] * x ** -true["alpha"]) * np.exp(rng.normal(0, 0.01, x.size))

    hits = _coverage("loss", true, make_y)
    assert all(h >= 90 for h in hits.values()), hits


def test_score_fit_intervals_cover_true_parameters():
    true = {"E": 0.8, "A": 50.0, "alpha": 0.25}

    def make_y(x, rng):
        return true["E"] - true["A"] * x ** -true["alpha"] + rng.normal(0, 0.01, x.size)

    hits = _coverage("score", true, make_y)
    assert all(h >= 90 for h in hits.values()), hits


def test_two_variable_fit_recovers_parameters():
    true = dict(E=1.7, A=400.0, alpha=0.34, B=410.0, beta=0.28)
    hits = dict.fromkeys(true, 0)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        n = np.repeat(np.logspace(7.5, 9.5, 8), 5)
        d = n * np.tile([5.0, 10, 20, 40, 80], 8)
        loss = (true["E"] + true["A"] * n ** -true["alpha"] + true["B"] * d ** -true["beta"]) * np.exp(
            rng.normal(0, 0.005, n.size))
        r = fit_points(pd.DataFrame({"params": n, "tokens": d, "loss": loss}), n_boot=100, seed=seed)
        assert r.form == "loss_nd" and r.n_points == 40
        for k, v in true.items():
            lo, hi = r.ci[k]
            hits[k] += lo <= v <= hi
    assert all(h >= 16 for h in hits.values()), hits
    js = r.to_json()
    assert set(js) == {"E", "A", "alpha", "B", "beta", "ci", "n_points", "interval_note"}
    assert set(js["ci"]) == {"E", "A", "alpha", "B", "beta"}


def test_fit_points_exclude_worst_and_one_variable_shape():
    x = np.logspace(7, 10, 10)
    loss = 2.0 + 300 * x**-0.3
    loss[0] = 50.0  # an outlier with the highest loss
    r = fit_points(pd.DataFrame({"params": x, "loss": loss, "note": "ignored"}), exclude_worst=1, n_boot=20)
    assert r.n_points == 9
    assert r.to_json()["B"] is None and r.to_json()["beta"] is None
    assert abs(r.E - 2.0) < 0.02 and abs(r.alpha - 0.3) < 0.02
    y, lo, hi = r.predict_interval([1e8, 1e9])
    assert np.all(lo <= y + 1e-9) and np.all(y <= hi + 1e-9)


def test_compute_optimal_matches_brute_force():
    A, alpha, B, beta, E = 406.4, 0.34, 410.7, 0.28, 1.69
    for c in (1e20, 1e22, 1e24):
        n_grid = np.logspace(6, 14, 400_001)
        loss = E + A * n_grid**-alpha + B * (c / (6 * n_grid)) ** -beta
        n_best = n_grid[np.argmin(loss)]
        n_opt, d_opt = compute_optimal(A, alpha, B, beta, c)
        assert abs(np.log(n_opt / n_best)) < 1e-3
        assert np.isclose(6 * n_opt * d_opt, c)


def test_transformed_fit_equals_refit_on_transformed_axis():
    x = np.logspace(7, 10, 8)
    y = 0.9 - 30 * x**-0.2
    r = fit_arrays(x, y, "score", n_boot=0)
    t = r.transformed(2.0, float(np.log(6 * x**2).mean()))
    assert np.allclose(t.predict(6 * x**2), r.predict(x))
    assert np.isclose(t.alpha, r.alpha / 2)


def _write(tmp_path, text: str):
    p = tmp_path / "points.csv"
    p.write_text(text)
    return p


def test_read_points_csv_ok(tmp_path):
    p = _write(tmp_path, "params,loss,comment\n1e7,3.1,a\n1e8,2.7,b\n1e9,2.4,c\n1e10,2.2,d\n")
    df = read_points_csv(p)
    assert list(df.columns) == ["params", "loss"] and len(df) == 4


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("size,loss\n1,2\n", "missing column 'params'"),
        ("params,acc\n1,2\n", "'loss' or a 'score'"),
        ("params,loss\n1e7,3\n1e8,abc\n1e9,2\n1e10,2\n", "column 'loss' row 2"),
        ("params,loss\n1e7,3\n-5,2.5\n1e9,2\n1e10,2\n", "column 'params' row 2"),
        ("params,loss\n1e7,3\n1e8,2.5\n", "too few points"),
        ("params,tokens,loss\n" + "".join(f"{10**i},{10**i},{5 - i / 3}\n" for i in range(5)), "too few points"),
    ],
)
def test_read_points_csv_errors(tmp_path, text, needle):
    with pytest.raises(UserError) as e:
        read_points_csv(_write(tmp_path, text))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_read_points_csv_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_points_csv(tmp_path / "nope.csv")
