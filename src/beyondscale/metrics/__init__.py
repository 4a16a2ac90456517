"""Scoring: lm-evaluation-harness metric definitions, HELM's ECE, and their standard errors.

`score(output_type, metric_names, items, results)` turns an engine's answers into per-item values
and task-level `(value, stderr)` pairs. The helpers below are pure functions on numbers, reused by
analysis/ and report/ (reliability diagrams come from `reliability_bins`).
"""

from beyondscale.metrics.calibration import (
    equal_mass_boundaries,
    expected_calibration_error,
    reliability_bins,
)
from beyondscale.metrics.scoring import (
    HIGHER_IS_BETTER,
    METRICS,
    Scores,
    count_bytes,
    count_words,
    is_corpus_metric,
    metric_names_for,
    score,
    softmax,
)
from beyondscale.metrics.stats import bootstrap_stderr, mean_stderr
from beyondscale.metrics.text import exact_match, normalize_for_match

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "Scores",
    "bootstrap_stderr",
    "count_bytes",
    "count_words",
    "equal_mass_boundaries",
    "exact_match",
    "expected_calibration_error",
    "is_corpus_metric",
    "mean_stderr",
    "metric_names_for",
    "normalize_for_match",
    "reliability_bins",
    "score",
    "softmax",
]
