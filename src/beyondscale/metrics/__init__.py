"""Numbers beyondscale adds to lm-eval's metrics: HELM's expected calibration error, reliability bins, and
standard errors (lm-eval itself scores every task)."""

from beyondscale.metrics.calibration import (
    equal_mass_boundaries,
    expected_calibration_error,
    reliability_bins,
)
from beyondscale.metrics.stats import bootstrap_stderr, mean_stderr

__all__ = [
    "bootstrap_stderr",
    "equal_mass_boundaries",
    "expected_calibration_error",
    "mean_stderr",
    "reliability_bins",
]
