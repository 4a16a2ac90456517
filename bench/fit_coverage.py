"""Coverage of the scaling-law intervals on planted laws (analysis.fits: profile-t intervals).

For each planted law, noise level and number of sizes, many noisy draws are fitted; the table gives, per
printed interval, the share of draws whose interval contains the planted truth (goal 93-97%), the median
interval width over the real spread of the point estimates (their 2.5-97.5% range over the draws; goal
<= 1.3), and the share of intervals the data leave unbounded on one side. Where too few sizes leave no
interval, the row says so instead.

Planted laws (sizes 70M to 12B parameters, log-spaced, as in a published 8-size family):
  loss       L = 1.7 + 400 N^-0.34, multiplicative noise (sigma = 0.5, 1, 2%)
  accuracy   acc = 0.80 - 8 N^-0.15, additive noise (0.5, 1, 2 points), 4 choices (asymptote in [0.25, 1])
  L(N, D)    L = 1.7 + 400 N^-0.34 + 410 D^-0.28 on 3x2 and 4x3 grids (N 10M-1B, D = 20/80 or 5/20/80 N)
Quantities: the constants; the curve at the geometric middle size ("pred mid") and at 2x the largest
("pred 2x"); the backtest's prediction interval for the largest model's measurement, fitted without it
("backtest"); the dense compute multiplier of a planted 2x alternative in the middle of the ladder ("2x").

Usage: python bench/fit_coverage.py [--draws 200] [--quick]   (single core; about 4 minutes by default)
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from beyondscale.analysis.compute_equivalent import multiplier
from beyondscale.analysis.fits import fit_arrays

LOSS = {"E": 1.7, "A": 400.0, "alpha": 0.34}
ACC = {"E": 0.80, "A": 8.0, "alpha": 0.15}
ND = {"E": 1.7, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28}


def loss_law(x: np.ndarray, p: dict) -> np.ndarray:
    return p["E"] + p["A"] * x ** -p["alpha"]


def acc_law(x: np.ndarray, p: dict) -> np.ndarray:
    return p["E"] - p["A"] * x ** -p["alpha"]


class Tally:
    """Per quantity: hits, interval widths, point estimates, unbounded count."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, list]] = {}

    def add(self, name: str, truth: float, point: float, lo: float, hi: float) -> None:
        r = self.rows.setdefault(name, {"hit": [], "width": [], "point": [], "unbounded": []})
        if not (math.isfinite(lo) or math.isfinite(hi)) and math.isnan(lo):
            return
        r["hit"].append(lo <= truth <= hi)
        r["width"].append(hi - lo)
        r["point"].append(point)
        r["unbounded"].append(not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 < truth and name == "alpha")

    def lines(self, label: str) -> list[str]:
        out = []
        for name, r in self.rows.items():
            pts = np.asarray(r["point"], float)
            pts = pts[np.isfinite(pts)]
            spread = float(np.subtract(*np.quantile(pts, [0.975, 0.025]))) if len(pts) > 2 else math.nan
            width = float(np.median(r["width"]))
            ratio = width / spread if spread > 0 else math.nan
            out.append(f"| {label} | {name} | {100 * np.mean(r['hit']):.1f}% | {ratio:.2f} | "
                       f"{100 * np.mean(r['unbounded']):.0f}% |")
        return out


def one_variable(kind: str, n: int, noise: float, draws: int) -> list[str]:
    law, truth, form = (loss_law, LOSS, "loss") if kind == "loss" else (acc_law, ACC, "score")
    bounds = None if kind == "loss" else (0.25, 1.0)
    x = np.geomspace(7e7, 1.2e10, n)
    mid, far = float(np.sqrt(x[0] * x[-1])), 2 * x[-1]
    tally, note = Tally(), ""
    for seed in range(draws):
        rng = np.random.default_rng([seed, n, int(noise * 1e4)])
        clean = law(x, truth)
        y = clean * np.exp(rng.normal(0, noise, n)) if kind == "loss" else clean + rng.normal(0, noise, n)
        fit = fit_arrays(x, y, form, floor_bounds=bounds)
        if not fit.ci:
            note = fit.interval_note
            break
        for k in ("E", "A", "alpha"):
            tally.add(k, truth[k], getattr(fit, k), *fit.ci[k])
        for name, at in (("pred mid", mid), ("pred 2x", far)):
            p, lo, hi = (float(v[0]) for v in fit.predict_interval([at]))
            tally.add(name, float(law(np.array([at]), truth)[0]), p, lo, hi)
        if kind == "loss":
            alt_c = float(np.sqrt(x[0] * x[-1]))
            alt_y = float(law(np.array([2 * alt_c]), truth)[0] * math.exp(rng.normal(0, noise)))
            m = multiplier(fit, "alt", alt_y, alt_c, (x[0], x[-1]))
            tally.add("2x", 2.0, m.multiplier, m.low, m.high)
        if n >= 5:
            back = fit_arrays(x[:-1], y[:-1], form, floor_bounds=bounds)
            if back.ci:
                p, lo, hi = (float(v[0]) for v in back.new_point_interval([x[-1]]))
                obs = float(y[-1])  # the spread that matters is of the prediction error
                tally.add("backtest", 0.0, p - obs, lo - obs, hi - obs)
    label = f"{kind} {n} sizes, noise {100 * noise:g}%"
    return [f"| {label} | all | no interval: {note} | | |"] if note else tally.lines(label)


def two_variable(sizes: int, ratios: tuple[float, ...], noise: float, draws: int) -> list[str]:
    n = np.repeat(np.geomspace(1e7, 1e9, sizes), len(ratios))
    d = n * np.tile(ratios, sizes)
    tally, note = Tally(), ""
    for seed in range(draws):
        rng = np.random.default_rng([seed, sizes, len(ratios), int(noise * 1e4)])
        y = (ND["E"] + ND["A"] * n ** -ND["alpha"] + ND["B"] * d ** -ND["beta"]) * np.exp(rng.normal(0, noise, n.size))
        fit = fit_arrays(n, y, "loss_nd", tokens=d)
        if not fit.ci:
            note = fit.interval_note
            break
        for k in ("E", "A", "alpha", "B", "beta"):
            tally.add(k, ND[k], getattr(fit, k), *fit.ci[k])
    label = f"L(N, D) {sizes}x{len(ratios)}, noise {100 * noise:g}%"
    return [f"| {label} | all | no interval: {note} | | |"] if note else tally.lines(label)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="1% noise only, 100 draws")
    args = ap.parse_args()
    draws = 100 if args.quick else args.draws
    # 1% noise at every size count with the full draws; 0.5% and 2% with half as many (time on one core)
    plan = [(0.01, draws)] if args.quick else [(0.01, draws), (0.005, draws // 2), (0.02, draws // 2)]
    start = time.time()
    print(f"Coverage of 95% profile-t intervals (goal: 93-97%; width <= 1.3x the real spread); draws per row: "
          f"{', '.join(f'{d} at {100 * z:g}% noise' for z, d in plan)}, {min(draws, 100)} for L(N, D)\n")
    print("| planted law | quantity | coverage | width / real spread | unbounded |")
    print("|---|---|---|---|---|")
    for kind in ("loss", "accuracy"):
        for noise, d in plan:
            for n in (4, 5, 6, 8, 12):
                print("\n".join(one_variable(kind, n, noise, d)), flush=True)
    for sizes, ratios in ((3, (20.0, 80.0)), (4, (5.0, 20.0, 80.0))):
        print("\n".join(two_variable(sizes, ratios, 0.01, min(draws, 100))), flush=True)
    print(f"\n{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
