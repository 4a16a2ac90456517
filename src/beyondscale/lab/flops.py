"""Training FLOPs from the shape and from the tokens each expert actually received.

Convention (Kaplan et al. 2020, as `beyondscale.models.facts`): a forward pass costs 2 FLOPs per
multiply-accumulate of every weight matmul a token goes through, plus 2 * n_layer * context * d_attn
for the attention scores and their weighted sum; a training step costs 3x the forward pass
(backward = 2x forward). Embedding lookups and norms are not counted. For MoE layers the expert
matmuls are counted per routed assignment, from the router's real counts, not from top_k.
"""

from __future__ import annotations

from typing import Any


def _get(config: Any, name: str, default: Any = None) -> Any:
    return getattr(config, name, default)


def dense_macs_per_token(config: Any) -> float:
    """Weight MACs per token outside the experts: attention projections, dense MLP or router, LM head."""
    d, n_layer = config.hidden_size, config.num_hidden_layers
    n_head = config.num_attention_heads
    head_dim = _get(config, "head_dim") or d // n_head
    n_kv = _get(config, "num_key_value_heads") or n_head
    attn = d * n_head * head_dim * 2 + d * n_kv * head_dim * 2
    n_experts = _get(config, "num_local_experts") or 0
    mlp = d * n_experts if n_experts else 3 * d * config.intermediate_size
    return float(n_layer * (attn + mlp) + d * config.vocab_size)


def expert_macs_per_assignment(config: Any) -> float:
    """One token through one SwiGLU expert: gate, up and down projections."""
    return float(3 * config.hidden_size * config.intermediate_size)


def attention_flops_per_token(config: Any, context_length: int) -> float:
    n_head = config.num_attention_heads
    head_dim = _get(config, "head_dim") or config.hidden_size // n_head
    return 2.0 * config.num_hidden_layers * context_length * n_head * head_dim


def forward_flops(config: Any, tokens: int, context_length: int, expert_assignments: float | None = None) -> float:
    """Forward FLOPs for `tokens` tokens; `expert_assignments` = routed (token, expert) pairs over all layers.

    When it is None for an MoE model, every token is assumed to reach top_k experts in every layer
    (exact for Mixtral routing, which drops no token).
    """
    flops = tokens * (2.0 * dense_macs_per_token(config) + attention_flops_per_token(config, context_length))
    n_experts = _get(config, "num_local_experts") or 0
    if n_experts:
        if expert_assignments is None:
            expert_assignments = tokens * config.num_hidden_layers * config.num_experts_per_tok
        flops += 2.0 * expert_macs_per_assignment(config) * expert_assignments
    return flops


def training_flops(config: Any, tokens: int, context_length: int, expert_assignments: float | None = None) -> float:
    """Forward + backward (3x forward)."""
    return 3.0 * forward_flops(config, tokens, context_length, expert_assignments)


def param_counts(model: Any) -> dict[str, int]:
    """Total, embedding and active parameters (per token: only top_k of the experts count)."""
    config = model.config
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    n_experts = _get(config, "num_local_experts") or 0
    idle = 0
    if n_experts:
        idle = config.num_hidden_layers * (n_experts - config.num_experts_per_tok) * int(expert_macs_per_assignment(config))
    return {"params_total": total, "params_embedding": embedding, "params_active": total - idle}
