"""lm-eval's results dict as the store's rows: per-task metrics, per-document scores, each task's share of cost.

lm-eval names a metric `"acc,none"` (metric, filter): here it is `acc`, or `exact_match:strict-match` when
the filter is not `none`; its `"acc_stderr,none"` is that metric's stderr. A document is keyed by lm-eval's
`doc_hash`; its per-document numbers are those lm-eval logged in `samples`, one entry per metric and filter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

REQUEST_TYPE = {"multiple_choice": "loglikelihood", "loglikelihood": "loglikelihood",
                "loglikelihood_rolling": "loglikelihood_rolling", "generate_until": "generate_until"}


def metric_name(metric: str, filter_key: str) -> str:
    return metric if filter_key == "none" else f"{metric}:{filter_key}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool | int | float) and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    return None


def aggregates(task_results: dict[str, Any]) -> dict[str, tuple[float | None, float | None]]:
    """{our metric name: (value, stderr)} from one entry of lm-eval's `results` or `groups`."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for key, value in task_results.items():
        metric, comma, filter_key = key.partition(",")
        if not comma or metric.endswith("_stderr"):
            continue
        stderr = task_results.get(f"{metric}_stderr,{filter_key}")
        out[metric_name(metric, filter_key)] = (_number(value), _number(stderr))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def document_rows(samples: list[dict]) -> tuple[list[tuple[str, int, Any, Any]], list[dict]]:
    """(items rows (doc_hash, doc_id, request, result), item_scores rows) from one task's logged samples."""
    by_doc: dict[int, list[dict]] = {}
    for sample in samples:
        by_doc.setdefault(int(sample["doc_id"]), []).append(sample)
    items, scores = [], []
    for doc_id, entries in sorted(by_doc.items()):
        first = entries[0]
        values = {metric_name(m, e["filter"]): _jsonable(e.get(m)) for e in entries for m in e.get("metrics", [])}
        items.append((first["doc_hash"], doc_id, {"arguments": _jsonable(first["arguments"])},
                      {"resps": _jsonable(first["resps"]),
                       "filtered_resps": {e["filter"]: _jsonable(e["filtered_resps"]) for e in entries}}))
        primary = metric_name(first["metrics"][0], first["filter"]) if first.get("metrics") else None
        scores.append({"doc_id": doc_id, "pred": _jsonable(first["filtered_resps"]), "gold": _jsonable(first["target"]),
                       "correct": _number(values.get(primary)) if primary else None, "values": values})
    return items, scores


def request_keys(model_key: str, output_type: str, samples: list[dict]) -> dict[int, set[str]]:
    """The engine requests behind each document (the keys BeyondscaleLM caches them under)."""
    from beyondscale.engine.lm_eval_model import _Frozen, request_key

    request_type = REQUEST_TYPE.get(output_type, output_type)
    out: dict[int, set[str]] = {}
    for sample in samples:
        keys = out.setdefault(int(sample["doc_id"]), set())
        for args in sample["arguments"]:
            args = tuple(args)
            if request_type == "generate_until":
                args = (args[0], _Frozen(args[1]))
            keys.add(request_key(model_key, request_type, args))
    return out


def share(total: Any, fraction: float) -> Any:
    """`fraction` of a summed Measurement: times, tokens, energy and FLOPs scale; peaks stay (they are peaks)."""
    scaled = {f: getattr(total, f) * fraction for f in ("wall_s", "cpu_s")}
    scaled.update({f: round(getattr(total, f) * fraction) for f in ("tokens_in", "tokens_out")})
    for f in ("energy_j", "model_flops"):
        value = getattr(total, f)
        scaled[f] = None if value is None else value * fraction
    return replace(total, **scaled)


def computed_docs(per_doc: dict[int, set[str]], written: Iterable[str]) -> tuple[int, int]:
    """(documents with a request computed in this run, requests computed in this run) of one task."""
    written = set(written)
    docs = sum(1 for keys in per_doc.values() if keys & written)
    requests = len(set().union(*per_doc.values()) & written) if per_doc else 0
    return docs, requests


def cost_of(batches: list[tuple[Any, list[str]]], keys: set[str]) -> Any:
    """What the engine batches spent on `keys`: each batch's measurement times the share of its requests
    that are among `keys` (a batch of one task's requests goes to that task whole)."""
    parts = [share(m, sum(1 for k in batch if k in keys) / len(batch)) for m, batch in batches
             if batch and any(k in keys for k in batch)]
    return sum(parts[1:], parts[0])
