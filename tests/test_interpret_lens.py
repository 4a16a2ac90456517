"""Logit lens against an independent computation through each model's own modules (hooks, full softmax)."""

from __future__ import annotations

import copy

import pytest
import torch

from _tiny_models import tiny_gemma3, tiny_gpt2, tiny_llama, tiny_tokenizer
from beyondscale.errors import UserError
from beyondscale.interpret import lens


def _residuals_by_hooks(model, ids, embed_module, blocks):
    """Embedding output and each block's output, captured by forward hooks (not output_hidden_states)."""
    seen = []
    hooks = [embed_module.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))]
    for block in blocks:
        hooks.append(block.register_forward_hook(
            lambda m, i, o: seen.append((o[0] if isinstance(o, tuple) else o).detach().clone())))
    with torch.no_grad():
        logits = model(ids).logits[0].float()
    for h in hooks:
        h.remove()
    return seen, logits


def _reference(model, ids, embed_module, blocks, norm, head, softcap=None):
    """Naive lens: full-vocabulary softmax per layer; the last layer is the model's own output."""
    seen, final_logits = _residuals_by_hooks(model, ids, embed_module, blocks)
    assert len(seen) == len(blocks) + 1
    logp_f = torch.log_softmax(final_logits, -1)
    top1 = logp_f.argmax(-1)
    rows = []
    for i, h in enumerate(seen):
        with torch.no_grad():
            z = head(norm(h[0])).float() if i < len(blocks) else final_logits
        if softcap and i < len(blocks):
            z = torch.tanh(z / softcap) * softcap
        logp = torch.log_softmax(z, -1)
        kl = (logp_f.exp() * (logp_f - logp)).sum(-1)
        agrees = logp.argmax(-1) == top1
        rows.append((kl, agrees, logp.gather(-1, top1[:, None])[:, 0].exp()))
    agrees = torch.stack([r[1] for r in rows])
    depth = []
    for p in range(agrees.shape[1]):
        layer = agrees.shape[0] - 1
        while layer > 0 and agrees[layer - 1, p]:
            layer -= 1
        depth.append(layer)
    return rows, sum(depth) / len(depth)


def _random_norms(model):
    """A copy whose norm weights are random: at init (w = 1, or Gemma's 1 + 0) norm(norm(x)) == norm(x),
    which would hide a double normalisation or a wrong (1 + w) formula."""
    model = copy.deepcopy(model)
    torch.manual_seed(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name:
                p.copy_(torch.randn_like(p) * 0.5 + (0 if "Gemma" in type(model).__name__ else 1))
    return model


CASES = {
    "llama": lambda: (m := _random_norms(tiny_llama()), m.model.embed_tokens, m.model.layers, m.model.norm, m.lm_head, None),
    "gpt2": lambda: (m := _random_norms(tiny_gpt2()), m.transformer.drop, m.transformer.h, m.transformer.ln_f, m.lm_head, None),
    "gemma3": lambda: (m := _random_norms(tiny_gemma3()), m.model.embed_tokens, m.model.layers, m.model.norm,
                       m.lm_head, 5.0),
}


@pytest.mark.parametrize("arch", sorted(CASES))
def test_lens_equals_naive_computation(arch):
    model, embed, blocks, norm, head, cap = CASES[arch]()
    tok = tiny_tokenizer(arch == "gemma3")
    ids = tok("The quick red fox jumped over the lazy dog and ran to the house.", return_tensors="pt")["input_ids"]
    rows, depth = _reference(model, ids, embed, blocks, norm, head, cap)
    got = lens.logit_lens(model, ids, budget=100, block=5)  # forces vocabulary chunks and position blocks
    assert got.n_layers == len(blocks)
    for i, (kl, agrees, p_top1) in enumerate(rows):
        assert got.kl_to_final[i] == pytest.approx(float(kl.mean()), rel=1e-4, abs=1e-5)
        assert got.top1_agrees[i] == pytest.approx(float(agrees.float().mean()))
        assert got.p_final_top1[i] == pytest.approx(float(p_top1.mean()), rel=1e-4, abs=1e-6)
    assert got.kl_to_final[-1] == pytest.approx(0.0, abs=1e-5)
    assert got.prediction_depth == pytest.approx(depth)
    assert max(got.kl_to_final[:-1]) > 0.01  # the layers do differ: the check above tests something


def test_final_norm_not_applied_twice():
    """Normalising the (already normed) last hidden state again changes the final layer's distribution."""
    model = _random_norms(tiny_gemma3())
    ids = tiny_tokenizer(True)("A big cat sat on the mat.", return_tensors="pt")["input_ids"]
    parts = lens.find_parts(model)
    states, last_logits = lens.hidden_states(model, ids)
    lens.check_parts(parts, states, last_logits, "gemma")
    assert parts.norm_last is False
    twice = lens.chunk_logits(parts, parts.norm(states[-1][0, -1:]), 0, parts.weight.shape[0])
    assert not torch.allclose(twice[0], last_logits[0], atol=1e-3)


def test_memory_bounded_by_budget(monkeypatch):
    """No logits block larger than the budget (here far below layers x positions x vocab)."""
    model = tiny_llama()
    ids = tiny_tokenizer()("the cat sat on the mat " * 6, return_tensors="pt")["input_ids"]
    sizes = []
    real = lens.chunk_logits
    monkeypatch.setattr(lens, "chunk_logits", lambda *a: (out := real(*a), sizes.append(out.numel()))[0])
    got = lens.logit_lens(model, ids, budget=2000, block=8)
    vocab = model.lm_head.weight.shape[0]
    full = (got.n_layers + 1) * ids.shape[1] * vocab
    assert max(sizes) <= max(2000, (got.n_layers + 1) * 8 * 64) < full / 10


def test_refuses_model_without_norm_or_hidden_states():
    class NoBase(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(4, 10)

        def get_output_embeddings(self):
            return self.head

    with pytest.raises(UserError, match="no final normalisation"):
        lens.find_parts(NoBase())


def test_text_errors():
    tok = tiny_tokenizer()
    with pytest.raises(UserError, match="empty text"):
        lens.encode_text(tok, "  ", 128)
    with pytest.raises(UserError, match="longer than the model's context of 8"):
        lens.encode_text(tok, "the cat sat on the mat and ran to the big house", 8)


def test_refuses_model_without_hidden_states():
    """A causal LM whose forward ignores output_hidden_states: one clear line, no traceback."""
    model = copy.deepcopy(tiny_llama())
    real = model.forward

    def forward(*args, **kwargs):
        out = real(*args, **kwargs)
        out.hidden_states = None
        return out

    model.forward = forward
    ids = tiny_tokenizer()("the cat sat", return_tensors="pt")["input_ids"]
    with pytest.raises(UserError, match="does not return its hidden states"):
        lens.logit_lens(model, ids)
