"""Turn (Item, ItemResult) pairs into per-item values and task-level scores with stderrs.

Definitions follow lm-evaluation-harness (`lm_eval/api/task.py::ConfigurableTask.process_results`
and `lm_eval/api/metrics.py`, v0.4.x) so our numbers can be checked against it item by item;
ECE follows HELM (`ece_10_bin`, see `calibration.py`). Where neither defines something (multiple
gold indices for Brier, `p_gold`, `confidence`) the choice is documented on the function.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from beyondscale.errors import UserError
from beyondscale.metrics.calibration import expected_calibration_error
from beyondscale.metrics.stats import bootstrap_stderr, mean_stderr
from beyondscale.metrics.text import EXACT_MATCH_OPTIONS, exact_match

if TYPE_CHECKING:  # keep metrics importable without the engine's heavy dependencies
    from beyondscale.engine.requests import Item, ItemResult

#: Metrics `score` accepts per output type (first ones are the usual defaults).
METRICS: dict[str, tuple[str, ...]] = {
    "multiple_choice": (
        "acc",
        "acc_norm",
        "acc_bytes",
        "brier_score",
        "ece",
        "exact_match",
        "confidence",
        "p_gold",
    ),
    "loglikelihood": ("acc", "perplexity"),
    "loglikelihood_rolling": ("word_perplexity", "byte_perplexity", "bits_per_byte"),
    "generate_until": ("exact_match",),
}

#: Direction of each metric, for reports and rankings.
HIGHER_IS_BETTER: dict[str, bool] = {
    "acc": True,
    "acc_norm": True,
    "acc_bytes": True,
    "exact_match": True,
    "brier_score": False,
    "ece": False,
    "confidence": True,
    "p_gold": True,
    "perplexity": False,
    "word_perplexity": False,
    "byte_perplexity": False,
    "bits_per_byte": False,
}

# kwargs each metric accepts through `metric_kwargs`, per output type.
_KWARGS: dict[tuple[str, str], tuple[str, ...]] = {
    ("generate_until", "exact_match"): EXACT_MATCH_OPTIONS,
    ("multiple_choice", "ece"): ("n_bins",),
}

_CORPUS_METRICS = frozenset({"ece", "perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte"})


@dataclass
class Scores:
    """A task's scores: `aggregates[metric] = (value, stderr or None)` and one row per item.

    Each row is `{"doc_id", "pred", "gold", "correct", "values": {name: float}}`; `values` carries
    every per-item number the output type has (not only the requested metrics), so paired
    analyses can use them later without re-scoring.
    """

    aggregates: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)

    @property
    def n_items(self) -> int:
        """Number of items scored."""
        return len(self.rows)


def count_words(text: str) -> int:
    """lm-eval's `Task.count_words`: pieces of `re.split(r"\\s+", text)` (empty edges count)."""
    return len(re.split(r"\s+", text))


def count_bytes(text: str) -> int:
    """lm-eval's `Task.count_bytes`: UTF-8 length."""
    return len(text.encode("utf-8"))


def softmax(logprobs: Sequence[float] | np.ndarray) -> np.ndarray:
    """lm-eval's `utils.softmax`: exp(x - max x) / sum, i.e. choice logprobs renormalised."""
    x = np.asarray(logprobs, dtype=float)
    e = np.exp(x - np.max(x))
    return e / e.sum()


def _validate(
    output_type: str, metric_names: Sequence[str], metric_kwargs: Mapping[str, dict] | None
) -> list[str]:
    if output_type not in METRICS:
        raise UserError(f"unknown output_type {output_type!r}; expected one of: {', '.join(METRICS)}")
    allowed = METRICS[output_type]
    names: list[str] = []
    for name in metric_names:
        if name not in allowed:
            raise UserError(
                f"metric {name!r} is not available for {output_type} tasks; allowed: {', '.join(allowed)}"
            )
        if name not in names:
            names.append(name)
    for name, kwargs in (metric_kwargs or {}).items():
        if name not in allowed:
            raise UserError(
                f"metric_kwargs given for {name!r}, which is not a {output_type} metric; allowed: {', '.join(allowed)}"
            )
        accepted = _KWARGS.get((output_type, name), ())
        bad = sorted(set(kwargs or {}) - set(accepted))
        if bad:
            hint = ", ".join(accepted) if accepted else "none"
            raise UserError(
                f"metric {name!r} ({output_type}) does not accept {', '.join(bad)}; accepted: {hint}"
            )
    return names


def _pair(items: Sequence[Item], results: Sequence[ItemResult]) -> list[tuple[Item, ItemResult]]:
    by_id: dict[int, ItemResult] = {}
    for r in results:
        if r.doc_id in by_id:
            raise ValueError(f"two results for doc_id {r.doc_id}")
        by_id[r.doc_id] = r
    missing = [it.doc_id for it in items if it.doc_id not in by_id]
    if missing:
        raise ValueError(f"no result for doc_id(s) {missing[:10]}")
    if len(by_id) != len(items):
        extra = sorted(set(by_id) - {it.doc_id for it in items})
        raise ValueError(f"results for doc_id(s) not among the items: {extra[:10]}")
    return [(it, by_id[it.doc_id]) for it in items]


def _gold_indices(item: Item, choices: Sequence[str]) -> tuple[int, ...]:
    gold = item.gold
    golds = gold if isinstance(gold, tuple | list) else (gold,)
    out: list[int] = []
    for g in golds:
        if isinstance(g, str):
            # lm-eval maps a string target to its position among the choices.
            if g not in choices:
                raise UserError(f"doc {item.doc_id}: gold {g!r} is not one of the choices")
            out.append(list(choices).index(g))
        elif isinstance(g, int | np.integer) and not isinstance(g, bool) and 0 <= int(g) < len(choices):
            out.append(int(g))
        else:
            raise UserError(f"doc {item.doc_id}: gold {g!r} is not a valid index into {len(choices)} choices")
    if not out:
        raise UserError(f"doc {item.doc_id}: multiple_choice item has no gold answer")
    return tuple(out)


def _multiple_choice_row(item: Item, res: ItemResult) -> dict:
    """Per-item values for multiple_choice, as lm-eval's process_results computes them.

    pred = argmax(lls); acc_norm = argmax(lls / len(choice) in characters); acc_bytes = argmax(lls /
    len(choice.encode("utf-8"))); brier = sum_j (softmax(lls)_j - onehot(gold)_j)^2. A tuple gold is
    right when the prediction is any of its indices (lm-eval's multiple_target); for Brier we then
    take the closest acceptable one-hot target (min over gold indices; lm-eval has no definition).
    confidence = softmax probability of the predicted choice (HELM's max_prob); p_gold = softmax
    probability summed over the gold indices. exact_match = the gold continuation (any, for a
    tuple) was the greedy decode (lm-eval's multiple_choice exact_match), when is_greedy is known.
    """
    choices = item.choices or (item.contexts if item.contexts else item.continuations)
    lls = np.asarray(res.logprobs, dtype=float)
    if lls.shape != (len(choices),):
        raise ValueError(f"doc {item.doc_id}: {len(res.logprobs)} logprobs for {len(choices)} choices")
    gold = _gold_indices(item, choices)
    completion_len = np.array([float(len(c)) for c in choices])
    byte_len = np.array([float(len(c.encode("utf-8"))) for c in choices])
    with np.errstate(divide="ignore", invalid="ignore"):
        pred = int(np.argmax(lls))
        pred_norm = int(np.argmax(lls / completion_len))
        pred_bytes = int(np.argmax(lls / byte_len))
    probs = softmax(lls)
    eye = np.eye(len(choices))
    brier = min(float(np.sum((probs - eye[g]) ** 2)) for g in gold)
    values = {
        "acc": 1.0 if pred in gold else 0.0,
        "acc_norm": 1.0 if pred_norm in gold else 0.0,
        "acc_bytes": 1.0 if pred_bytes in gold else 0.0,
        "brier": brier,
        "brier_score": brier,
        "confidence": float(probs[pred]),
        "p_gold": float(sum(probs[g] for g in set(gold))),
    }
    if len(res.is_greedy) == len(choices):
        values["exact_match"] = 1.0 if any(res.is_greedy[g] for g in gold) else 0.0
    return {"doc_id": item.doc_id, "pred": pred, "gold": item.gold, "correct": pred in gold, "values": values}


def _loglikelihood_row(item: Item, res: ItemResult) -> dict:
    """lm-eval loglikelihood: perplexity over the continuation's ll, acc = is_greedy."""
    if len(res.logprobs) != 1:
        raise ValueError(f"doc {item.doc_id}: loglikelihood expects one logprob, got {len(res.logprobs)}")
    ll = float(res.logprobs[0])
    values = {"logprob": ll, "tokens": float(sum(res.n_tokens))}
    correct = None
    if res.is_greedy:
        correct = bool(res.is_greedy[0])
        values["acc"] = 1.0 if correct else 0.0
    return {"doc_id": item.doc_id, "pred": correct, "gold": item.gold, "correct": correct, "values": values}


def _rolling_row(item: Item, res: ItemResult) -> dict:
    """lm-eval loglikelihood_rolling: the document's total ll with its word and byte counts."""
    values = {
        "logprob": float(sum(res.logprobs)),
        "words": float(count_words(item.count_text or item.text)),
        "bytes": float(count_bytes(item.count_text or item.text)),
        "tokens": float(sum(res.n_tokens)),
    }
    return {"doc_id": item.doc_id, "pred": None, "gold": None, "correct": None, "values": values}


def _generate_row(item: Item, res: ItemResult, em_kwargs: dict) -> dict:
    """lm-eval generate_until exact_match; a non-string gold is cast to str as lm-eval does."""
    if item.gold is None:
        raise UserError(f"doc {item.doc_id}: generate_until item has no reference answer")
    gold = item.gold
    refs = [str(g) for g in gold] if isinstance(gold, tuple | list) else [str(gold)]
    pred = res.generation or ""
    em = exact_match(pred, refs, **em_kwargs)
    return {
        "doc_id": item.doc_id,
        "pred": pred,
        "gold": item.gold,
        "correct": em == 1.0,
        "values": {"exact_match": em},
    }


def _column(rows: list[dict], key: str) -> np.ndarray:
    vals = [r["values"].get(key) for r in rows]
    if any(v is None for v in vals):
        missing = [r["doc_id"] for r, v in zip(rows, vals, strict=True) if v is None][:5]
        raise ValueError(f"no {key!r} value for doc_id(s) {missing} (engine returned no is_greedy?)")
    return np.asarray(vals, dtype=float)


def _ratio_exp(num: np.ndarray, den: np.ndarray) -> float:
    return math.exp(-float(np.sum(num)) / float(np.sum(den)))


def _aggregate(
    name: str, rows: list[dict], kwargs: dict, seed: int, n_bootstrap: int
) -> tuple[float, float | None]:
    nan = float("nan")
    if not rows:
        return (nan, None)

    def boot(f: Callable[..., float], *cols: np.ndarray) -> float | None:
        return bootstrap_stderr(f, *cols, n_bootstrap=n_bootstrap, seed=seed)

    if name == "ece":
        n_bins = int(kwargs.get("n_bins", 10))
        conf, corr = _column(rows, "confidence"), _column(rows, "acc")

        def ece(c: np.ndarray, k: np.ndarray) -> float:
            return expected_calibration_error(c, k, n_bins)

        return (ece(conf, corr), boot(ece, conf, corr))
    if name == "perplexity":
        ll = _column(rows, "logprob")

        def ppl(x: np.ndarray) -> float:
            return math.exp(-float(np.mean(x)))

        return (ppl(ll), boot(ppl, ll))
    if name in ("word_perplexity", "byte_perplexity", "bits_per_byte"):
        ll = _column(rows, "logprob")
        den = _column(rows, "words" if name == "word_perplexity" else "bytes")
        if name == "bits_per_byte":

            def stat(a: np.ndarray, b: np.ndarray) -> float:
                return -float(np.sum(a)) / float(np.sum(b)) / math.log(2)
        else:
            stat = _ratio_exp
        return (stat(ll, den), boot(stat, ll, den))
    values = _column(rows, name)
    return (float(np.mean(values)), mean_stderr(values))


def score(
    output_type: str,
    metric_names: Sequence[str],
    items: Sequence[Item],
    results: Sequence[ItemResult],
    *,
    metric_kwargs: Mapping[str, dict] | None = None,
    seed: int = 0,
    n_bootstrap: int = 1000,
) -> Scores:
    """Score a task's items: per-item values for every item, and the requested aggregates.

    Means (acc, acc_norm, acc_bytes, brier_score, exact_match, confidence, p_gold) get lm-eval's
    closed-form stderr; corpus-level metrics (ece, perplexity, word/byte perplexity,
    bits_per_byte) get a bootstrap over items with `n_bootstrap` resamples drawn from
    `numpy.random.Generator(PCG64(seed))`, so equal inputs and seed give equal outputs.
    Results are matched to items by doc_id. Raises `UserError` for a metric the output type does
    not have, or a kwarg the metric does not take.
    """
    names = _validate(output_type, metric_names, metric_kwargs)
    kwargs = {k: dict(v or {}) for k, v in (metric_kwargs or {}).items()}
    rows: list[dict] = []
    for item, res in _pair(items, results):
        if item.output_type != output_type:
            raise ValueError(f"doc {item.doc_id} is a {item.output_type} item, not {output_type}")
        if output_type == "multiple_choice":
            rows.append(_multiple_choice_row(item, res))
        elif output_type == "loglikelihood":
            rows.append(_loglikelihood_row(item, res))
        elif output_type == "loglikelihood_rolling":
            rows.append(_rolling_row(item, res))
        else:
            rows.append(_generate_row(item, res, kwargs.get("exact_match", {})))
    aggregates = {name: _aggregate(name, rows, kwargs.get(name, {}), seed, n_bootstrap) for name in names}
    return Scores(aggregates=aggregates, rows=rows)


def metric_names_for(output_type: str) -> tuple[str, ...]:
    """Metrics `score` accepts for an output type (UserError for an unknown type)."""
    if output_type not in METRICS:
        raise UserError(f"unknown output_type {output_type!r}; expected one of: {', '.join(METRICS)}")
    return METRICS[output_type]


def is_corpus_metric(name: str) -> bool:
    """True for metrics computed over the whole corpus (bootstrap stderr), not as a mean of items."""
    return name in _CORPUS_METRICS
