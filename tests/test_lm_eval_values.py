"""lm-eval's per-document values as numbers: averaged or summed back, they give lm-eval's own aggregates."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from beyondscale.metrics.lm_eval_values import aggregates, document_values, metric_name


def test_brier_per_document_averages_to_lm_eval_brier_score():
    from lm_eval.api.metrics import brier_score

    rng = random.Random(0)
    items = []
    for _ in range(25):
        logits = np.array([rng.gauss(0, 2) for _ in range(4)])
        probs = np.exp(logits) / np.exp(logits).sum()
        items.append((np.int64(rng.randrange(4)), probs))
    values = [document_values("brier_score", "none", item) for item in items]
    assert np.mean([v["brier_score"] for v in values]) == pytest.approx(brier_score(items), rel=1e-12)
    for (gold, probs), v in zip(items, values, strict=True):
        assert v["confidence"] == pytest.approx(float(probs.max())) and v["p_gold"] == pytest.approx(probs[gold])


def test_rolling_pairs_sum_back_to_lm_eval_bits_per_byte_and_perplexities():
    from lm_eval.api.metrics import bits_per_byte, weighted_perplexity

    pairs = [(-120.5, 300), (-80.25, 190), (-300.0, 720)]
    values = [document_values("bits_per_byte", "none", list(p)) for p in pairs]
    lls, counts = sum(v["logprob"] for v in values), sum(v["bytes"] for v in values)
    assert -lls / counts / math.log(2) == pytest.approx(bits_per_byte(pairs), rel=1e-12)
    words = [document_values("word_perplexity", "none", p) for p in pairs]
    assert math.exp(-sum(w["logprob"] for w in words) / sum(w["words"] for w in words)) == pytest.approx(
        weighted_perplexity(pairs), rel=1e-12)


def test_numbers_filters_and_shapes_left_out():
    assert document_values("acc", "none", np.float64(1.0)) == {"acc": 1.0}
    assert document_values("acc", "none", np.int64(0)) == {"acc": 0.0}
    assert document_values("exact_match", "strict-match", True) == {"exact_match,strict-match": 1.0}
    assert document_values("acc", "none", float("nan")) == {}
    assert document_values("f1", "none", ("a", "b")) == {}  # an aggregation's raw input: not a number
    assert metric_name("acc", "none") == "acc"


def test_aggregates_read_lm_eval_results_entry():
    entry = {"alias": "x", "acc,none": 0.5, "acc_stderr,none": 0.1, "exact_match,strict-match": 0.25,
             "exact_match_stderr,strict-match": "N/A", "bleu,none": float("nan")}
    assert aggregates(entry) == {"acc": (0.5, 0.1), "exact_match,strict-match": (0.25, None)}
