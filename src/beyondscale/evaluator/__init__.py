"""Evaluation, one floor below the lab and the study: settings in, every (model, task) pair scored,
metered and stored (resumably), results out. `lab/` and `quickstart/` call it; it never calls them."""

from beyondscale.evaluator.bench import bench
from beyondscale.evaluator.outcome import EvalResult, PairResult, UnitFailure
from beyondscale.evaluator.run import evaluate
from beyondscale.evaluator.settings import EvalSettings

__all__ = ["EvalResult", "EvalSettings", "PairResult", "UnitFailure", "bench", "evaluate"]
