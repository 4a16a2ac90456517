"""The fast MoE block is Mixtral's function; the auxiliary losses and FLOP counts match hand computation."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from _lab_helpers import one_thread as _lab_one_thread

one_thread = pytest.fixture(autouse=True)(_lab_one_thread)


def _config(**kw):
    from transformers import MixtralConfig

    base = dict(vocab_size=50, hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=10,
                router_jitter_noise=0.0)
    base.update(kw)
    return MixtralConfig(**base)


def _reference_block(impl: str = "eager", seed: int = 0, **kw):
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    config = _config(**kw)
    config._experts_implementation = impl
    torch.manual_seed(seed)
    block = MixtralSparseMoeBlock(config)
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.5)
    return block


def _naive(block, x: torch.Tensor) -> torch.Tensor:
    """Token by token: softmax, the k largest, weights renormalised, sum of weighted SwiGLU experts."""
    gate_up, down = block.experts.gate_up_proj, block.experts.down_proj
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        probs = torch.softmax(block.gate.weight @ x[t], dim=0)
        top = sorted(range(len(probs)), key=lambda e: -float(probs[e]))[: block.top_k]
        norm = sum(float(probs[e]) for e in top)
        for e in top:
            g, u = (gate_up[e] @ x[t]).chunk(2)
            out[t] += float(probs[e]) / norm * (down[e] @ (F.silu(g) * u))
    return out


@pytest.mark.parametrize("impl", ["eager", "grouped_mm"])
def test_fast_block_equals_transformers_mixtral_block_outputs_and_gradients(impl):
    from beyondscale.lab.moe import FastSparseMoe

    ref = _reference_block(impl)
    fast = FastSparseMoe(copy.deepcopy(ref))
    x = torch.randn(3, 7, 8, generator=torch.Generator().manual_seed(1))
    x_ref, x_fast = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref, y_fast = ref(x_ref), fast(x_fast)
    torch.testing.assert_close(y_fast, y_ref, rtol=1e-5, atol=1e-6)
    (y_ref * torch.arange(8.0)).sum().backward()
    (y_fast * torch.arange(8.0)).sum().backward()
    torch.testing.assert_close(x_fast.grad, x_ref.grad, rtol=1e-5, atol=1e-6)
    for (name, p_ref), p_fast in zip(ref.named_parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(p_fast.grad, p_ref.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_top_k_routing_renormalises_like_a_token_by_token_loop():
    from beyondscale.lab.moe import FastSparseMoe, route

    block = _reference_block(num_local_experts=5, num_experts_per_tok=3)
    x = torch.randn(11, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(FastSparseMoe(block)(x[None])[0], _naive(block, x), rtol=1e-5, atol=1e-6)
    probs, weights, experts = route(torch.tensor([[0.0, math.log(3.0), math.log(6.0)]]), top_k=2)
    assert experts.tolist() == [[2, 1]]
    torch.testing.assert_close(weights, torch.tensor([[6 / 9, 3 / 9]]))  # 0.6 and 0.3 renormalised


def test_load_balancing_loss_matches_the_switch_formula_on_hand_examples():
    from beyondscale.lab.moe import load_balancing_loss, route

    # k=1, 2 experts: argmax -> experts 0,0,1,0: f = (3/4, 1/4); P = (0.6, 0.4); 2 * (0.45 + 0.10) = 1.1
    probs = torch.tensor([[0.7, 0.3], [0.6, 0.4], [0.2, 0.8], [0.9, 0.1]])
    counts = torch.bincount(route(probs.log(), 1)[2].flatten(), minlength=2)
    assert float(load_balancing_loss(probs, counts, top_k=1)) == pytest.approx(1.1)
    # k=2, 3 experts: picks {0,1} and {1,2}: f = (1, 2, 1) / 4; P = (0.3, 0.45, 0.25); 3 * 0.3625 = 1.0875
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    counts = torch.bincount(route(probs.log(), 2)[2].flatten(), minlength=3)
    assert float(load_balancing_loss(probs, counts, top_k=2)) == pytest.approx(1.0875)
    # perfectly balanced routing gives 1
    assert float(load_balancing_loss(torch.full((4, 4), 0.25), torch.tensor([2, 2, 2, 2]), 2)) == pytest.approx(1.0)


def test_router_z_loss_by_hand_and_losses_are_per_layer():
    from beyondscale.lab.moe import FastSparseMoe, aux_losses, load_balancing_loss, router_z_loss

    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])  # logsumexp: ln 2, ln 4
    assert float(router_z_loss(logits)) == pytest.approx((math.log(2) ** 2 + math.log(4) ** 2) / 2)
    blocks = [FastSparseMoe(_reference_block(seed=s)) for s in (0, 1)]
    for s, b in enumerate(blocks):
        b.requires_grad_(False)
        b(torch.randn(1, 9, 8, generator=torch.Generator().manual_seed(10 + s)))
    balance, _ = aux_losses(blocks)
    each = [float(load_balancing_loss(b.last.probs, b.last.counts, 2)) for b in blocks]
    assert float(balance) == pytest.approx(sum(each) / 2)


def test_training_flops_from_routed_tokens_match_hand_count_and_torch_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    from beyondscale.lab.flops import forward_flops, training_flops
    from beyondscale.lab.moe import FastSparseMoe

    config = _config()
    # per token, by hand: attention projections 4*8*8=256 + router 8*4=32 per layer, x2 layers, + head 8*50
    dense_macs = 2 * (256 + 32) + 400
    attention = 2 * 2 * 10 * 8  # 2 * n_layer * ctx * d_attn
    expected_forward = 10 * (2 * dense_macs + attention) + 2 * (3 * 8 * 16) * 37
    assert forward_flops(config, 10, 10, expert_assignments=37) == expected_forward
    assert training_flops(config, 10, 10, expert_assignments=37) == 3 * expected_forward
    # the expert part, counted by torch on the block itself from the tokens each expert received
    block = FastSparseMoe(_reference_block())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        block(torch.randn(1, 10, 8, generator=torch.Generator().manual_seed(3)))
    assignments = int(block.last.counts.sum())
    assert counter.get_total_flops() == 2 * 10 * 8 * 4 + 2 * 3 * 8 * 16 * assignments


def test_moe_run_logs_per_layer_load(tmp_path):
    from _lab_helpers import tiny_request, write_corpus
    from beyondscale.lab.run import train_model

    record = train_model(tiny_request(write_corpus(tmp_path / "c.txt"), tmp_path / "m", "moe", tokens=2048))
    assert len(record["moe_layers"]) == 2
    for layer in record["moe_layers"]:
        assert sum(layer["load"]) == pytest.approx(1.0, abs=1e-5) and len(layer["load"]) == 4
        assert 0 < layer["entropy"] <= 1 and layer["imbalance"] >= 1
    assert record["params_active"] < record["params_total"]
    per_expert = 3 * 32 * 96  # gate, up, down of one expert: d_model 32, d_ff 8/3 * 32 rounded up to 96
    assert record["params_total"] - record["params_active"] == 2 * (4 - 2) * per_expert  # 2 layers, 2 idle experts
