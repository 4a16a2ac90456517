"""Counterfactual probe set: construction, paired gaps by hand, and log-likelihoods by a naive computation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from _tiny_models import tiny_llama, tiny_tokenizer
from beyondscale.bias import counterfactual as cf
from beyondscale.errors import UserError
from test_bias_crows import naive_ll

SMALL = {"name": "t", "version": "0", "axes": {"pet": ["cat", "dog"]},
         "templates": [{"text": "The {term} sat.", "neutral": True}, {"text": "A {term} ran.", "neutral": True},
                       {"text": "The {term} was big.", "attribute": "a"},
                       {"text": "The {term} was red.", "attribute": "a"},
                       {"text": "The {term} ran to the house.", "attribute": "b"}]}


def test_packaged_set_is_complete():
    probes = cf.load_probe_set()
    cells = cf.sentences(probes)
    n_terms = sum(len(t) for t in probes["axes"].values())
    assert len(cells) == n_terms * len(probes["templates"])
    assert all("{term}" not in s for *_, s in cells)


def test_gaps_by_hand():
    ll = {("pet", "cat", 0): -10.0, ("pet", "dog", 0): -11.0, ("pet", "cat", 1): -9.0, ("pet", "dog", 1): -10.0,
          ("pet", "cat", 2): -12.0, ("pet", "dog", 2): -12.5, ("pet", "cat", 3): -8.0, ("pet", "dog", 3): -10.0,
          ("pet", "cat", 4): -20.0, ("pet", "dog", 4): -19.0}
    got = cf.gaps(SMALL, ll)["pet"]
    dog = got["terms"]["dog"]
    assert got["reference"] == "cat" and dog["neutral_gap"] == pytest.approx(-1.0)
    raw = np.array([-0.5, -2.0, 1.0])  # dog minus cat on the attribute templates
    assert dog["raw_gap"]["mean"] == pytest.approx(raw.mean())
    adj = raw + 1.0
    assert dog["attribute_gap"]["mean"] == pytest.approx(adj.mean())
    half = stats.t.ppf(0.975, 2) * adj.std(ddof=1) / np.sqrt(3)
    assert dog["attribute_gap"]["t_ci95"] == pytest.approx((adj.mean() - half, adj.mean() + half))


def test_loglikelihoods_equal_naive(tmp_path):
    model, tok = tiny_llama(), tiny_tokenizer()
    doc = cf.run_counterfactual(model, tok, {**SMALL, "content_sha256": "x"})
    cat_dog = [naive_ll(model, tok, t["text"].replace("{term}", "dog"))
               - naive_ll(model, tok, t["text"].replace("{term}", "cat")) for t in SMALL["templates"]]
    assert doc["per_axis"]["pet"]["terms"]["dog"]["raw_gap"]["mean"] == pytest.approx(np.mean(cat_dog[2:]), abs=1e-4)


def test_bad_probe_file(tmp_path):
    bad = json.loads(json.dumps(SMALL))
    bad["templates"][2]["text"] = "No slot here."
    path = tmp_path / "p.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(UserError, match="template 3 must have exactly one"):
        cf.load_probe_set(str(path))
