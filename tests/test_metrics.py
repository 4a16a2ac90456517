"""Metric definitions checked against hand-computed values (arithmetic written out below)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from beyondscale.engine.requests import Item, ItemResult
from beyondscale.errors import UserError
from beyondscale.metrics import (
    bootstrap_stderr,
    expected_calibration_error,
    mean_stderr,
    reliability_bins,
    score,
)

# ---------------------------------------------------------------- helpers


def mc_item(doc_id, choices, gold):
    return Item(
        doc_id=doc_id,
        output_type="multiple_choice",
        context="Q:",
        continuations=tuple(" " + c for c in choices),
        choices=tuple(choices),
        gold=gold,
    )


def mc_result(doc_id, lls, greedy=None):
    return ItemResult(
        doc_id=doc_id,
        logprobs=list(lls),
        is_greedy=list(greedy) if greedy is not None else [False] * len(lls),
        n_tokens=[1] * len(lls),
    )


# ---------------------------------------------------------------- acc / acc_norm / acc_bytes

# Three choices where the plain, per-character and per-byte argmax all differ:
#   choice  text        chars bytes  ll     ll/chars  ll/bytes
#   0       "ab"          2     2   -1.0    -0.5      -0.5     <- plain argmax (-1.0 is largest)
#   1       "abcdefgh"    8     8   -3.2    -0.4      -0.4     <- per-char argmax
#   2       "éééééé"      6    12   -3.0    -0.5      -0.25    <- per-byte argmax (é is 2 bytes)
CHOICES = ("ab", "abcdefgh", "éééééé")
LLS = (-1.0, -3.2, -3.0)


@pytest.mark.parametrize(
    "gold, expected",
    [
        (0, {"acc": 1.0, "acc_norm": 0.0, "acc_bytes": 0.0}),
        (1, {"acc": 0.0, "acc_norm": 1.0, "acc_bytes": 0.0}),
        (2, {"acc": 0.0, "acc_norm": 0.0, "acc_bytes": 1.0}),
        ((0, 2), {"acc": 1.0, "acc_norm": 0.0, "acc_bytes": 1.0}),
        ((1, 2), {"acc": 0.0, "acc_norm": 1.0, "acc_bytes": 1.0}),
        ("abcdefgh", {"acc": 0.0, "acc_norm": 1.0, "acc_bytes": 0.0}),
    ],
)
def test_acc_variants_pick_different_argmaxes(gold, expected):
    s = score(
        "multiple_choice", ["acc", "acc_norm", "acc_bytes"], [mc_item(0, CHOICES, gold)], [mc_result(0, LLS)]
    )
    row = s.rows[0]
    assert row["pred"] == 0
    for name, value in expected.items():
        assert row["values"][name] == value
        assert s.aggregates[name][0] == value
        assert s.aggregates[name][1] is None  # one item: no stderr
    assert row["correct"] is bool(expected["acc"])


def test_acc_norm_uses_raw_choice_not_continuation_with_delimiter():
    # Continuations carry a leading space (" ab", " abcd"); lm-eval divides by len(choice) without
    # it. lls (-1.0, -1.9): raw lengths 2, 4 -> -0.5 vs -0.475 -> choice 1;
    # with the space (lengths 3, 5) it would be -0.333 vs -0.38 -> choice 0.
    item = mc_item(0, ("ab", "abcd"), 1)
    s = score("multiple_choice", ["acc_norm"], [item], [mc_result(0, (-1.0, -1.9))])
    assert s.rows[0]["values"]["acc_norm"] == 1.0


def test_acc_mean_and_closed_form_stderr():
    # 4 items, correct pattern 1,1,0,1 -> acc 0.75; sample sd = sqrt(((.25^2)*3 + .75^2)/3)
    # = sqrt((0.1875 + 0.5625)/3) = sqrt(0.25) = 0.5 -> stderr 0.5 / sqrt(4) = 0.25.
    items = [mc_item(i, ("x", "y"), g) for i, g in enumerate([0, 0, 1, 0])]
    results = [mc_result(i, (-1.0, -2.0)) for i in range(4)]
    value, stderr = score("multiple_choice", ["acc"], items, results).aggregates["acc"]
    assert value == pytest.approx(0.75)
    assert stderr == pytest.approx(0.25)


# ---------------------------------------------------------------- Brier, confidence, p_gold


def test_brier_confidence_p_gold_by_hand():
    # Item 0: probs (0.5, 0.3, 0.2), gold 1:
    #   brier = (0.5-0)^2 + (0.3-1)^2 + (0.2-0)^2 = 0.25 + 0.49 + 0.04 = 0.78
    #   confidence = p(pred=0) = 0.5, p_gold = 0.3
    # Item 1: unnormalised lls log(1,2,1) - 5 -> softmax (0.25, 0.5, 0.25), gold 1:
    #   brier = 0.0625 + 0.25 + 0.0625 = 0.375; confidence 0.5; p_gold 0.5
    # mean brier = (0.78 + 0.375)/2 = 0.5775; stderr of 2 values = |a-b|/2 = 0.2025
    items = [mc_item(0, ("a", "b", "c"), 1), mc_item(1, ("a", "b", "c"), 1)]
    results = [
        mc_result(0, np.log([0.5, 0.3, 0.2])),
        mc_result(1, np.log([1.0, 2.0, 1.0]) - 5.0),
    ]
    s = score("multiple_choice", ["brier_score", "confidence", "p_gold"], items, results)
    v0, v1 = s.rows[0]["values"], s.rows[1]["values"]
    assert v0["brier"] == pytest.approx(0.78)
    assert v0["confidence"] == pytest.approx(0.5)
    assert v0["p_gold"] == pytest.approx(0.3)
    assert v1["brier"] == pytest.approx(0.375)
    assert v1["confidence"] == pytest.approx(0.5)
    assert v1["p_gold"] == pytest.approx(0.5)
    assert s.aggregates["brier_score"][0] == pytest.approx(0.5775)
    assert s.aggregates["brier_score"][1] == pytest.approx(0.2025)
    assert s.aggregates["confidence"][0] == pytest.approx(0.5)
    assert s.aggregates["p_gold"][0] == pytest.approx(0.4)


def test_multiple_gold_brier_and_p_gold():
    # probs (0.5, 0.3, 0.2), gold (1, 2): p_gold = 0.5; pred 0 not in gold -> acc 0.
    # Brier takes the closest acceptable one-hot: gold 1 -> 0.78 (above);
    # gold 2 -> 0.25 + 0.09 + 0.64 = 0.98; min = 0.78.
    s = score(
        "multiple_choice",
        ["acc", "brier_score"],
        [mc_item(0, ("a", "b", "c"), (1, 2))],
        [mc_result(0, np.log([0.5, 0.3, 0.2]))],
    )
    v = s.rows[0]["values"]
    assert v["acc"] == 0.0
    assert v["p_gold"] == pytest.approx(0.5)
    assert v["brier"] == pytest.approx(0.78)


def test_multiple_choice_exact_match_is_greedy_gold():
    items = [mc_item(0, ("a", "b"), 1), mc_item(1, ("a", "b"), 0)]
    results = [mc_result(0, (-1, -2), greedy=(False, True)), mc_result(1, (-1, -2), greedy=(False, True))]
    s = score("multiple_choice", ["exact_match"], items, results)
    assert [r["values"]["exact_match"] for r in s.rows] == [1.0, 0.0]


# ---------------------------------------------------------------- ECE (HELM equal-mass bins)


def test_ece_equal_mass_uneven_bins_by_hand():
    # 7 confidences, 3 bins: np.array_split sizes 3, 2, 2 (first bins get the extra item).
    #   sorted: [0.2 0.3 0.4 | 0.6 0.7 | 0.8 0.9]; boundaries (0.4+0.6)/2=0.5, (0.7+0.8)/2=0.75, 1.0
    #   correct: [0 1 0 | 1 0 | 1 1]
    #   bin0: mean conf 0.3, acc 1/3 -> |gap| = 1/30, weight 3/7 -> 0.1/7
    #   bin1: mean conf 0.65, acc 0.5 -> 0.15, weight 2/7 -> 0.3/7
    #   bin2: mean conf 0.85, acc 1.0 -> 0.15, weight 2/7 -> 0.3/7
    #   ECE = 0.7/7 = 0.1
    conf = [0.7, 0.2, 0.9, 0.3, 0.6, 0.4, 0.8]  # shuffled: binning must sort
    corr = [0, 0, 1, 1, 1, 0, 1]
    assert expected_calibration_error(conf, corr, n_bins=3) == pytest.approx(0.1)
    bins = reliability_bins(conf, corr, n_bins=3)
    assert [b["count"] for b in bins] == [3, 2, 2]
    assert [b["confidence"] for b in bins] == pytest.approx([0.3, 0.65, 0.85])
    assert [b["accuracy"] for b in bins] == pytest.approx([1 / 3, 0.5, 1.0])
    assert [b["upper"] for b in bins] == pytest.approx([0.5, 0.75, 1.0])
    # 10 bins but only 7 items: HELM caps bins at n, so each item is its own bin and
    # ECE = mean |conf - correct| = (0.2+0.7+0.4+0.4+0.7+0.2+0.1)/7 = 2.7/7
    assert expected_calibration_error(conf, corr) == pytest.approx(2.7 / 7)


def test_ece_ties_fall_in_lower_bin():
    # [0.5 0.5 | 0.5 0.5 | 0.9 0.9] -> boundaries 0.5, 0.7, 1.0; every 0.5 is <= 0.5 so lands in
    # bin 0 (4 items), bin 1 is empty, bin 2 holds the 0.9s.
    # correct [1 0 0 0 | 1 1]: bin0 |0.5 - 0.25| = 0.25 * 4/6; bin2 |0.9 - 1| = 0.1 * 2/6
    # ECE = (1.0 + 0.2)/6 = 0.2
    conf = [0.5, 0.5, 0.5, 0.5, 0.9, 0.9]
    corr = [1, 0, 0, 0, 1, 1]
    assert expected_calibration_error(conf, corr, n_bins=3) == pytest.approx(0.2)
    bins = reliability_bins(conf, corr, n_bins=3)
    assert [(b["bin"], b["count"]) for b in bins] == [(0, 4), (2, 2)]


def test_ece_twenty_items_ten_bins():
    # 20 items, 10 bins of 2: confidences 0.50, 0.52, ..., 0.88; every bin has one right, one
    # wrong -> acc 0.5 everywhere; bin i mean conf = (0.50 + 0.04 i) + 0.01, gap = 0.01 + 0.04 i.
    # ECE = mean over bins = 0.01 + 0.04 * 4.5 = 0.19
    conf = [0.50 + 0.02 * i for i in range(20)]
    corr = [i % 2 for i in range(20)]
    assert expected_calibration_error(conf, corr) == pytest.approx(0.19)
    assert len(reliability_bins(conf, corr)) == 10


def test_ece_through_score_uses_predicted_choice_probability():
    # Two-choice items with softmax (c, 1-c), c >= 0.5 so pred = 0 and confidence = c.
    # gold = 0 where the item should be correct.
    # conf [0.55 0.6 0.65 | 0.7 0.8 | 0.9 0.95], correct [1 0 1 | 1 0 | 1 1], 3 bins (3, 2, 2):
    #   bin0 conf 0.6  acc 2/3 -> gap 1/15 * 3 = 0.2
    #   bin1 conf 0.75 acc 1/2 -> 0.25 * 2 = 0.5
    #   bin2 conf 0.925 acc 1  -> 0.075 * 2 = 0.15
    #   ECE = 0.85 / 7
    confs = [0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 0.95]
    correct = [1, 0, 1, 1, 0, 1, 1]
    items = [mc_item(i, ("yes", "no"), 0 if ok else 1) for i, ok in enumerate(correct)]
    results = [mc_result(i, np.log([c, 1 - c])) for i, c in enumerate(confs)]
    s = score(
        "multiple_choice", ["ece"], items, results, metric_kwargs={"ece": {"n_bins": 3}}, n_bootstrap=200
    )
    value, stderr = s.aggregates["ece"]
    assert value == pytest.approx(0.85 / 7)
    assert stderr is not None and stderr > 0
    assert [r["values"]["confidence"] for r in s.rows] == pytest.approx(confs)


# ---------------------------------------------------------------- loglikelihood


def test_loglikelihood_perplexity_and_acc():
    # ll = -1, -2, -3 -> perplexity = exp(-mean ll) = exp(2) ; acc = is_greedy mean = 2/3
    items = [
        Item(doc_id=i, output_type="loglikelihood", context="c", continuations=(" x",)) for i in range(3)
    ]
    results = [
        ItemResult(doc_id=i, logprobs=[ll], is_greedy=[g], n_tokens=[2])
        for i, (ll, g) in enumerate([(-1.0, True), (-2.0, True), (-3.0, False)])
    ]
    s = score("loglikelihood", ["perplexity", "acc"], items, results, n_bootstrap=200)
    assert s.aggregates["perplexity"][0] == pytest.approx(math.exp(2.0))
    assert s.aggregates["acc"][0] == pytest.approx(2 / 3)
    assert s.aggregates["perplexity"][1] is not None
    assert [r["values"]["logprob"] for r in s.rows] == [-1.0, -2.0, -3.0]


# ---------------------------------------------------------------- loglikelihood_rolling


def test_rolling_word_byte_perplexity_bits_per_byte():
    # doc A "hello world"    : words 2, bytes 11, ll -10
    # doc B "naïve café déjà": words 3, bytes 19 (ï é é à are 2 bytes each: 15 chars + 4), ll -20
    # doc C " lead space"    : re.split(r"\s+") -> ['', 'lead', 'space'] = 3 words, bytes 11, ll -5
    # totals: ll -35, words 8, bytes 41
    # word_perplexity = exp(35/8), byte_perplexity = exp(35/41), bits_per_byte = 35/41/ln 2
    texts = ["hello world", "naïve café déjà", " lead space"]
    lls = [-10.0, -20.0, -5.0]
    items = [Item(doc_id=i, output_type="loglikelihood_rolling", text=t) for i, t in enumerate(texts)]
    results = [ItemResult(doc_id=i, logprobs=[ll], n_tokens=[4]) for i, ll in enumerate(lls)]
    s = score(
        "loglikelihood_rolling",
        ["word_perplexity", "byte_perplexity", "bits_per_byte"],
        items,
        results,
        n_bootstrap=300,
    )
    assert [r["values"]["words"] for r in s.rows] == [2, 3, 3]
    assert [r["values"]["bytes"] for r in s.rows] == [11, 19, 11]
    assert [r["values"]["tokens"] for r in s.rows] == [4, 4, 4]
    assert s.aggregates["word_perplexity"][0] == pytest.approx(math.exp(35 / 8))
    assert s.aggregates["byte_perplexity"][0] == pytest.approx(math.exp(35 / 41))
    assert s.aggregates["bits_per_byte"][0] == pytest.approx(35 / 41 / math.log(2))
    for name in ("word_perplexity", "byte_perplexity", "bits_per_byte"):
        assert s.aggregates[name][1] is not None and s.aggregates[name][1] > 0


# ---------------------------------------------------------------- generate_until exact_match


def gen(doc_id, gold, text):
    return (
        Item(doc_id=doc_id, output_type="generate_until", context="Q:", until=("\n",), gold=gold),
        ItemResult(doc_id=doc_id, generation=text),
    )


@pytest.mark.parametrize(
    "pred, gold, kwargs, expected",
    [
        ("Paris", "Paris", {}, 1.0),
        ("paris", "Paris", {}, 0.0),
        ("paris", "Paris", {"ignore_case": True}, 1.0),
        (" Paris", "Paris", {}, 0.0),  # no implicit strip
        ("Paris.", "Paris", {}, 0.0),
        ("Paris.", "Paris", {"ignore_punctuation": True}, 1.0),
        ("PARIS!!", "paris", {"ignore_case": True, "ignore_punctuation": True}, 1.0),
        ("The answer is 42", "42", {"regexes_to_ignore": ["The answer is "]}, 1.0),
        ("answer: 42", "42", {"regexes_to_ignore": [r"^\w+:", r"\s"]}, 1.0),
        ("A1", "a2", {"ignore_case": True, "ignore_numbers": True}, 1.0),
        ("Rome", ("Paris", "Rome"), {}, 1.0),
        ("Berlin", ("Paris", "Rome"), {}, 0.0),
        ("7", 7, {}, 1.0),  # non-string gold cast to str, as lm-eval does
    ],
)
def test_exact_match_options(pred, gold, kwargs, expected):
    item, res = gen(0, gold, pred)
    s = score("generate_until", ["exact_match"], [item], [res], metric_kwargs={"exact_match": kwargs})
    assert s.rows[0]["values"]["exact_match"] == expected
    assert s.rows[0]["correct"] is (expected == 1.0)
    assert s.rows[0]["pred"] == pred


def test_exact_match_order_regex_before_case():
    # lm-eval removes regexes before lower-casing: "[A-Z]" deletes the capital first.
    item, res = gen(0, "aris", "Paris")
    s = score(
        "generate_until",
        ["exact_match"],
        [item],
        [res],
        metric_kwargs={"exact_match": {"regexes_to_ignore": ["[A-Z]"], "ignore_case": True}},
    )
    assert s.rows[0]["values"]["exact_match"] == 1.0


# ---------------------------------------------------------------- stderr helpers


def test_mean_stderr_matches_numpy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=57)
    assert mean_stderr(x) == pytest.approx(np.std(x, ddof=1) / np.sqrt(len(x)))
    assert mean_stderr([1.0]) is None


def test_bootstrap_deterministic_and_close_to_closed_form():
    rng = np.random.default_rng(11)
    x = (rng.uniform(size=400) < 0.6).astype(float)

    def mean(a):
        return float(np.mean(a))

    a = bootstrap_stderr(mean, x, n_bootstrap=1000, seed=5)
    b = bootstrap_stderr(mean, x, n_bootstrap=1000, seed=5)
    c = bootstrap_stderr(mean, x, n_bootstrap=1000, seed=6)
    assert a == b
    assert a != c
    closed = np.std(x, ddof=1) / np.sqrt(len(x))
    assert a == pytest.approx(closed, rel=0.1)


def test_score_bootstrap_is_deterministic_per_seed():
    texts = [f"doc number {i} " * (i + 1) for i in range(30)]
    items = [Item(doc_id=i, output_type="loglikelihood_rolling", text=t) for i, t in enumerate(texts)]
    results = [
        ItemResult(doc_id=i, logprobs=[-3.0 * len(t) ** 0.9], n_tokens=[5]) for i, t in enumerate(texts)
    ]

    def run(seed):
        return score("loglikelihood_rolling", ["bits_per_byte"], items, results, seed=seed, n_bootstrap=200)

    assert run(1).aggregates == run(1).aggregates
    assert run(1).aggregates["bits_per_byte"][1] != run(2).aggregates["bits_per_byte"][1]
    assert run(1).aggregates["bits_per_byte"][0] == run(2).aggregates["bits_per_byte"][0]


# ---------------------------------------------------------------- errors and pairing


def test_unknown_metric_raises_user_error_naming_it_and_allowed():
    item, res = gen(0, "x", "x")
    with pytest.raises(UserError) as err:
        score("generate_until", ["acc_norm"], [item], [res])
    assert "acc_norm" in str(err.value) and "exact_match" in str(err.value)
    with pytest.raises(UserError, match="bits_per_byte"):
        score("multiple_choice", ["bits_per_byte"], [], [])
    with pytest.raises(UserError, match="ignore_whitespace"):
        score(
            "generate_until",
            ["exact_match"],
            [item],
            [res],
            metric_kwargs={"exact_match": {"ignore_whitespace": True}},
        )


def test_results_are_paired_by_doc_id():
    items = [mc_item(0, CHOICES, 0), mc_item(1, CHOICES, 1)]
    results = [mc_result(1, LLS), mc_result(0, LLS)]
    s = score("multiple_choice", ["acc"], items, results)
    assert [r["doc_id"] for r in s.rows] == [0, 1]
    assert [r["values"]["acc"] for r in s.rows] == [1.0, 0.0]


def test_empty_input():
    s = score("multiple_choice", ["acc", "ece"], [], [])
    assert math.isnan(s.aggregates["acc"][0]) and s.aggregates["acc"][1] is None
    assert s.rows == []


def test_partial_evaluation_without_choices_normalises_by_contexts():
    # winogrande-style: one shared continuation, one context per option; lm-eval's doc_to_choice
    # returns the contexts, so acc_norm divides by their lengths when `choices` is not given.
    # contexts lengths 2 ("ab") and 8 ("abcdefgh"), lls (-1.0, -3.2): plain -> 0, per-char
    # -0.5 vs -0.4 -> 1.
    item = Item(
        doc_id=0, output_type="multiple_choice", contexts=("ab", "abcdefgh"), continuations=(" end",), gold=1
    )
    s = score("multiple_choice", ["acc", "acc_norm"], [item], [mc_result(0, (-1.0, -3.2))])
    assert s.rows[0]["values"]["acc"] == 0.0
    assert s.rows[0]["values"]["acc_norm"] == 1.0
