"""The result of an analysis: plain DataFrames a notebook user can plot their own way.

`analysis.analyze(...)` fills an `Analysis`; `report/` renders one. Every frame is long-format
and may be empty; `notes` say what could not be computed and why (one model, no shared items...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


def _empty(*cols: str) -> pd.DataFrame:
    return pd.DataFrame(columns=list(cols))


@dataclass
class Analysis:
    """What scale buys, for one store (or one family / selection of models in it).

    findings: typed conclusions (`analysis.findings`), most important first.
    verdict: the findings worded (`analysis.wording.words`): printed by the CLI, first in the report.
    leaderboard: one row per model in size order: model, model_key, params_total, params_active,
        flops_per_token, family, vocab_size, dtype, quantization, then one column per "task/metric"
        (primary metrics, each model's own newest task version), then efficiency columns
        (tokens_per_s, ms_per_item, peak_memory_bytes, joules_per_token, energy_source,
        gco2e_per_1k_tokens, carbon_source, usd_per_1m_tokens, usd_per_correct, cost_source, mfu).
    curves: task, metric, axis, model, x, y, y_stderr, family (models that differ in size alone share it),
        in_fit (the point is of the family that carries the curve's law; others are points beside it).
    fits: task, metric, axis, form ("score" | "loss" | "loss_nd"), param ("floor" | "asymptote" | "A" |
        "alpha" | "B" | "beta"), value, ci_low, ci_high (profile-t, NaN with the reason when too few sizes),
        n_points, status ("ok" | "skipped"), reason, space ("ln": fitted as ln(perplexity), the floor
        reported back in perplexity; else "linear").
    fit_bands: task, metric, axis, x, y_fit, y_low, y_high: fitted line with its profile-t band.
    marginal: task, metric, axis, from_model, to_model, x_from, x_to, doublings, gain,
        gain_per_doubling (NaN under 0.1 doublings), source ("adjacent": neighbours within one family |
        "fit"), family.
    knees: task, metric, axis, model, x, method ("threshold" | "kneedle"), threshold, family.
    backtests: task, metric, axis, family, held_out, held_out_params, predicted, interval, low, high,
        observed, n_fitted, within: each law over 5+ sizes refitted without its largest model.
    paired: task, task_key (the newest version both have), metric, model_a, model_b (in size order
        (size, model_key): b is not smaller), model_key_a, model_key_b, n_items, effect (b - a),
        ci_low, ci_high (paired bootstrap), p_value (raw; NaN under 6 items), p_floor (the smallest p the
        test can give: 2/2^k for exact tests of k differing items, 1/(K+1) for K Monte Carlo swap patterns),
        test ("mcnemar" | "sign_flip_exact" | "sign_flip_mc" | "too few items"), primary (the task's
        primary metric), p_adjusted (Holm over
        the comparison's tasks), n_tests, significant (p_adjusted < 0.05), better (the model a
        significant row favours, else ""), flag ("bigger but not significantly better" or "bigger and
        significantly worse", only when b is really bigger).
    versions: task, model, model_key, task_key (the model's newest version), current (bool).
    pareto: task, metric, cost_axis, model, quality, cost, on_frontier (bool).
    calibration: model, task, bin, confidence, accuracy, count: reliability diagram bins.
    compute_optimal: C, N_opt, D_opt (only when a two-variable fit exists).
    recommendation: {"model": str | None, "reason": str, "constraints": {...}, "candidates": [...]}.
    notes: what could not be computed and why.
    """

    verdict: list[str] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)
    leaderboard: pd.DataFrame = field(default_factory=lambda: _empty("model", "model_key"))
    curves: pd.DataFrame = field(
        default_factory=lambda: _empty("task", "metric", "axis", "model", "x", "y", "y_stderr")
    )
    fits: pd.DataFrame = field(
        default_factory=lambda: _empty(
            "task", "metric", "axis", "form", "param", "value", "ci_low", "ci_high", "n_points", "status", "reason"
        )
    )
    fit_bands: pd.DataFrame = field(
        default_factory=lambda: _empty("task", "metric", "axis", "x", "y_fit", "y_low", "y_high")
    )
    marginal: pd.DataFrame = field(
        default_factory=lambda: _empty(
            "task", "metric", "axis", "from_model", "to_model", "x_from", "x_to", "doublings", "gain",
            "gain_per_doubling", "source",
        )
    )
    knees: pd.DataFrame = field(
        default_factory=lambda: _empty("task", "metric", "axis", "model", "x", "method", "threshold")
    )
    backtests: pd.DataFrame = field(
        default_factory=lambda: _empty("task", "metric", "axis", "held_out", "held_out_params", "predicted", "low",
                                       "high", "observed")
    )
    paired: pd.DataFrame = field(
        default_factory=lambda: _empty(
            "task", "task_key", "metric", "model_a", "model_b", "model_key_a", "model_key_b", "n_items", "effect",
            "ci_low", "ci_high", "p_value", "p_floor", "test", "primary", "p_adjusted", "n_tests", "significant",
            "better", "flag",
        )
    )
    versions: pd.DataFrame = field(
        default_factory=lambda: _empty("task", "model", "model_key", "task_key", "current")
    )
    pareto: pd.DataFrame = field(
        default_factory=lambda: _empty("task", "metric", "cost_axis", "model", "quality", "cost", "on_frontier")
    )
    calibration: pd.DataFrame = field(
        default_factory=lambda: _empty("model", "task", "bin", "confidence", "accuracy", "count")
    )
    compute_optimal: pd.DataFrame = field(default_factory=lambda: _empty("C", "N_opt", "D_opt"))
    recommendation: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    FRAMES = (
        "leaderboard", "curves", "fits", "fit_bands", "marginal", "knees", "backtests", "paired", "pareto",
        "calibration", "compute_optimal", "versions",
    )

    @property
    def headline(self) -> list[str]:
        """The answer first: at most five lines above the verdict's details (`analysis.headline`)."""
        from beyondscale.analysis.headline import headline

        sources = self.leaderboard["energy_source"].astype(str) if "energy_source" in self.leaderboard else None
        estimated = bool(sources is not None and sources.str.startswith("estimate").any())
        items = self.paired["n_items"].dropna() if "n_items" in self.paired else pd.Series(dtype=float)
        return headline(self.findings, self.paired, energy_estimated=estimated,
                        min_items=int(items.min()) if len(items) else None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        from beyondscale.analysis.findings import finding_json

        out: dict[str, Any] = {"headline": self.headline, "verdict": self.verdict, "findings": [finding_json(f) for f in self.findings],
                               "recommendation": self.recommendation, "notes": self.notes}
        for name in self.FRAMES:
            frame: pd.DataFrame = getattr(self, name)
            out[name] = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        return out
