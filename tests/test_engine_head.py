"""The chunked vocabulary head against full-vocabulary log_softmax + argmax.

engine.head.ChunkedHead never holds [K, V] logits: it runs the head a few rows at a time into reused
buffers and runs argmax only where the target reaches the maximum. Checked here against
torch.log_softmax / argmax on the full logits (ties included, with integer weights so every logit is
exact), through the engine with chunks of a few rows against the naive per-request reference, and:
a model whose logits are not head(body(x)) keeps its own head.
"""

from __future__ import annotations

import pytest
import torch

from _tiny_models import tiny_gemma3, tiny_llama, tiny_tokenizer
from beyondscale.engine import Engine, head
from beyondscale.engine.head import ChunkedHead
from test_engine import TOL, mc_items, ref_result, rolling_items


def _reference(logits: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor):
    lsm = logits.float().log_softmax(-1)
    return lsm[rows, targets], lsm.argmax(-1)[rows] == targets


@pytest.mark.parametrize("chunk_rows", [6, 4, 1])
def test_block_head_equals_log_softmax_and_argmax_with_ties(monkeypatch, chunk_rows):
    """Integer weights and states make every logit exact, so ties at the maximum are real ties:
    argmax takes the first one; rows are scored out of order and some twice."""
    monkeypatch.setattr(head, "CPU_CHUNK_ELEMS", chunk_rows * 400)
    gen = torch.Generator().manual_seed(0)
    vocab, hidden_size, n_rows = 400, 8, 6
    weight = torch.randint(-3, 4, (vocab, hidden_size), generator=gen).float()
    weight[[5, 70, 250, 399]] = 9.0  # four tied maxima for rows with positive states...
    weight[[6, 71]] = 8.0  # ...and a runner-up pair
    states = torch.randint(1, 3, (n_rows, hidden_size), generator=gen).float()
    states[3] = -states[3]  # a row whose maximum lies elsewhere
    order = torch.tensor([7, 0, 10, 3, 1, 9, 5, 2, 8, 4, 6])
    rows = torch.tensor([0, 0, 0, 0, 1, 2, 3, 3, 4, 5, 5])[order]
    targets = torch.tensor([5, 70, 399, 6, 250, 17, 5, 123, 0, 5, 399])[order]
    block = ChunkedHead(torch.nn.Identity(), weight, None, None)
    lp, greedy = block.logprobs(states, rows, targets)
    ref_lp, ref_greedy = _reference(states @ weight.T, rows, targets)
    assert lp == pytest.approx(ref_lp, abs=1e-5)
    assert greedy.tolist() == ref_greedy.tolist()
    first, tied = (order == 0).nonzero().item(), (order == 1).nonzero().item()
    assert greedy[first] and not greedy[tied]  # the first of the tied maxima only


def test_first_maximum_is_argmax_and_leaves_the_logits_unchanged():
    """Unique maxima (the fast path), the same entry scored twice, ties; x is restored."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(8, 50, generator=gen)
    x[6, 40] = x[6, 3] = x[6].max() + 1  # a tie: argmax is column 3
    rows = torch.tensor([0, 0, 1, 2, 2, 3, 4, 5, 6, 6, 7])
    cols = x.argmax(1)[rows]
    cols[[3, 6]] = torch.tensor([7, 11])  # not the maximum
    cols[9] = 40  # the later of the tied pair
    before = x.clone()
    got = head.first_maximum(x, rows, cols)
    assert got.tolist() == (x.argmax(1)[rows] == cols).tolist()
    assert got.sum() == 8 and torch.equal(x, before)


def test_block_head_applies_bias_and_softcapping():
    gen = torch.Generator().manual_seed(1)
    weight, bias = torch.randn(300, 16, generator=gen), torch.randn(300, generator=gen)
    states = torch.randn(5, 16, generator=gen) * 4
    rows, targets = torch.arange(5).repeat(3), torch.randint(0, 300, (15,), generator=gen)
    lp, greedy = ChunkedHead(torch.nn.Identity(), weight, bias, 2.0).logprobs(states, rows, targets)
    ref_lp, ref_greedy = _reference(torch.tanh((states @ weight.T + bias) / 2.0) * 2.0, rows, targets)
    assert lp == pytest.approx(ref_lp, abs=1e-5) and greedy.tolist() == ref_greedy.tolist()


@pytest.mark.parametrize("make", [tiny_llama, tiny_gemma3])  # Gemma-3: soft-capped logits
def test_engine_with_small_chunks_matches_naive_reference(monkeypatch, make):
    monkeypatch.setattr(head, "CPU_CHUNK_ELEMS", 3 * 400)  # three rows at a time
    model, tok = make(), tiny_tokenizer(make is tiny_gemma3)
    engine = Engine(model, tok, max_length=64)
    assert engine.scorer.head is not None
    items = mc_items() + rolling_items()[:3]
    for item, res in zip(items, engine.run(items), strict=True):
        lps, greedy, _ = ref_result(model, tok, item, 64)
        assert res.logprobs == pytest.approx(lps, abs=TOL), item
        if greedy is not None:
            assert res.is_greedy == greedy, item


class _ScaledLlama(type(tiny_llama())):
    """A model whose forward rescales the head's logits (as Cohere's logit_scale does)."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        out.logits = out.logits * 0.5
        return out


def test_model_whose_logits_are_not_head_of_body_keeps_its_own_head():
    base = tiny_llama()
    model = _ScaledLlama(base.config)
    model.load_state_dict(base.state_dict())
    model.eval()
    tok = tiny_tokenizer()
    assert ChunkedHead.of(model) is None and ChunkedHead.of(base) is not None
    items = mc_items()[:4]
    for item, res in zip(items, Engine(model, tok, max_length=64).run(items), strict=True):
        assert res.logprobs == pytest.approx(ref_result(model, tok, item, 64)[0], abs=TOL)
