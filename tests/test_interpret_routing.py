"""Routing statistics equal counts made by hand from the router's own inputs, with fixed router weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import MixtralConfig, MixtralForCausalLM

from _tiny_models import tiny_llama, tiny_tokenizer
from beyondscale.errors import UserError
from beyondscale.interpret import routing

TEXT = "the big cat sat on the mat and the small dog ran to the house"


def tiny_moe(n_experts=4, top_k=2, seed=0):
    torch.manual_seed(seed)
    cfg = MixtralConfig(vocab_size=len(tiny_tokenizer()), hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                        num_attention_heads=4, num_key_value_heads=2, num_local_experts=n_experts,
                        num_experts_per_tok=top_k, max_position_embeddings=128, bos_token_id=0, eos_token_id=1)
    model = MixtralForCausalLM(cfg).eval()
    gen = torch.Generator().manual_seed(123)
    with torch.no_grad():  # fixed, well-separated router weights
        for layer in model.model.layers:
            layer.mlp.gate.weight.copy_(torch.randn(layer.mlp.gate.weight.shape, generator=gen) * 3)
    return model


def hand_routing(model, ids, top_k):
    """Capture each router's input, compute logits with numpy, take the top-k by argsort."""
    inputs = []
    hooks = [layer.mlp.gate.register_forward_hook(lambda m, i, o: inputs.append(i[0].detach().reshape(-1, 32)))
             for layer in model.model.layers]
    with torch.no_grad():
        model(ids)
    for h in hooks:
        h.remove()
    out = []
    for layer, h in zip(model.model.layers, inputs, strict=True):
        logits = h.double().numpy() @ layer.mlp.gate.weight.detach().double().numpy().T
        chosen = np.argsort(-logits, axis=1)[:, :top_k]
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        out.append((chosen, p))
    return out


def test_routing_equals_hand_counts():
    model, tok = tiny_moe(), tiny_tokenizer()
    doc = routing.routing(model, tok, TEXT, 128)
    ids = tok(TEXT, return_tensors="pt")["input_ids"]
    hand = hand_routing(model, ids, 2)
    n_tokens = ids.shape[1]
    assert doc["n_layers"] == 3 and doc["n_experts"] == 4 and doc["n_tokens"] == n_tokens
    for layer, (chosen, p) in zip(doc["layers"], hand, strict=True):
        counts = np.bincount(chosen.reshape(-1), minlength=4)
        assert layer["counts"] == counts.tolist()
        assert sum(layer["counts"]) == n_tokens * 2
        assert layer["load"] == pytest.approx((counts / counts.sum()).tolist())
        assert layer["imbalance"] == pytest.approx(counts.max() / counts.mean())
        assert layer["router_entropy"] == pytest.approx(float((-(p * np.log(p)).sum(1)).mean()), rel=1e-4)
    for t in range(n_tokens):
        assert [sorted(e) for e in doc["token_experts"][t]] == [sorted(h[0][t].tolist()) for h in hand]
    co = np.zeros((4, 4), dtype=int)
    for t in range(n_tokens):
        for i in hand[0][0][t]:
            for j in hand[1][0][t]:
                co[i, j] += 1
    assert doc["coactivation"][0]["counts"] == co.tolist()


def test_zero_router_is_maximally_uncertain():
    model = tiny_moe()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.mlp.gate.weight.zero_()
    doc = routing.routing(model, tiny_tokenizer(), TEXT, 128)
    assert all(layer["router_entropy"] == pytest.approx(math.log(4)) for layer in doc["layers"])


def test_dense_model_is_refused():
    with pytest.raises(UserError, match="not a Mixture-of-Experts model|no router logits"):
        routing.routing(tiny_llama(), tiny_tokenizer(), TEXT, 128)


def test_html_escapes_tokens():
    doc = routing.routing(tiny_moe(), tiny_tokenizer(), "the <script>alert(1)</script> cat", 128)
    page = routing.routing_html(doc)
    assert "<script>" not in page and "&lt;" in page
    assert page.count("<caption>") == 1 + (doc["n_layers"] - 1) + 1
