"""Near-duplicate removal against exact Jaccard similarity, and the learned scorer on two crafted sets."""

from __future__ import annotations

import pickle
import random
import re

import numpy as np
import pytest

from beyondscale.errors import UserError
from beyondscale.lab.curate import dedup
from beyondscale.lab.curate.scorer import load_scorer, train_scorer
from beyondscale.lab.curate.synthetic import quality_sets as high_and_low


def exact_jaccard(a: str, b: str, n: int = 5) -> float:
    """Jaccard similarity of word 5-gram sets, counted directly (the reference MinHash estimates)."""
    def grams(text: str) -> set[tuple[str, ...]]:
        w = re.findall(r"\w+", text.lower())
        return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}

    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y)


def edit(text: str, rng: random.Random, changes: int) -> str:
    words = text.split()
    for pos in rng.sample(range(len(words)), changes):
        words[pos] = f"edit{rng.randrange(10**6)}"
    return " ".join(words)


def corpus(seed: int = 0) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """6 base documents, 2 near copies of each (J about 0.9), one far variant of each (J about 0.4).

    Returns the documents in stream order and, for each near copy, the base it must point to.
    """
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(20000)]
    docs, planted = [], {}
    for b in range(6):
        base = " ".join(rng.choice(vocab) for _ in range(300))
        docs.append((f"base{b}", base))
        for c in range(2):
            docs.append((f"near{b}.{c}", edit(base, rng, 3)))
            planted[f"near{b}.{c}"] = f"base{b}"
        docs.append((f"far{b}", edit(base, rng, 30)))
    docs.sort(key=lambda d: (not d[0].startswith("base"), d[0]))  # every base streams before its copies
    return docs, planted


@pytest.mark.parametrize("threshold", [0.8, 0.7])
def test_minhash_finds_planted_near_duplicates_and_keeps_one_per_cluster(threshold):
    docs, planted = corpus()
    texts = dict(docs)
    for near, base in planted.items():
        assert exact_jaccard(texts[near], texts[base]) >= threshold + 0.05  # well above: must be found
    for b in range(6):
        assert exact_jaccard(texts[f"far{b}"], texts[f"base{b}"]) <= threshold - 0.2  # well below: must stay
    index = dedup.MinHashDedup(threshold, num_perm=128)
    removed = {}
    for doc_id, text in docs:
        first = index.check(doc_id, dedup.signature(text, 128, 5))
        if first is not None:
            removed[doc_id] = first
    assert removed == planted  # every planted copy, pointing at its base, nothing else: one kept per cluster


def test_minhash_threshold_decides_the_far_variants():
    docs, _ = corpus()
    texts = dict(docs)
    similarity = exact_jaccard(texts["far0"], texts["base0"])
    assert 0.3 < similarity < 0.6
    index = dedup.MinHashDedup(0.2, num_perm=128)
    index.check("base0", dedup.signature(texts["base0"], 128, 5))
    assert index.check("far0", dedup.signature(texts["far0"], 128, 5)) == "base0"  # 0.2 < J: a duplicate


def test_exact_dedup_keeps_the_first():
    index = dedup.ExactDedup()
    assert index.check("a", "same text") is None
    assert index.check("b", "same text") == "a"
    assert index.check("c", "same text ") is None  # one byte differs


# --- the learned quality scorer -------------------------------------------------------------------


def test_scorer_separates_two_crafted_sets(tmp_path):
    high, low = high_and_low(60, seed=1)
    model = train_scorer(high, low, seed=0)
    assert model.info["heldout_accuracy"] >= 0.95 and model.info["train_seconds"] < 30
    test_high, test_low = high_and_low(40, seed=2)  # fresh documents never seen in training
    scores_high, scores_low = model.score(test_high), model.score(test_low)
    accuracy = (np.sum(scores_high >= 0.5) + np.sum(scores_low < 0.5)) / 80
    assert accuracy >= 0.95
    assert np.median(scores_high) > 0.8 and np.median(scores_low) < 0.2
    path = tmp_path / "scorer.safetensors"
    model.save(path)
    again = load_scorer(path)
    np.testing.assert_allclose(again.score(test_high), scores_high, rtol=1e-5)


def test_scorer_file_must_be_a_saved_scorer(tmp_path):
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps({"coef": [1.0]}))
    with pytest.raises(UserError, match="not a saved quality scorer"):
        load_scorer(pickled)
    with pytest.raises(UserError, match="no such file"):
        load_scorer(tmp_path / "missing.safetensors")
    with pytest.raises(UserError, match="at least 2 high and 2 low"):
        train_scorer(["one"], ["two", "three"])
