"""lm-eval's per-document metric values as the numbers the store keeps and analysis pairs.

lm-eval logs most per-document values as numbers (`acc`, `exact_match`), but some as what its corpus-level
aggregation needs: a rolling task's `(loglikelihood, words or bytes)` pair, a multiple-choice task's
`brier_score` as `(gold, choice probabilities)`. Those become `logprob` and `words`/`bytes` (so bits per byte
is paired over documents by summing), and `brier_score` (the document's own sum of squared errors, whose mean
is lm-eval's aggregate), `confidence` (the predicted choice's probability: reliability diagrams, ECE) and
`p_gold`. Runs made here and lm-eval runs imported name them alike.
"""

from __future__ import annotations

import math
from typing import Any

#: a rolling task's per-document pair (loglikelihood, count): which count each metric divides by
ROLLING_COUNTS = {"word_perplexity": "words", "byte_perplexity": "bytes", "bits_per_byte": "bytes"}


def rolling_aggregate(metric: str, loglikelihood: float, count: float) -> float:
    """lm-eval's aggregate of a rolling task's summed log-likelihood over its summed words or bytes
    (`weighted_perplexity` for the perplexities, `bits_per_byte`)."""
    if metric == "bits_per_byte":
        return -loglikelihood / count / math.log(2)
    return math.exp(-loglikelihood / count)


def metric_name(metric: str, filter_key: str) -> str:
    """`acc` for lm-eval's `acc,none`; a metric under a named filter keeps lm-eval's key (`exact_match,strict-match`)."""
    return metric if filter_key == "none" else f"{metric},{filter_key}"


def number(value: Any) -> float | None:
    """A finite number (a bool counts), else None (lm-eval writes NaN or null for a metric with no documents)."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # a numpy scalar
        value = value.item()
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def aggregates(entry: dict[str, Any]) -> dict[str, tuple[float | None, float | None]]:
    """{metric: (value, stderr)} from one task's or group's entry of lm-eval's `results` (`acc,none`,
    `acc_stderr,none`); a metric without a number is left out."""
    out = {}
    for key, value in entry.items():
        metric, comma, filter_key = key.partition(",")
        if not comma or metric.endswith("_stderr") or number(value) is None:
            continue
        out[metric_name(metric, filter_key)] = (number(value), number(entry.get(f"{metric}_stderr,{filter_key}")))
    return out


def document_values(metric: str, filter_key: str, value: Any) -> dict[str, float]:
    """The numbers one logged per-document value stands for (empty when it is none of the known shapes)."""
    if (plain := number(value)) is not None:
        return {metric_name(metric, filter_key): plain}
    if filter_key != "none" or not isinstance(value, list | tuple) or len(value) != 2:
        return {}
    if metric in ROLLING_COUNTS:
        loglikelihood, count = number(value[0]), number(value[1])
        return {} if loglikelihood is None or count is None else {"logprob": loglikelihood,
                                                                  ROLLING_COUNTS[metric]: count}
    if metric == "brier_score":
        return _brier(value[0], value[1])
    return {}


def _brier(gold: Any, probabilities: Any) -> dict[str, float]:
    if hasattr(probabilities, "tolist"):  # lm-eval hands a numpy array (a list once read back from JSON)
        probabilities = probabilities.tolist()
    gold = gold.item() if hasattr(gold, "item") else gold
    if not isinstance(probabilities, list | tuple) or not probabilities or number(gold) is None:
        return {}
    probs = [float(p) for p in probabilities]
    index = int(number(gold))  # type: ignore[arg-type]
    if not 0 <= index < len(probs):
        return {}
    squared = sum((p - (1.0 if i == index else 0.0)) ** 2 for i, p in enumerate(probs))
    return {"brier_score": squared, "confidence": max(probs), "p_gold": probs[index]}
