"""`ModelFacts`: the size axes every analysis plots against, computed from the loaded model.

Parameter counts come from the module tree (shared/tied tensors counted once). MoE layers are
recognised by parameters under an `experts` module: only `experts_per_token / n_experts` of them
are active per token. Forward FLOPs per token follow Kaplan et al. (2020): 2 x the parameters a
token multiplies through (the output projection included, the input-embedding lookup excluded),
plus attention 2 x n_layer x ctx x d_model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from beyondscale.keys import content_key

REFERENCE_CTX = 1024  # context length at which `flops_per_token` is stored (see flops_at)


@dataclass
class ModelFacts:
    params_total: int
    params_embedding: int
    params_non_embedding: int
    params_active: int
    params_experts: int
    flops_per_token: float
    attn_flops_per_ctx_token: float
    bytes_on_disk: int
    dtype: str
    weights_format: str
    architecture: str
    model_type: str
    n_layer: int
    d_model: int
    vocab_size: int
    max_context: int
    n_experts: int = 0
    experts_per_token: int = 0
    training_tokens: float | None = None
    training_flops: float | None = None
    quantization: str | None = None  # "gguf:Q4_K_M", "fp8:8bit", ... or None for plain float weights
    tokenizer_key: str | None = None  # content hash of the tokenizer (vocabulary, merges, rules)
    bytes_in_memory: int | None = None  # weights + buffers as loaded (after any quantisation), shared storage once

    def flops_at(self, ctx: int) -> float:
        """Forward FLOPs per token when attending over `ctx` previous tokens."""
        return self.flops_per_token - self.attn_flops_per_ctx_token * REFERENCE_CTX + self.attn_flops_per_ctx_token * ctx

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelFacts:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _cfg(config: Any, *names: str, default: int = 0) -> int:
    text = getattr(config, "text_config", None)
    for source in (config, text):
        for name in names:
            value = getattr(source, name, None) if source is not None else None
            if isinstance(value, int) and value > 0:
                return value
    return default


@dataclass(frozen=True)
class FlopShape:
    """What forward FLOPs depend on: matmul parameters before the output projection, the projection,
    and per layer the attention width and window (None: full causal attention).

    `forward(start, end, logits)` is the cost of running positions [start, end) of one sequence
    whose earlier positions are cached, with the vocabulary projection computed at `logits` of them:
    2 x matmul parameters per position, 2 x d_attn x ctx per layer and position (ctx = the tokens
    it attends to, capped by a sliding window), 2 x d_model x vocab per computed logits row.
    """

    body_params: int  # weight matrices before the output projection (norm/bias vectors excluded)
    head_params: int
    d_attn: int
    windows: tuple[int | None, ...]

    def forward(self, start: int, end: int, logits: int) -> float:
        n = max(0, end - start)
        attended = sum(_attended(start, end, w) for w in self.windows)
        return 2.0 * self.body_params * n + 2.0 * self.d_attn * attended + 2.0 * self.head_params * logits


def _attended(start: int, end: int, window: int | None) -> int:
    """Sum over positions p in [start, end) of the tokens p attends to: min(p + 1, window)."""
    def upto(k: int) -> int:  # sum of min(p + 1, window) for p < k
        if window is None or k <= window:
            return k * (k + 1) // 2
        return window * (window + 1) // 2 + (k - window) * window
    return upto(end) - upto(start) if end > start else 0


def _windows(config: Any, n_layer: int) -> tuple[int | None, ...]:
    """Per-layer attention window from `layer_types` (sliding layers use `sliding_window`)."""
    text = getattr(config, "text_config", None) or config
    types = getattr(text, "layer_types", None) or []
    window = getattr(text, "sliding_window", None)
    if not isinstance(window, int) or window <= 0:
        window = None
    return tuple(
        window if i < len(types) and types[i] == "sliding_attention" else None for i in range(n_layer)
    )


def flop_shape(model: torch.nn.Module) -> FlopShape:
    """The FlopShape of a loaded HF causal LM (same parameter roles as `compute_facts`)."""
    c = _counts(model)
    return FlopShape(c["matmul"] - c["head"] - c["vectors"], c["head"], c["d_attn"], _windows(model.config, c["n_layer"]))


def _counts(model: torch.nn.Module) -> dict[str, int]:
    """Parameter counts by role and the shape figures FLOPs need."""
    config = model.config
    seen: set[int] = set()
    total = experts = vectors = 0
    for name, param in model.named_parameters(remove_duplicate=True):
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        vectors += param.numel() if param.dim() < 2 else 0  # norms and biases: no matmul
        if ".experts." in name or name.endswith(".experts"):
            experts += param.numel()

    input_emb = model.get_input_embeddings()
    output_emb = model.get_output_embeddings()
    input_params = sum(p.numel() for p in input_emb.parameters()) if input_emb is not None else 0
    tied = output_emb is not None and input_emb is not None and output_emb.weight is input_emb.weight
    output_params = 0 if (output_emb is None or tied) else sum(p.numel() for p in output_emb.parameters())
    position_params = sum(
        p.numel() for n, p in model.named_parameters() if n.endswith(("wpe.weight", "embed_positions.weight"))
    )
    n_experts = _cfg(config, "num_local_experts", "num_experts", "n_routed_experts")
    top_k = _cfg(config, "num_experts_per_tok", "moe_top_k", "top_k")
    active = total - experts + (experts * top_k // n_experts if n_experts and top_k else experts)
    d_model = _cfg(config, "hidden_size", "n_embd", "d_model")
    vocab = _cfg(config, "vocab_size")
    head = vocab * d_model if tied or output_emb is None else output_params
    # Matmul parameters a token passes through: everything active except lookup tables; the
    # output projection is a real matmul even when tied to the input embedding.
    matmul = active - input_params - position_params + (vocab * d_model if tied or output_emb is None else 0)
    return {
        "total": total, "experts": experts, "vectors": vectors, "embedding": input_params + output_params + position_params,
        "n_experts": n_experts, "top_k": top_k, "active": active, "matmul": matmul, "head": head,
        "n_layer": _cfg(config, "num_hidden_layers", "n_layer", "num_layers"), "d_model": d_model,
        "vocab": vocab,
        "d_attn": _cfg(config, "num_attention_heads", "n_head") * _cfg(config, "head_dim") or d_model,
    }


def quantization_label(weights_format: str, quantization_config: Any) -> str | None:
    """"gguf:<type>" for GGUF weights, "<method>[:<bits>bit]" for a quantisation_config, else None.

    GGUF weights are de-quantised to floats for evaluation, but their values keep the quantisation
    error, which is what changes scores."""
    if weights_format.startswith("gguf"):
        return weights_format
    if not quantization_config:
        return None
    cfg = quantization_config if isinstance(quantization_config, dict) else quantization_config.to_dict()
    method = str(cfg.get("quant_method") or "quantized")
    bits = cfg.get("bits") or cfg.get("weight_bits") or (4 if cfg.get("load_in_4bit") else 8 if cfg.get("load_in_8bit") else None)
    return f"{method}:{bits}bit" if bits else method


def tokenizer_key(tokenizer: Any) -> str | None:
    """Hash of what decides how text becomes tokens: the fast tokenizer's full definition (vocabulary,
    merges, normalizer, pre-tokenizer, post-processor) and the special tokens; a slow tokenizer's vocabulary."""
    if tokenizer is None:
        return None
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else sorted(tokenizer.get_vocab().items())
    return content_key({"tokenizer": body, "special": tokenizer.special_tokens_map})


def compute_facts(
    model: torch.nn.Module,
    *,
    bytes_on_disk: int,
    weights_format: str,
    lab_record: dict | None = None,
    tokenizer: Any = None,
) -> ModelFacts:
    """Count parameters by role and derive FLOPs/token for a loaded HF causal LM."""
    config = model.config
    c = _counts(model)
    total, experts, embedding, n_experts = c["total"], c["experts"], c["embedding"], c["n_experts"]
    n_layer, d_model, vocab, top_k, active = c["n_layer"], c["d_model"], c["vocab"], c["top_k"], c["active"]
    attn_per_ctx = 2.0 * n_layer * c["d_attn"]
    flops = 2.0 * c["matmul"] + attn_per_ctx * REFERENCE_CTX

    record = lab_record or {}
    dtype = next(model.parameters()).dtype
    return ModelFacts(
        params_total=total,
        params_embedding=embedding,
        params_non_embedding=total - embedding,
        params_active=active,
        params_experts=experts,
        flops_per_token=flops,
        attn_flops_per_ctx_token=attn_per_ctx,
        bytes_on_disk=bytes_on_disk,
        dtype=str(dtype).removeprefix("torch."),
        weights_format=weights_format,
        architecture=(getattr(config, "architectures", None) or [type(model).__name__])[0],
        model_type=getattr(config, "model_type", "") or "",
        n_layer=n_layer,
        d_model=d_model,
        vocab_size=vocab,
        max_context=_cfg(config, "max_position_embeddings", "n_positions", "n_ctx"),
        n_experts=n_experts,
        experts_per_token=top_k if n_experts else 0,
        training_tokens=record.get("tokens"),  # the record's names (ModelRef.lab_record reads old ones)
        training_flops=record.get("train_flops"),
        quantization=quantization_label(weights_format, getattr(config, "quantization_config", None)),
        tokenizer_key=tokenizer_key(tokenizer),
    )
