"""`--budget-minutes N`: spend the N minutes where they buy the most power, from costs measured on this machine.

The rule, in order (each step only as far as the minutes left allow):

1. **Rungs, up to 6.** With 4 sizes the 3-parameter law's intervals are open-ended (no interval is printed);
   a 5th rung bounds them in most planted draws (open in 64% at 4 sizes, 9% at 5: bench/fit_coverage.py), a
   6th narrows them further. Nothing else the budget buys makes an interval printable.
2. **Items, up to what the paired tests need.** Every task gets the items a paired test needs to detect a
   difference of half a standard deviation of the per-item differences (Cohen's "medium" effect) with 80%
   power at the 5% level (`items_for_power`, the noncentral t: 34 items); below that only large differences
   can be told apart.
3. **Tokens with the rest.** More tokens per rung lower every rung's loss and narrow nothing by themselves,
   so they take what is left (whole steps; the training pool grows with them, as in the default plan).

The study evaluates the real models first (they need no training), then `fill_tokens` gives the tokens what
the measured clock leaves: the calibration prices items worst (a few items carry each pair's fixed overhead,
so it overstates them), and this second look spends what that overstatement would leave unspent.

Costs are a `Costs` value: seconds measured by `calibrate.measure_costs` at the start of the run (or planted
by a test). `allocate` is pure arithmetic on it, so the split can be checked without timing anything.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scipy import stats

from beyondscale.lab.configs import Shape
from beyondscale.quickstart.plan import BYTES_PER_TOKEN, CONTEXT, EXTRA_RUNGS, StudyPlan

__all__ = ["MAX_RUNGS", "BudgetSplit", "Costs", "allocate", "fill_tokens", "items_for_power", "load_plan", "save_plan",
           "split_line"]

MAX_RUNGS = 6
TARGET_EFFECT, TARGET_POWER, ALPHA = 0.5, 0.8, 0.05
PRIMARY_TASK = "heldout_source_bpb"


def items_for_power(effect: float = TARGET_EFFECT, power: float = TARGET_POWER, alpha: float = ALPHA) -> int:
    """Smallest n at which a two-sided paired t test at `alpha` detects a standardised mean difference `effect`
    with probability `power` (noncentral t; the sign-flip test's power is close to the t test's)."""
    n = 3
    while True:
        df, crit = n - 1, stats.t.ppf(1 - alpha / 2, n - 1)
        nc = effect * math.sqrt(n)
        if stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc) >= power:
            return n
        n += 1


@dataclass(frozen=True)
class Costs:
    """Seconds on this machine, each measured (or planted by a test) unless its name says estimate."""

    step_s: tuple[float, ...]  # one training step (batch x context tokens) of each candidate dense rung, in order
    moe_step_s: float  # one step of the MoE at the variant rung (the curated arm costs its dense rung's step)
    real_item_s: dict[str, float]  # task -> seconds per item, summed over the real models
    trained_item_s: dict[str, float]  # task -> seconds per item for one trained model
    fixed_measured_s: float  # already spent (start-up, calibration) and the real models' loading
    fixed_estimate_s: float  # stages not timed ahead (probes, analysis, report): an estimate
    pool_s_per_mb: float = 0.0  # corpus, curation and tokenizer per MB of training pool: an estimate
    validation_share: float = 0.11  # validation passes as a share of training time: an estimate (calibrate.py)
    real_eval_s: float = 0.0  # the real models' evaluation once it has run (measured; real_item_s then empty)


@dataclass(frozen=True)
class BudgetSplit:
    """How the minutes were split: the plan's parts in seconds, and the rule's steps that were taken."""

    minutes: float
    training_s: float
    evaluation_s: float
    fixed_measured_s: float
    fixed_estimate_s: float
    rungs: int
    tokens: int
    items: dict[str, int] = field(default_factory=dict)
    steps: tuple[str, ...] = ()  # which of the rule's steps got minutes, in order
    reused: bool = False  # the plan of an earlier run of the same command (what it trained is read back)

    @property
    def planned_s(self) -> float:
        return self.training_s + self.evaluation_s + self.fixed_measured_s + self.fixed_estimate_s


def _training_s(plan: StudyPlan, costs: Costs) -> float:
    steps = plan.tokens // (plan.batch_size * CONTEXT)
    per_step = sum(costs.step_s[:len(plan.shapes)]) + costs.moe_step_s + costs.step_s[plan.variant_rung]
    return steps * per_step * (1 + costs.validation_share)


def _items(plan: StudyPlan) -> dict[str, int]:
    return {PRIMARY_TASK: plan.heldout_docs, **plan.qs_sizes}


def _evaluation_s(plan: StudyPlan, costs: Costs) -> float:
    trained = len(plan.shapes) + 2  # the dense rungs, the MoE and the curated arm
    return costs.real_eval_s + sum(n * (costs.real_item_s.get(task, 0.0) + trained * costs.trained_item_s.get(task, 0.0))
                                   for task, n in _items(plan).items())


def _split(plan: StudyPlan, costs: Costs, steps: tuple[str, ...]) -> BudgetSplit:
    estimate = costs.fixed_estimate_s + plan.pool_bytes / 1e6 * costs.pool_s_per_mb
    return BudgetSplit(plan.budget_minutes, _training_s(plan, costs), _evaluation_s(plan, costs),
                       costs.fixed_measured_s, estimate, len(plan.shapes), plan.tokens, _items(plan), steps)


def _fits(plan: StudyPlan, costs: Costs) -> bool:
    return _split(plan, costs, ()).planned_s <= plan.budget_minutes * 60


def _with_items(plan: StudyPlan, floor: int) -> StudyPlan:
    return replace(plan, heldout_docs=max(plan.heldout_docs, floor),
                   qs_sizes={task: max(n, floor) for task, n in plan.qs_sizes.items()})


def _with_tokens(plan: StudyPlan, steps: int) -> StudyPlan:
    tokens = steps * plan.batch_size * CONTEXT
    return replace(plan, tokens=tokens, pool_bytes=max(plan.pool_bytes, int(tokens * BYTES_PER_TOKEN)))


def _largest(lo: int, hi: int, ok: object) -> int:
    """The largest n in [lo, hi] with ok(n), given ok(lo) and ok monotone (bisection)."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)  # type: ignore[operator]
    return lo


def allocate(plan: StudyPlan, costs: Costs) -> tuple[StudyPlan, BudgetSplit]:
    """The plan grown from `plan` (the default study, the floor) by the rule above, within its budget_minutes."""
    if not _fits(plan, costs):
        return plan, _split(plan, costs, ("none: the smallest study alone exceeds the budget",))
    taken: list[str] = []
    floor = len(plan.shapes)
    extra = [Shape(d_model=d, n_layer=n, n_head=h, context_length=CONTEXT) for d, n, h in EXTRA_RUNGS]
    while len(plan.shapes) < min(MAX_RUNGS, len(costs.step_s)) and extra:
        grown = replace(plan, shapes=[*plan.shapes, extra.pop(0)])
        if not _fits(grown, costs):
            break
        plan = grown
    taken += ["rungs"] if len(plan.shapes) > floor else []
    target = items_for_power()
    top = _largest(0, target, lambda n: _fits(_with_items(plan, n), costs))
    if min(_items(_with_items(plan, top)).values()) > min(_items(plan).values()):
        plan = _with_items(plan, top)
        taken.append("items")
    if top >= target:
        plan, grew = _grow_tokens(plan, costs)
        taken += ["tokens"] if grew else []
    return plan, _split(plan, costs, tuple(taken))


def _grow_tokens(plan: StudyPlan, costs: Costs) -> tuple[StudyPlan, bool]:
    """The most whole steps per rung that fit the budget (never fewer than the plan has)."""
    first = plan.tokens // (plan.batch_size * CONTEXT)
    steps = _largest(first, max(first, 10**7), lambda s: _fits(_with_tokens(plan, s), costs))
    return (_with_tokens(plan, steps), True) if steps > first else (plan, False)


def fill_tokens(plan: StudyPlan, floor: StudyPlan, split: BudgetSplit, costs: Costs, elapsed_s: float,
                real_eval_s: float) -> tuple[StudyPlan, BudgetSplit]:
    """After the real models' evaluation (the part the calibration prices worst: a few items carry each task's
    overhead): the tokens take what the measured clock leaves, from `floor`'s (the plan before `allocate`)."""
    measured = replace(costs, real_item_s={}, real_eval_s=real_eval_s, fixed_measured_s=elapsed_s - real_eval_s)
    start = replace(plan, tokens=floor.tokens, pool_bytes=floor.pool_bytes)
    grown, grew = _grow_tokens(start, measured)
    steps = tuple(s for s in split.steps if s != "tokens") + (("tokens",) if grew else ())
    return grown, _split(grown, measured, steps)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def _tokens(n: int) -> str:
    return f"{n / 1e6:.3g}M" if n >= 1e6 else f"{n / 1e3:.3g}k"


def split_line(split: BudgetSplit, spent_s: float | None = None) -> str:
    """'budget 30 min: planned 28.5 (training 14.2 for 6 rungs x 393k tokens, evaluation 9.1 for 34 items/task,
    fixed 5.2: 1.1 measured, 4.1 estimate); spent 29.1' (minutes; spent left out until it is known)."""
    low, high = min(split.items.values()), max(split.items.values())
    items = f"{low}" if low == high else f"{low}-{high}"
    fixed = split.fixed_measured_s + split.fixed_estimate_s
    text = (f"budget {split.minutes:g} min: planned {_minutes(split.planned_s)} (training {_minutes(split.training_s)} "
            f"for {split.rungs} rungs × {_tokens(split.tokens)} tokens, evaluation {_minutes(split.evaluation_s)} "
            f"for {items} items/task, fixed {_minutes(fixed)}: {_minutes(split.fixed_measured_s)} measured, "
            f"{_minutes(split.fixed_estimate_s)} estimate)")
    if split.reused:
        text += ", an earlier run's plan reused"
    if spent_s is not None:
        text += f"; spent {_minutes(spent_s)}"
    return text


def save_plan(path: Path, plan: StudyPlan) -> None:
    """The grown plan and its split, so the same command run again reuses it (and so every trained model)
    instead of measuring again: a new measurement on a shared machine would give other tokens, and retrain all."""
    doc = {k: v for k, v in dataclasses.asdict(plan).items() if k != "split"}
    doc["split"] = dataclasses.asdict(plan.split) if plan.split is not None else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")


def load_plan(path: Path) -> StudyPlan | None:
    """A plan `save_plan` wrote; None when there is none (or it no longer reads as one)."""
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        split = doc.pop("split")
        shapes = [Shape(**s) for s in doc.pop("shapes")]
        split = BudgetSplit(**{**split, "steps": tuple(split["steps"])}) if split else None
        return StudyPlan(**doc, shapes=shapes, split=split)
    except (OSError, ValueError, TypeError, KeyError):
        return None
