"""The packed scorer (all choices of a document in one row, 4D tree mask) against the naive reference.

tests/test_engine.py checks the engine end to end; here: the packed path is the one that ran for
multiple-choice items (one forward pass, no cache), and it equals lm-eval's one-request-at-a-time
log-likelihoods on eager attention (additive mask), on sliding-window layers shorter than the
contexts (Gemma-3, window 4) and with the two-phase path forced instead.
"""

from __future__ import annotations

import pytest
import torch

from _tiny_models import tiny_gemma3, tiny_llama, tiny_tokenizer
from beyondscale.engine import Engine, scoring
from test_engine import TOL, mc_items, ref_result


def _check(model, tok, items, max_length=128):
    results = Engine(model, tok, max_length=max_length).run(items)
    for item, res in zip(items, results, strict=True):
        lps, greedy, _ = ref_result(model, tok, item, max_length)
        assert res.logprobs == pytest.approx(lps, abs=TOL), item
        if greedy is not None:
            assert res.is_greedy == greedy, item


def _spy(monkeypatch) -> dict[str, int]:
    calls = {"packed": 0, "two_phase": 0, "forwards": 0}
    packed, two_phase, forward = (scoring.SpanScorer._score_packed, scoring.SpanScorer._score_two_phase,
                                  scoring.SpanScorer._forward)

    def count(name, fn):
        def wrapped(self, *a, **k):
            calls[name] += 1
            return fn(self, *a, **k)
        return wrapped

    monkeypatch.setattr(scoring.SpanScorer, "_score_packed", count("packed", packed))
    monkeypatch.setattr(scoring.SpanScorer, "_score_two_phase", count("two_phase", two_phase))
    monkeypatch.setattr(scoring.SpanScorer, "_forward", count("forwards", forward))
    return calls


def test_multiple_choice_runs_packed_in_one_forward_per_batch(monkeypatch):
    calls = _spy(monkeypatch)
    model, tok = tiny_gemma3(), tiny_tokenizer(True)
    items = [it for it in mc_items() if it.output_type == "multiple_choice" and not it.contexts]
    _check(model, tok, items)
    assert calls["packed"] > 0 and calls["two_phase"] == 0
    assert calls["forwards"] == calls["packed"]  # no second pass, no cache


def test_eager_attention_takes_the_additive_mask():
    tok = tiny_tokenizer()
    model = tiny_llama()
    eager = type(model)(model.config.__class__(**{**model.config.to_dict(), "attn_implementation": "eager"}))
    eager.load_state_dict(model.state_dict())
    eager.eval()
    _check(eager, tok, mc_items())


def test_two_phase_path_gives_the_same_scores(monkeypatch):
    model, tok = tiny_gemma3(), tiny_tokenizer(True)
    items = mc_items()
    packed = Engine(model, tok).run(items)
    monkeypatch.setattr(scoring, "PACKED_MAX_ROW", 0)
    calls = _spy(monkeypatch)
    two_phase = Engine(model, tok).run(items)
    assert calls["packed"] == 0 and calls["two_phase"] > 0
    for a, b in zip(packed, two_phase, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=TOL) and a.is_greedy == b.is_greedy


def test_tree_mask_lets_a_choice_see_the_prefix_and_itself_only():
    model = tiny_llama()
    scorer = scoring.SpanScorer(model, pad_id=0)
    # prefix of 2, choice 1 of 2 tokens, choice 2 of 1 token, one padding column
    pos = torch.tensor([[0, 1, 2, 3, 2, 0]])
    seg = torch.tensor([[0, 0, 1, 1, 2, -1]])
    allowed = scorer._tree_masks(pos, seg)[0, 0] == 0
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ], dtype=torch.bool)
    assert torch.equal(allowed, expected)
