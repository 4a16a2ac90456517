"""One answer per request, whichever way a run was driven.

lm-eval's own loop (`evaluator.harness`) keeps the engine's answers per request in `lm_requests`; the unit path
(`evaluator.run`) keeps them per document in `items`. Each reads the other's: before units are planned, a
document whose every request is answered in `lm_requests` is written into `items` as it is (nothing computed),
and once a unit is scored its answers go into `lm_requests`. A task run one way and then the other computes
nothing twice.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from beyondscale.engine.lm_eval_model import request_key
from beyondscale.engine.requests import Item, ItemResult
from beyondscale.keys import content_key
from beyondscale.store.requests import RequestCache, put_items
from beyondscale.tasks.lm_eval_items import PlannedTask, answers_of


def _result_from(item: Item, answers: list[Any]) -> ItemResult:
    """The engine's result for `item` rebuilt from its requests' stored answers (in request order)."""
    if item.output_type == "multiple_choice":
        return ItemResult(item.doc_id, logprobs=[float(a[0]) for a in answers],
                          is_greedy=[bool(a[1]) for a in answers])
    if item.output_type == "loglikelihood_rolling":
        return ItemResult(item.doc_id, logprobs=[float(answers[0])])
    return ItemResult(item.doc_id, generation=str(answers[0]))


def fill_from_request_cache(db: Any, model_key: str, task_key: str, planned: PlannedTask,
                            item_keys: tuple[str, ...]) -> int:
    """Write into `items` each missing document whose every request `lm_requests` answers; how many."""
    stored = db.item_results(model_key, task_key, item_keys)
    missing = [(item, key) for item, key in zip(planned.items or (), item_keys, strict=True) if key not in stored]
    if not missing:
        return 0
    keys_of = {key: [request_key(model_key, r.request_type, r.args) for r in planned.requests[item.doc_id]]
               for item, key in missing}
    found = RequestCache(db, model_key).get_many(sorted({k for keys in keys_of.values() for k in keys}))
    rows = [(key, item.doc_id, asdict(item), _result_from(item, [found[k] for k in keys_of[key]]).to_json())
            for item, key in missing if all(k in found for k in keys_of[key])]
    if rows:
        put_items(db, model_key, task_key, rows, content_key(["lm_requests", model_key, task_key]))
    return len(rows)


def share_answers(db: Any, model_key: str, planned: PlannedTask, results: list[ItemResult], run_id: str) -> None:
    """The unit's answers, per request, into `lm_requests` (already stored ones are left as they are)."""
    pairs = [(request_key(model_key, r.request_type, r.args), answer)
             for item, result in zip(planned.items or (), results, strict=True)
             for r, answer in zip(planned.requests[item.doc_id], answers_of(item, result), strict=True)]
    RequestCache(db, model_key, run_id).put_many(pairs)
