"""Analysis: what scale buys. `analyze(frames) -> Analysis`; `fit_points` for scaling-law fits."""

from beyondscale.analysis.analyze import analyze
from beyondscale.analysis.calibration import calibration_bins, expected_calibration_error
from beyondscale.analysis.fit_table import FitTable, fit_data
from beyondscale.analysis.fits import FitResult, compute_optimal, fit_arrays, fit_points, read_points_csv
from beyondscale.analysis.inputs import primary_metric
from beyondscale.analysis.marginal import default_threshold, higher_is_better
from beyondscale.analysis.paired import mcnemar_exact, paired_bootstrap, permutation_test
from beyondscale.analysis.pareto import pareto_frontier
from beyondscale.analysis.recommend import recommend
from beyondscale.analysis.types import Analysis

__all__ = [
    "Analysis", "FitResult", "FitTable", "analyze", "calibration_bins", "compute_optimal", "default_threshold",
    "expected_calibration_error", "fit_arrays", "fit_data", "fit_points", "higher_is_better", "mcnemar_exact",
    "paired_bootstrap", "pareto_frontier", "permutation_test", "primary_metric", "read_points_csv", "recommend",
]
