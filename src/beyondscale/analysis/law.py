"""A returns law in the metric's own space, and its backtest on the largest model.

Perplexity is exp(loss): its law is fitted as ln(perplexity) = E + A x^-alpha (nats, additive noise) and
read back in perplexity (the floor is exp(E)); a linear-space fit of perplexity puts the floor above
points it has measured. Bits per byte and losses are fitted as they are (relative noise). Accuracy-like
scores are fitted as s = E - A x^-alpha with the asymptote E at most 1 and, where the number of choices is
known, at least chance. The floor (losses) or asymptote (scores) is named for what it is.

Backtest: a law over at least BACKTEST_MIN sizes is refitted without its largest model, and predicts that
model's measurement with a profile-t prediction interval (`FitResult.new_point_interval`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from beyondscale.analysis.fits import FitResult, fit_arrays
from beyondscale.analysis.marginal import higher_is_better, is_accuracy_like

BACKTEST_MIN = 5


def metric_space(metric: str) -> str:
    """'ln' for perplexities (fitted as ln(perplexity)), else 'linear'."""
    return "ln" if "perplexity" in metric.lower() else "linear"


@dataclass(frozen=True)
class Backtest:
    """Fitted without its largest model (`held_out`), the law predicted `predicted` (`low` to `high`, NaN:
    no interval at the remaining sizes) for a measured `observed`, all in the metric's units."""

    metric: str
    held_out: str
    held_out_params: float
    predicted: float
    low: float
    high: float
    observed: float
    n_fitted: int
    task: str = ""
    axis: str = "parameters"  # what held_out_params measures ("training FLOPs" for a ladder's L(C))

    @property
    def within(self) -> bool | None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return None
        return self.low <= self.observed <= self.high

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {"held_out": d["held_out"], "held_out_params": d["held_out_params"], "predicted": d["predicted"],
                "interval": [_finite(d["low"]), _finite(d["high"])], "observed": d["observed"],
                "n_fitted": d["n_fitted"], "within": self.within}


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


@dataclass
class MetricLaw:
    """A FitResult on the metric's fitting scale, read back in the metric's units."""

    metric: str
    fit: FitResult
    space: str  # "ln" or "linear"

    @property
    def param_name(self) -> str:
        return "asymptote" if self.fit.form == "score" else "floor"

    def to_metric(self, v: Any) -> Any:
        return np.exp(v) if self.space == "ln" else v

    @property
    def floor(self) -> float:
        return float(self.to_metric(self.fit.E))

    @property
    def floor_ci(self) -> tuple[float, float]:
        lo, hi = self.fit.ci.get("E", (math.nan, math.nan))
        return float(self.to_metric(lo)), float(self.to_metric(hi))

    def predict(self, x: Any) -> np.ndarray:
        return self.to_metric(self.fit.predict(x))

    def predict_interval(self, x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(self.to_metric(v) for v in self.fit.predict_interval(x))  # type: ignore[return-value]

    def new_point_interval(self, x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(self.to_metric(v) for v in self.fit.new_point_interval(x))  # type: ignore[return-value]


def law_settings(metric: str, values: Any, chance: float | None = None) -> dict[str, Any]:
    """Form, fitting transform, floor bounds and noise model for a metric (see the module docstring)."""
    if higher_is_better(metric):
        acc = is_accuracy_like(metric, values)
        lo = chance if chance is not None else -math.inf
        return {"form": "score", "space": "linear", "floor_bounds": (lo, 1.0) if acc else (lo, math.inf),
                "noise": "absolute"}
    space = metric_space(metric)
    return {"form": "loss", "space": space, "floor_bounds": (0.0, math.inf),
            "noise": "absolute" if space == "ln" else "relative"}


def fit_metric_law(x: Any, y: Any, metric: str, *, chance: float | None = None, intervals: bool = True
                   ) -> MetricLaw:
    """Fit a one-variable returns law to (size, value) in the metric's own space."""
    s = law_settings(metric, y, chance)
    yv = np.asarray(y, dtype=float)
    fit_y = np.log(yv) if s["space"] == "ln" else yv
    fit = fit_arrays(x, fit_y, s["form"], n_boot=1 if intervals else 0, floor_bounds=s["floor_bounds"],
                     noise=s["noise"])
    return MetricLaw(metric, fit, s["space"])


def backtest(x: Any, y: Any, names: Any, metric: str, *, chance: float | None = None, axis: str = "parameters"
             ) -> Backtest | None:
    """Refit without the largest model and predict it (None under BACKTEST_MIN distinct sizes)."""
    x, y, names = np.asarray(x, float), np.asarray(y, float), np.asarray(names, dtype=object)
    if len(np.unique(x)) < BACKTEST_MIN:
        return None
    top = int(np.argmax(x))
    keep = x < x[top]
    law = fit_metric_law(x[keep], y[keep], metric, chance=chance)
    mid, lo, hi = (float(v[0]) for v in law.new_point_interval([x[top]]))
    return Backtest(metric, str(names[top]), float(x[top]), mid, lo, hi, float(y[top]), int(keep.sum()), axis=axis)
