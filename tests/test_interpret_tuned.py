"""Affine lens: closed-form translators against numpy least squares; identity limit equals the logit lens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _tiny_models import tiny_gemma3, tiny_llama, tiny_tokenizer
from beyondscale.interpret import lens, tuned

TEXTS = ["the big cat sat on the mat and ran to the house", "a small dog jumped over the lazy fox at night",
         "why is the sun bright and the moon blue", "they sat under the tree by the river"]


def test_translators_equal_numpy_lstsq():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = x @ rng.normal(size=(5, 5)) + rng.normal(size=5) + 0.1 * rng.normal(size=(60, 5))
    ridge = 0.3
    (a, b), = tuned.fit_translators([torch.tensor(x, dtype=torch.float32)], torch.tensor(y, dtype=torch.float32),
                                    ridge)
    s = np.sqrt(ridge * 60)
    design = np.vstack([np.hstack([x, np.ones((60, 1))]), np.hstack([s * np.eye(5), np.zeros((5, 1))])])
    target = np.vstack([y, s * np.eye(5)])
    theta = np.linalg.lstsq(design, target, rcond=None)[0]
    np.testing.assert_allclose(a.numpy(), theta[:5], atol=1e-4)
    np.testing.assert_allclose(b.numpy(), theta[5], atol=1e-4)


@pytest.mark.parametrize("make", [tiny_llama, tiny_gemma3])
def test_prenorm_capture_and_identity_limit(make):
    model = make()
    tok = tiny_tokenizer(make is tiny_gemma3)
    ids = tok(TEXTS[0], return_tensors="pt")["input_ids"]
    parts = lens.find_parts(model)
    states, final = tuned.final_prenorm_states(model, parts, ids)
    full, _ = lens.hidden_states(model, ids)
    with torch.no_grad():
        torch.testing.assert_close(parts.norm(final), full[-1])  # the captured state is the one normed last
    huge = tuned.fit_affine_lens(model, tok, TEXTS[:1], 128, ridge=1e9)  # A shrunk to I; b (not shrunk): mean gap
    for (a, b), h in zip(huge, states, strict=True):
        torch.testing.assert_close(a, torch.eye(a.shape[0]), atol=1e-4, rtol=0)
        torch.testing.assert_close(b, (final[0] - h[0]).mean(0), atol=1e-3, rtol=1e-3)
    d = states[0].shape[-1]
    identity = [(torch.eye(d), torch.zeros(d))] * len(states)
    plain = lens.logit_lens(model, ids)
    affine = lens.logit_lens(model, ids, translators=identity)
    assert affine.kl_to_final == pytest.approx(plain.kl_to_final, rel=1e-5, abs=1e-6)


def test_fitted_lens_reads_training_text_better():
    model, tok = tiny_llama(), tiny_tokenizer()
    translators = tuned.fit_affine_lens(model, tok, TEXTS, 128, ridge=1e-3)
    ids = tok(TEXTS[1], return_tensors="pt")["input_ids"]
    plain, affine = lens.logit_lens(model, ids), lens.logit_lens(model, ids, translators=translators)
    assert sum(affine.kl_to_final[:-1]) < sum(plain.kl_to_final[:-1])


def test_cli_affine_lens_is_labelled_and_stored(monkeypatch, capsys, tiny_llama, tmp_path):
    import json

    from beyondscale.interpret import results
    from test_bias_cli import call

    store = tmp_path / "s.db"
    monkeypatch.setattr(tuned, "corpus_texts", lambda n: TEXTS[:n])  # the corpus itself: test_corpus_texts
    code, out, _ = call(monkeypatch, capsys, "explain", "lens", "--model", str(tiny_llama), "--text", "the cat sat",
                        "--affine-fit", "4", "--json", "--store", str(store))
    doc = json.loads(out)
    assert code == 0 and "not the tuned lens" in doc["lens"] and doc["fit_documents"] == 4
    assert list(results.probe_frame(store)["probe"]) == ["affine_lens"]


@pytest.mark.slow
def test_corpus_texts_spread_and_cut():
    texts = tuned.corpus_texts(30, max_chars=500)
    assert len(texts) == 30 and len(set(texts)) == 30 and max(map(len, texts)) <= 500
