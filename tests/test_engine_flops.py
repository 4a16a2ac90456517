"""ItemResult.flops against torch's own FLOP counter (matmuls actually executed) plus attention
counted position by position (Kaplan et al. 2020: 2 x d_attn x attended tokens per layer)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from _tiny_models import tiny_gemma3, tiny_llama, tiny_tokenizer
from beyondscale.engine import Engine, Item


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def attention_flops(model, positions: list[int]) -> float:
    """Naive per-layer, per-position sum; sliding layers attend to at most `sliding_window` tokens."""
    cfg = model.config
    d_attn = cfg.num_attention_heads * (getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    types = getattr(cfg, "layer_types", None) or ["full_attention"] * cfg.num_hidden_layers
    total = 0
    for kind in types:
        for p in positions:
            total += min(p + 1, cfg.sliding_window) if kind == "sliding_attention" else p + 1
    return 2.0 * d_attn * total


def run_counted(engine: Engine, item: Item):
    with FlopCounterMode(display=False) as counter:
        (result,) = engine.run([item])
    ops = counter.get_flop_counts()["Global"]
    # linear layers (mm/addmm); sdpa is not counted, nor the rotary table's tiny bmm (older transformers)
    return result, float(sum(v for op, v in ops.items() if str(op) in ("aten.mm", "aten.addmm")))


@pytest.mark.parametrize("make_model", [tiny_llama, tiny_gemma3])
def test_rolling_item_flops(make_model) -> None:
    model, tok = make_model(), tiny_tokenizer(make_model is tiny_gemma3)
    engine = Engine(model, tok)
    item = Item(0, "loglikelihood_rolling", text="the cat sat on the mat and the dog ran to the big red house")
    result, matmuls = run_counted(engine, item)
    n = result.tokens_in
    assert n > 8  # longer than gemma's window of 4
    assert result.flops == pytest.approx(matmuls + attention_flops(model, list(range(n))))


def test_shared_prefix_counted_once_and_logits_only_where_scored() -> None:
    model, tok = tiny_llama(), tiny_tokenizer()
    engine = Engine(model, tok)
    item = Item(0, "multiple_choice", context="The quick fox jumped over the", continuations=(" cat", " dog", " sun"),
                choices=("cat", "dog", "sun"), gold=0)
    ctx = tok.encode("The quick fox jumped over the")
    assert all(len(tok.encode(" " + w)) == 1 for w in ("cat", "dog", "sun"))
    result, matmuls = run_counted(engine, item)
    assert result.tokens_in == len(ctx)  # one forward over the shared context
    assert result.flops == pytest.approx(matmuls + attention_flops(model, list(range(len(ctx)))))
    # an independent count: the context's matmuls once, the 12800-parameter head at one position
    shape = engine.flop_shape
    assert matmuls == pytest.approx(2 * shape.body_params * len(ctx) + 2 * shape.head_params)


def test_generation_flops_prefill_plus_fed_back_tokens() -> None:
    model, tok = tiny_llama(), tiny_tokenizer()
    engine = Engine(model, tok)
    item = Item(0, "generate_until", context="the cat sat on the", until=(), max_gen_toks=6)
    result, matmuls = run_counted(engine, item)
    prompt, out = result.tokens_in, result.tokens_out
    assert out >= 2
    positions = list(range(prompt)) + list(range(prompt, prompt + out - 1))
    assert result.flops == pytest.approx(matmuls + attention_flops(model, positions))
