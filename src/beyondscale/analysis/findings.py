"""Typed findings: what the analysis concluded, as data. `wording.py` turns each into one sentence.

Keeping conclusions typed (instead of building sentences where they are computed) means the CLI,
HTML and Markdown all show the same words, and tests can check the conclusion and its wording apart.
Models appear by display name here (names are labels; every decision was taken on model keys).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class PValue:
    """A p-value with its floor and Holm adjustment. The floor is the smallest p the test can give: attainable
    for exact tests (`exact`: 2/2^k for k items that differ), a resolution bound for Monte Carlo ones
    (1/(K+1)); NaN raw p: too few items (`n_items`) to test."""

    raw: float
    floor: float = 0.0
    adjusted: float | None = None
    n_tests: int = 1
    exact: bool = False
    n_items: int = 0


@dataclass(frozen=True)
class Win:
    """`better` is significantly better than `worse` on task/metric (after Holm over the comparison's tasks)."""

    task: str
    metric: str
    better: str
    worse: str
    effect: float
    p: PValue
    test: str
    n_items: int
    same_size: bool = False


@dataclass(frozen=True)
class Change:
    """How the second model of a pair does on one task: delta in the metric's units (b - a)."""

    task: str
    metric: str
    delta: float
    improved: bool
    accuracy_like: bool
    significant: bool = False
    p: PValue | None = None


@dataclass(frozen=True)
class SizeStep:
    """Model b next to model a in size order (a is not bigger than b)."""

    a: str
    b: str
    size_ratio: float
    non_embedding_ratio: float
    changes: tuple[Change, ...]
    time_ratio: float
    energy_ratio: float
    energy_estimated: bool
    same_size: bool
    other_differences: bool = False  # a FramingWarning covers this pair: not a scaling step


@dataclass(frozen=True)
class SignificantDifference:
    """A cheaper model is significantly better than a bigger one it is not adjacent to in size order."""

    win: Win
    same_size: bool


@dataclass(frozen=True)
class NoDominantModel:
    """Each of several models is significantly better somewhere: the trade-off, stated."""

    wins: tuple[Win, ...]
    ties: tuple[str, ...]
    dominated: tuple[str, ...] = ()  # each significantly worse than some front model, and better than it nowhere


@dataclass(frozen=True)
class ReturnsFlatten:
    """From at least `MIN_KNEE_POINTS` sizes: after `model` a doubling gains less than `threshold`."""

    task: str
    metric: str
    model: str
    threshold: float
    accuracy_like: bool
    n_points: int


@dataclass(frozen=True)
class UnevenReturns:
    """Some doubling gained less than `threshold`, but a later one as much again: no flattening; the gains
    per doubling between neighbours of one family, in size order: (from, to, gain per doubling)."""

    task: str
    metric: str
    gains: tuple[tuple[str, str, float], ...]
    threshold: float
    accuracy_like: bool
    n_points: int


@dataclass(frozen=True)
class NegativeReturns:
    """Beyond `model`, bigger models score lower on task/metric (a negative gain is not a flattening).

    worse: (model, gain in the good direction (< 0), significant in the paired test with its neighbour)."""

    task: str
    metric: str
    model: str
    worse: tuple[tuple[str, float, bool], ...]
    n_points: int
    higher_better: bool
    accuracy_like: bool


@dataclass(frozen=True)
class SameMeasurement:
    """Energy here is estimated from CPU time, so an energy ratio restates the time ratio."""

    source: str


@dataclass(frozen=True)
class FramingWarning:
    """Two models differ in more than size (family, tokenizer, vocabulary, dtype/quantisation)."""

    a: str
    b: str
    differences: tuple[str, ...]


@dataclass(frozen=True)
class VersionMismatch:
    """`model` lacks the current version of `task`; the paired test with `other` used an older shared one."""

    task: str
    model: str
    other: str
    n_items: int
    shared: bool


@dataclass(frozen=True)
class MixedVersions:
    """The leaderboard column of `task` averages different versions (item sets) across models."""

    task: str
    models_on_older: tuple[str, ...]


@dataclass(frozen=True)
class ConstraintBinds:
    """A model smaller than the pick (or any model, when none qualifies) fails these constraints."""

    model: str
    fails: tuple[str, ...]


@dataclass(frozen=True)
class Recommendation:
    """The pick and the visible rule that made it; `cheaper_wins` are where a cheaper model is better."""

    model: str | None
    rule: str
    detail: str
    cheaper_wins: tuple[Win, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class FittedLaw:
    """A saturating power law E + A·x^-alpha fitted over a trained dense ladder's rungs."""

    controlled_scaling: ClassVar[bool] = True  # its rungs differ only in size: the report's framing says so
    n_rungs: int
    params_low: float
    params_high: float
    alpha: float
    alpha_ci: tuple[float, float]
    E: float
    lowest: float = math.nan  # the lowest fitted value a rung reached: a floor far below it is not measured
    interval_note: str = ""  # why there is no interval (alpha_ci is NaN): too few rungs for the parameters


@dataclass(frozen=True)
class LadderLaw(FittedLaw):
    """A trained dense ladder's law: validation loss against training FLOPs, L(C) = E + A·C^-alpha (the lab's
    report), or a held-out score against parameters at one token budget, L(N) = E + A·N^-alpha (the study)."""

    flops_low: float = math.nan
    flops_high: float = math.nan
    against: str = "training FLOPs"  # or "parameters"
    metric: str = "validation loss"  # what was fitted, in its units ("held-out bits per byte")
    tokens: int = 0  # per rung, when the law is against parameters


@dataclass(frozen=True)
class ComputeWorth:
    """An alternative to the dense ladder (MoE, other data, distillation) in dense compute: the dense FLOPs the
    ladder's fit needs to reach its validation loss over the FLOPs it used, with the fit's bootstrap interval."""

    name: str
    kind: str
    params_active: float
    params_total: float
    multiplier: float
    low: float
    high: float
    extrapolated: bool
    matched: str | None = None
    wall_ratio: float | None = None
    heldout: float | None = None  # its held-out bits per byte, where the study measured it
    size_equivalent: tuple[float, float, float] | None = None  # dense params reaching that score (point, low, high)
    interval_note: str = ""  # why there is no interval (low and high are NaN)


@dataclass(frozen=True)
class LadderNotCompared:
    """Trained runs left out of the ladder's comparisons, and why (another validation set, too few rungs)."""

    models: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class LadderNDLaw:
    """A dense ladder at several sizes and token budgets: L(N, D) = E + A·N^-alpha + B·D^-beta (N total
    parameters), the compute-optimal (N, D) at its largest compute (C = 6·N·D), and the inference-aware
    model (Sardana et al. 2024) reaching the best rung's loss beside the Chinchilla-optimal one (NaN: none)."""

    n_points: int
    sizes: int
    budgets: int
    params_low: float
    params_high: float
    tokens_low: float
    tokens_high: float
    E: float
    alpha: float
    alpha_ci: tuple[float, float]
    beta: float
    beta_ci: tuple[float, float]
    top_compute: float
    top_n_opt: float
    top_d_opt: float
    best: str
    target_loss: float
    inference_tokens: float
    inference_assumed: bool
    chinchilla_params: float
    chinchilla_tokens: float
    chinchilla_flops: float
    optimal_params: float
    optimal_tokens: float
    optimal_flops: float
    note: str = ""
    extrapolated: tuple[str, ...] = ()  # which of these models lie outside the ladder's sizes or budgets


@dataclass(frozen=True)
class QuantisedVariant:
    """A quantised variant beside its float original, paired on the same items (analysis/quantised.py).

    kept: the variant's accuracy-like primary scores summed over the original's (None without such a task);
    losses: the tasks where it is significantly worse (delta = variant - original); the ratios are variant
    over original (tokens per second, peak memory above the process before loading, weights in memory)."""

    variant: str
    original: str
    kept: float | None
    n_tasks: int
    losses: tuple[Change, ...]
    speed_ratio: float
    memory_ratio: float
    weights_ratio: float = float("nan")


@dataclass(frozen=True)
class DoublingGain:
    """What a doubling of parameters bought between two rungs of one family, on one metric (lower is better)."""

    small: str
    large: str
    params_small: float
    params_large: float
    value_small: float
    value_large: float
    metric: str = "held-out bits per byte"
    unit: str = "bits per byte"
    # 95% interval on the gain per doubling (analysis.paired.bpb_difference_interval over the documents both
    # scored, divided by the doublings); NaN where there is none, n_items saying why (0: not computed)
    ci_low: float = math.nan
    ci_high: float = math.nan
    n_items: int = 0

    @property
    def doublings(self) -> float:
        return math.log2(self.params_large / self.params_small)

    @property
    def gain_per_doubling(self) -> float:
        return (self.value_small - self.value_large) / self.doublings


@dataclass(frozen=True)
class Placement:
    """A model outside a ladder (another family) against the ladder's law extrapolated to its size."""

    name: str
    params: float
    value: float
    predicted: float
    low: float
    high: float
    beyond: float  # its parameters / the largest rung's


@dataclass(frozen=True)
class ProbeTrend:
    """A probe's headline at the smallest and the largest rung that have it."""

    what: str
    unit: str
    small: str
    params_small: float
    value_small: float
    large: str
    params_large: float
    value_large: float


@dataclass(frozen=True)
class NotComputed:
    """A figure that could not be computed, and why."""

    what: str
    reason: str


Finding = (SizeStep | SignificantDifference | NoDominantModel | ReturnsFlatten | UnevenReturns | NegativeReturns
           | SameMeasurement | FramingWarning | VersionMismatch | MixedVersions | ConstraintBinds | Recommendation
           | LadderLaw | ComputeWorth | LadderNotCompared | QuantisedVariant | LadderNDLaw | DoublingGain | Placement
           | ProbeTrend | NotComputed)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


def finding_json(f: Finding) -> dict[str, Any]:
    """A JSON-ready dict of a finding, with its type name (NaN becomes None)."""
    return {"type": type(f).__name__, **_clean(asdict(f))}
