"""Attributions against hand-written autograd / ablation loops; attention entropy against scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from _tiny_models import tiny_llama, tiny_tokenizer
from beyondscale.errors import UserError
from beyondscale.interpret import attribute as A

TEXT, TARGET = "The quick red fox jumped over the", " lazy dog"


@pytest.fixture(scope="module")
def done():
    model, tok = tiny_llama(), tiny_tokenizer()
    prep = A.prepare(tok, TEXT, TARGET, 128)
    return model, prep, A.attributions(model, tok, prep, n_steps=64)


def _f_and_embeds(model, prep):
    embeds = model.get_input_embeddings()(prep.ids).detach()
    return A.target_logprob(model, prep.n_context, prep.ids), embeds


def test_target_logprob_is_the_continuation_loglikelihood(done):
    model, prep, got = done
    with torch.no_grad():
        logp = torch.log_softmax(model(prep.ids).logits[0].float(), -1)
    ids = prep.ids[0]
    by_hand = sum(float(logp[i - 1, ids[i]]) for i in range(prep.n_context, len(ids)))
    assert got["target_logprob"] == pytest.approx(by_hand, abs=1e-4)
    assert got["target_tokens"] == ["Ġlazy", "Ġdog"]


def test_gradient_x_input_by_autograd(done):
    model, prep, got = done
    f, embeds = _f_and_embeds(model, prep)
    x = embeds.clone().requires_grad_()
    f(x).sum().backward()
    by_hand = (x.grad * embeds)[0].sum(-1)[: prep.n_context]
    np.testing.assert_allclose(got["attributions"]["gradient_x_input"], by_hand.numpy(), atol=1e-5)


def test_feature_ablation_by_loop(done):
    model, prep, got = done
    f, embeds = _f_and_embeds(model, prep)
    with torch.no_grad():
        full = float(f(embeds))
        by_hand = []
        for i in range(prep.n_context):
            ablated = embeds.clone()
            ablated[0, i] = model.get_input_embeddings().weight[tiny_tokenizer().eos_token_id]
            by_hand.append(full - float(f(ablated)))
    np.testing.assert_allclose(got["attributions"]["feature_ablation"], by_hand, atol=1e-4)


def test_integrated_gradients_midpoint_rule_and_completeness(done):
    model, prep, got = done
    f, embeds = _f_and_embeds(model, prep)
    baseline = embeds.clone()
    baseline[:, 1 : prep.n_context] = model.get_input_embeddings().weight[tiny_tokenizer().eos_token_id].detach()
    steps = 48
    total = torch.zeros_like(embeds)
    for k in range(steps):  # midpoint Riemann sum of the path integral
        x = (baseline + (k + 0.5) / steps * (embeds - baseline)).requires_grad_()
        f(x).sum().backward()
        total += x.grad
    by_hand = ((embeds - baseline) * total / steps)[0].sum(-1)[: prep.n_context].numpy()
    ours = np.array(got["attributions"]["integrated_gradients"])
    np.testing.assert_allclose(ours, by_hand, atol=1e-3 * np.abs(by_hand).max())
    assert by_hand.sum() == pytest.approx(got["target_logprob"] - got["baseline_logprob"], abs=1e-3)
    assert got["ig_convergence_delta"] < 1e-3 and got["ig_converged"]
    assert ours[0] == 0.0  # the first position (attention sink) is part of the baseline


def test_attention_entropy_against_scipy():
    model, tok = tiny_llama(), tiny_tokenizer()
    prep = A.prepare(tok, TEXT, TARGET, 128)
    got = A.attention_entropy(model, prep.ids)
    model.set_attn_implementation("eager")
    with torch.no_grad():
        att = model(prep.ids, output_attentions=True).attentions
    model.set_attn_implementation("sdpa")
    assert len(got) == 2 and len(got[0]) == 4
    for layer in range(2):
        for head in range(4):
            rows = att[layer][0, head].numpy()
            expected = np.mean([stats.entropy(r[r > 0]) for r in rows])
            assert got[layer][head] == pytest.approx(expected, abs=1e-5)
            assert 0 < got[layer][head] < np.log(prep.ids.shape[1])


@pytest.mark.parametrize(("text", "target", "message"), [
    ("the cat", "", "--target: empty target"),
    ("", " dog", "--text: empty text"),
    ("the cat sat on the mat and the dog ran", " home", "longer than the model's context of 8"),
])
def test_bad_input(text, target, message):
    with pytest.raises(UserError, match=message):
        A.prepare(tiny_tokenizer(), text, target, 8)
