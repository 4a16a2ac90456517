"""Scoring a (model, task) unit from the store: metrics from stored results, efficiency from every
batch measured for it. Needs no model, so a finished study re-scores in seconds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from beyondscale.store import Store

Scorer = Callable[[list[Any]], tuple[dict, list[dict]]]  # engine results in item order -> (aggregates, rows)


def score_unit(store: Store, model_key: str, task_key: str, keys: Sequence[str], scorer: Scorer,
               *, facts: Any, costs: Any, peak: Any) -> tuple[dict, dict]:
    """Write the unit's one score set; return (aggregates {metric: (value, stderr)}, efficiency). `scorer`
    turns the stored engine results into metrics (lm-eval's, see evaluator.harness.lm_eval_scorer)."""
    from beyondscale.engine.requests import ItemResult

    stored = store.item_results(model_key, task_key, keys)
    aggregates, rows = scorer([ItemResult.from_json(stored[k]) for k in keys])
    efficiency = unit_efficiency(store, model_key, task_key, rows, len(keys), facts=facts, costs=costs, peak=peak)
    store.write_scores(model_key, task_key, aggregates, rows, efficiency)
    return aggregates, efficiency


def unit_efficiency(store: Store, model_key: str, task_key: str, rows: list[dict], n_items: int, *, facts: Any,
                    costs: Any, peak: Any) -> dict:
    """From every batch ever measured for the unit (a resumed run adds up its pieces); accuracy is
    scaled to that many items so $/correct stays a ratio of like with like."""
    from beyondscale import measure

    batches = store.measurement_rows(model_key, task_key)
    total = sum(measure.Measurement.from_dict(r) for r in batches) if batches else measure.Measurement()
    n_measured = sum(r["n_items"] for r in batches) or n_items
    corrects = [r.get("correct") for r in rows]
    n_correct = None
    if corrects and all(c is not None for c in corrects):
        n_correct = round(sum(float(c) for c in corrects) * n_measured / n_items)
    efficiency = measure.derive(total, flops_per_token=facts.flops_per_token, n_items=n_measured,
                                n_correct=n_correct, costs=costs, peak_flops=peak, facts=facts)
    if len({r["environment_key"] for r in batches}) > 1:
        efficiency["warning"] = "batches were measured on different machines; figures mix environments"
    return efficiency
