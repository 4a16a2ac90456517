"""lm-eval's results dict as the store's rows: per-task metrics, per-document scores, each task's share of cost.

lm-eval names a metric `"acc,none"` (metric, filter): here it is `acc`, or `exact_match,strict-match` (lm-eval's
own key) when the filter is not `none`; its `"acc_stderr,none"` is that metric's stderr. A document is keyed by lm-eval's
`doc_hash`; its per-document numbers are those lm-eval logged in `samples`, one entry per metric and filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from beyondscale.metrics.lm_eval_values import (
    ROLLING_COUNTS,
    aggregates,
    document_values,
    metric_name,
    rolling_aggregate,
)
from beyondscale.metrics.lm_eval_values import number as _number

__all__ = ["aggregates", "calibration", "computed_docs", "cost_of", "document_rows", "request_keys", "share",
           "with_additions"]

REQUEST_TYPE = {"multiple_choice": "loglikelihood", "loglikelihood": "loglikelihood",
                "loglikelihood_rolling": "loglikelihood_rolling", "generate_until": "generate_until"}


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
        values = {k: v for e in entries for m in e.get("metrics", []) for k, v in
                  document_values(m, e["filter"], e.get(m)).items()}
        items.append((first["doc_hash"], doc_id, {"arguments": _jsonable(first["arguments"])},
                      {"resps": _jsonable(first["resps"]),
                       "filtered_resps": {e["filter"]: _jsonable(e["filtered_resps"]) for e in entries}}))
        primary = metric_name(first["metrics"][0], first["filter"]) if first.get("metrics") else None
        scores.append({"doc_id": doc_id, "pred": prediction(first["filtered_resps"]), "gold": _jsonable(first["target"]),
                       "correct": _number(values.get(primary)) if primary else None, "values": values})
    return items, scores


def prediction(filtered_resps: Any) -> Any:
    """The model's answer as the items export writes it: the chosen index of a multiple-choice document (its
    highest log-likelihood, as lm-eval's `acc`), greedy or not for a single continuation, the generated text,
    None for a rolling document."""
    resps = list(filtered_resps) if isinstance(filtered_resps, list | tuple) else [filtered_resps]
    if resps and all(isinstance(r, list | tuple) and len(r) == 2 for r in resps):
        if len(resps) == 1:
            return bool(resps[0][1])
        lls = [float(r[0]) for r in resps]
        return max(range(len(lls)), key=lls.__getitem__)
    if len(resps) == 1 and isinstance(resps[0], str):
        return resps[0]
    return None


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


def with_additions(aggregates: dict[str, tuple], score_rows: list[dict], seed: int) -> dict[str, tuple]:
    """lm-eval's aggregates plus what beyondscale adds: the ECE of a task with Brier pairs, and a bootstrap
    standard error (over documents, seeded) for a rolling task's perplexities and bits per byte, which
    lm-eval leaves without one."""
    from beyondscale.metrics.stats import bootstrap_stderr

    out = {**aggregates, **calibration(score_rows)}
    for metric, count in ROLLING_COUNTS.items():
        if metric not in out or out[metric][1] is not None:
            continue
        pairs = [(r["values"].get("logprob"), r["values"].get(count)) for r in score_rows]
        if pairs and all(ll is not None and n for ll, n in pairs):
            lls, counts = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
            stderr = bootstrap_stderr(lambda ll, n, m=metric: rolling_aggregate(m, ll.sum(), n.sum()), lls, counts,
                                      seed=seed)
            out[metric] = (out[metric][0], stderr)
    return out


def calibration(score_rows: list[dict]) -> dict[str, tuple[float | None, None]]:
    """{"ece": (HELM's ece_10_bin, None)} from each document's `confidence` (its predicted choice's probability,
    from lm-eval's `brier_score` pair) and `acc`: the calibration beyondscale adds where a task asks for Brier
    scores."""
    from beyondscale.metrics.calibration import expected_calibration_error

    pairs = [(r["values"].get("confidence"), r["values"].get("acc")) for r in score_rows]
    if not pairs or any(c is None or a is None for c, a in pairs):
        return {}
    return {"ece": (expected_calibration_error([c for c, _ in pairs], [a for _, a in pairs]), None)}
