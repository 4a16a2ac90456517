"""`--budget-minutes N`: the split of N minutes from a planted cost model (no timing), its wording, bad N.

The planned seconds are recomputed here from the plan by hand (steps x step costs, items x item costs), not
read back from the planner; the power target is checked against a Monte Carlo of the paired t test.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from beyondscale.errors import UserError
from beyondscale.quickstart.budget import (
    BudgetSplit,
    Costs,
    allocate,
    fill_tokens,
    items_for_power,
    split_line,
)
from beyondscale.quickstart.plan import DEFAULT_TOKENS, plan_for

TASKS = ("heldout_source_bpb", "qs_bpb", "qs_nextsent", "qs_pattern")
COSTS = Costs(step_s=(0.01, 0.015, 0.03, 0.06, 0.12, 0.25), moe_step_s=0.04,
              real_item_s={"heldout_source_bpb": 1.2, "qs_bpb": 1.0, "qs_nextsent": 2.0, "qs_pattern": 0.6},
              trained_item_s=dict.fromkeys(TASKS, 0.01), fixed_measured_s=30.0, fixed_estimate_s=40.0,
              pool_s_per_mb=8.0, validation_share=0.1)


def by_hand(plan, costs: Costs = COSTS) -> float:
    """Seconds the plan costs at the planted rates, summed part by part."""
    steps = plan.tokens / (8 * 128)
    dense = sum(costs.step_s[i] for i in range(len(plan.shapes)))
    train = steps * (dense + costs.moe_step_s + costs.step_s[1]) * 1.1
    items = {"heldout_source_bpb": plan.heldout_docs, **plan.qs_sizes}
    models = len(plan.shapes) + 2
    evaluate = sum(n * (costs.real_item_s[t] + models * 0.01) for t, n in items.items())
    return train + evaluate + 70.0 + 8.0 * plan.pool_bytes / 1e6


@pytest.mark.parametrize("minutes", [10, 12, 20, 30, 60])
def test_the_plan_spends_its_budget_within_15_percent(minutes: int) -> None:
    plan, split = allocate(plan_for(minutes), COSTS)
    assert abs(by_hand(plan) - minutes * 60) <= 0.15 * minutes * 60
    assert split.planned_s == pytest.approx(by_hand(plan), rel=1e-9)


@pytest.mark.parametrize("minutes", [10, 12, 20, 30, 60])
def test_rungs_first_then_items_then_tokens(minutes: int) -> None:
    base = plan_for(minutes)
    plan, split = allocate(base, COSTS)
    items = [plan.heldout_docs, *plan.qs_sizes.values()]
    if plan.tokens > DEFAULT_TOKENS:  # tokens only once the rungs and the items are at their targets
        assert len(plan.shapes) == 6 and min(items) >= items_for_power()
        assert plan.pool_bytes > base.pool_bytes
    if min(items) > min(base.heldout_docs, *base.qs_sizes.values()):  # items only once the rungs are in
        assert len(plan.shapes) == 6
    assert [s.d_model for s in plan.shapes[:4]] == [s.d_model for s in base.shapes]  # appended, never replaced
    assert list(split.steps) == [s for s in ("rungs", "items", "tokens") if s in split.steps]


def test_ten_minutes_buys_rungs_and_items_and_sixty_buys_tokens() -> None:
    ten, split10 = allocate(plan_for(10), COSTS)
    sixty, split60 = allocate(plan_for(60), COSTS)
    assert len(ten.shapes) == 6 and split10.steps[0] == "rungs"
    assert split60.steps == ("rungs", "items", "tokens") and sixty.tokens > 4 * DEFAULT_TOKENS


@pytest.mark.parametrize(("minutes", "elapsed"), [(12, 200.0), (12, 400.0), (30, 500.0)])
def test_after_the_real_models_the_tokens_take_what_the_clock_leaves(minutes: int, elapsed: float) -> None:
    plan, split = allocate(plan_for(minutes), COSTS)
    real_eval = 0.4 * elapsed  # measured: cheaper than the calibration's per-item upper bound
    final, after = fill_tokens(plan, plan_for(minutes), split, COSTS, elapsed_s=elapsed, real_eval_s=real_eval)
    assert final.shapes == plan.shapes and final.qs_sizes == plan.qs_sizes  # rungs and items stay as planned
    steps = final.tokens / 1024
    train = steps * (sum(COSTS.step_s[:len(final.shapes)]) + COSTS.moe_step_s + COSTS.step_s[1]) * 1.1
    items = {"heldout_source_bpb": final.heldout_docs, **final.qs_sizes}
    rest = sum(n * (len(final.shapes) + 2) * 0.01 for n in items.values()) + 40 + 8 * final.pool_bytes / 1e6
    assert elapsed + train + rest == pytest.approx(minutes * 60, abs=train / steps + 1)  # within one step
    assert after.planned_s == pytest.approx(elapsed + train + rest, rel=1e-9)
    assert after.evaluation_s >= real_eval and final.tokens >= DEFAULT_TOKENS


def test_an_expensive_rung_is_skipped_for_items() -> None:
    dear = Costs(**{**COSTS.__dict__, "step_s": (0.01, 0.015, 0.03, 0.06, 50.0, 90.0)})
    plan, split = allocate(plan_for(12), dear)
    assert len(plan.shapes) == 4 and split.steps[0] == "items"
    assert abs(by_hand(plan, dear) - 720) <= 0.15 * 720


def test_a_budget_the_smallest_study_exceeds_keeps_the_default_and_says_so() -> None:
    slow = Costs(**{**COSTS.__dict__, "fixed_measured_s": 900.0})
    plan, split = allocate(plan_for(10), slow)
    assert len(plan.shapes) == 4 and plan.tokens == DEFAULT_TOKENS
    assert split.steps[0].startswith("none") and split.planned_s > 600


def test_items_for_power_matches_a_monte_carlo_of_the_paired_t_test() -> None:
    n = items_for_power()
    rng = np.random.default_rng(7)

    def power(k: int) -> float:
        d = rng.normal(0.5, 1.0, size=(20_000, k))
        return float((stats.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05).mean())

    assert power(n) >= 0.79 and power(n - 3) < 0.79  # n items reach 80%, three fewer do not
    assert n == 34


def test_split_line_wording() -> None:
    split = BudgetSplit(30, training_s=852, evaluation_s=546, fixed_measured_s=66, fixed_estimate_s=246, rungs=6,
                        tokens=393_216, items=dict.fromkeys(TASKS, 34) | {"qs_nextsent": 40})
    assert split_line(split) == ("budget 30 min: planned 28.5 (training 14.2 for 6 rungs × 393k tokens, evaluation "
                                 "9.1 for 34-40 items/task, fixed 5.2: 1.1 measured, 4.1 estimate)")
    assert split_line(split, spent_s=1746).endswith("estimate); spent 29.1")


@pytest.mark.parametrize("bad", [5, 0, -3, float("nan")])
def test_a_budget_below_the_floor_is_refused_naming_the_flag(bad: float) -> None:
    with pytest.raises(UserError, match=r"^--budget-minutes .*must be at least 10"):
        plan_for(bad)


def test_the_ladder_folder_is_named_by_what_training_depends_on_except_the_rungs() -> None:
    from dataclasses import replace

    from beyondscale.quickstart.study import ladder_key, ladder_preset

    four = plan_for(12)
    six, _ = allocate(replace(four, tokens=four.tokens), Costs(**{**COSTS.__dict__, "pool_s_per_mb": 0.0}))
    base = ladder_key(ladder_preset(four), "raw", "kept")
    assert ladder_key(ladder_preset(replace(six, tokens=four.tokens)), "raw", "kept") == base  # more rungs: reused
    assert ladder_key(ladder_preset(replace(four, tokens=2 * four.tokens)), "raw", "kept") != base  # retrained
    assert ladder_key(ladder_preset(four), "other raw", "kept") != base
    assert ladder_key(ladder_preset(four), "raw", "other kept") != base


def test_a_grown_plan_reads_back_as_it_was_written(tmp_path) -> None:
    from beyondscale.quickstart.budget import load_plan, save_plan

    plan, split = allocate(plan_for(30), COSTS)
    plan.split = split
    save_plan(tmp_path / "p.json", plan)
    back = load_plan(tmp_path / "p.json")
    assert back == plan and back.split.steps == split.steps and split_line(back.split) == split_line(split)
    (tmp_path / "bad.json").write_text("{not json")
    assert load_plan(tmp_path / "bad.json") is None and load_plan(tmp_path / "none.json") is None
