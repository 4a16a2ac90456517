"""Model shapes from size flags: dense = Llama, sparse = Mixtral, as plain Hugging Face configs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from transformers import LlamaConfig, MixtralConfig, PretrainedConfig

from beyondscale.errors import UserError

Arch = Literal["dense", "moe"]


@dataclass
class Shape:
    """Size flags. The defaults train in a couple of minutes on 2 CPU cores (a tiny model)."""

    d_model: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int | None = None
    d_ff: int | None = None  # per expert for MoE; default 8/3 d_model rounded up to a multiple of 32
    context_length: int = 128
    n_experts: int = 8
    top_k: int = 2
    tie_embeddings: bool = True

    @property
    def ffn(self) -> int:
        return self.d_ff or -(-int(8 * self.d_model / 3) // 32) * 32

    def to_dict(self) -> dict:
        return asdict(self)


def validate(arch: str, shape: Shape) -> None:
    """One clear line per impossible shape, before anything is written."""
    if arch not in ("dense", "moe"):
        raise UserError(f"--arch {arch}: expected dense or moe")
    for flag, value in (("--d-model", shape.d_model), ("--n-layer", shape.n_layer), ("--n-head", shape.n_head),
                        ("--context-length", shape.context_length), ("--d-ff", shape.ffn)):
        if value < 1:
            raise UserError(f"{flag} {value}: must be positive")
    if shape.d_model % shape.n_head:
        raise UserError(f"--d-model {shape.d_model}: not divisible by --n-head {shape.n_head}")
    if shape.n_kv_head is not None and (shape.n_kv_head < 1 or shape.n_head % shape.n_kv_head):
        raise UserError(f"--n-kv-head {shape.n_kv_head}: must divide --n-head {shape.n_head}")
    if arch == "moe":
        if shape.n_experts < 1 or shape.top_k < 1:
            raise UserError("--n-experts and --top-k must be positive")
        if shape.top_k > shape.n_experts:
            raise UserError(f"--top-k {shape.top_k}: num_experts_per_tok must not exceed num_local_experts "
                            f"(--n-experts {shape.n_experts})")


def build_config(arch: Arch, shape: Shape, vocab_size: int, eos_id: int, *, aux_coef: float = 0.01) -> PretrainedConfig:
    """A LlamaConfig or MixtralConfig; RoPE, RMSNorm, SwiGLU, no biases, no dropout, SDPA attention."""
    common = dict(
        vocab_size=vocab_size, hidden_size=shape.d_model, intermediate_size=shape.ffn,
        num_hidden_layers=shape.n_layer, num_attention_heads=shape.n_head,
        num_key_value_heads=shape.n_kv_head or shape.n_head, max_position_embeddings=shape.context_length,
        bos_token_id=eos_id, eos_token_id=eos_id, tie_word_embeddings=shape.tie_embeddings,
        initializer_range=0.02, rms_norm_eps=1e-5, attn_implementation="sdpa", use_cache=True,
    )
    if arch == "dense":
        return LlamaConfig(**common, attention_bias=False, mlp_bias=False)
    return MixtralConfig(**common, num_local_experts=shape.n_experts, num_experts_per_tok=shape.top_k,
                         router_aux_loss_coef=aux_coef, output_router_logits=False, sliding_window=None,
                         router_jitter_noise=0.0)


def neox_init(model: Any, seed: int) -> None:
    """GPT-NeoX initialisation (Black et al. 2022; litgpt's pretraining default): every matrix N(0, sqrt(2/(5d)));
    the projections back into the residual stream (attention output, MLP/expert down) N(0, 1/(sqrt(d) n_layer))."""
    import math

    import torch

    d, n_layer = model.config.hidden_size, model.config.num_hidden_layers
    small, out = math.sqrt(2.0 / (5 * d)), 1.0 / math.sqrt(d) / n_layer
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() < 2:
                continue
            std = out if name.endswith(("o_proj.weight", "down_proj.weight", "experts.down_proj")) else small
            p.copy_(torch.randn(p.shape, generator=gen) * std)
