"""Scoring a (model, task) unit from the store: metrics from stored results, efficiency from every
batch measured for it. Needs no model, so a finished study re-scores in seconds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from beyondscale.store import Store


def score_unit(store: Store, model_key: str, task_key: str, spec: Any, items: Sequence[Any], keys: Sequence[str],
               *, facts: Any, costs: Any, peak: Any, seed: int) -> tuple[dict, dict]:
    """Write the unit's one score set; return (aggregates {metric: (value, stderr)}, efficiency)."""
    from beyondscale.engine.requests import ItemResult
    from beyondscale.metrics import score

    stored = store.item_results(model_key, task_key, keys)
    results = [ItemResult.from_json(stored[k]) for k in keys]
    metric_names = spec.metric_names()
    scores = score(spec.output_type, metric_names, list(items), results,
                   metric_kwargs={m: spec.metric_kwargs(m) for m in metric_names}, seed=seed)
    efficiency = _efficiency(store, model_key, task_key, scores.rows, len(items), facts=facts, costs=costs,
                             peak=peak)
    store.write_scores(model_key, task_key, scores.aggregates, scores.rows, efficiency)
    return scores.aggregates, efficiency


def _efficiency(store: Store, model_key: str, task_key: str, rows: list[dict], n_items: int, *, facts: Any,
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
