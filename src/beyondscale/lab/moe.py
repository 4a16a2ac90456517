"""A fast sparse-MoE block that computes the same function as transformers' `MixtralSparseMoeBlock`.

Routing is Mixtral's: softmax over the router logits (in float32), top-k, the k weights renormalised
to sum to one. Tokens are then sorted by expert so each expert runs one matmul on a contiguous block
of only its own tokens; the expert weights are `unbind`-ed views, so the backward pass writes each
expert's gradient once instead of a full-size zero tensor per expert (the cost of indexing a 3-D
parameter per expert, as the reference loop does).

The block keeps the reference module's parameters (`gate.weight`, `experts.gate_up_proj`,
`experts.down_proj`), so a model's state dict is unchanged and plain `MixtralForCausalLM` loads it.
Each forward leaves its router statistics on `self.last` for the auxiliary losses and the logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class RouterStats:
    logits: torch.Tensor  # (tokens, experts), as computed
    probs: torch.Tensor  # (tokens, experts) float32 softmax
    counts: torch.Tensor  # (experts,) routed token-assignments (sums to tokens * top_k)


def route(logits: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mixtral routing: float32 softmax, top-k, renormalised weights. Returns (probs, weights, experts)."""
    probs = torch.softmax(logits.float(), dim=-1)
    weights, experts = torch.topk(probs, top_k, dim=-1)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    return probs, weights, experts


class FastSparseMoe(nn.Module):
    """Drop-in replacement for a `MixtralSparseMoeBlock` (jitter noise is not supported: the lab uses none)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.gate = block.gate
        self.experts = block.experts
        self.top_k = int(block.top_k)
        self.num_experts = int(block.experts.num_experts)
        self.act_fn = block.experts.act_fn
        self.last: RouterStats | None = None

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        shape = hidden_states.shape
        h = hidden_states.reshape(-1, shape[-1])
        logits = F.linear(h, self.gate.weight)
        probs, weights, experts = route(logits, self.top_k)
        flat = experts.reshape(-1)
        order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=self.num_experts)
        token_of = order // self.top_k
        grouped = h[token_of]
        gate_up, down = self.experts.gate_up_proj.unbind(0), self.experts.down_proj.unbind(0)
        outs = []
        for e, chunk in enumerate(grouped.split(counts.tolist())):
            if chunk.shape[0]:
                g, u = F.linear(chunk, gate_up[e]).chunk(2, dim=-1)
                outs.append(F.linear(self.act_fn(g) * u, down[e]))
        y = torch.cat(outs) * weights.reshape(-1)[order].unsqueeze(-1).to(h.dtype)
        out = torch.zeros_like(h).index_add_(0, token_of, y.to(h.dtype))
        self.last = RouterStats(logits, probs, counts.detach())
        return out.reshape(shape)


def install_fast_moe(model: nn.Module) -> list[FastSparseMoe]:
    """Swap every Mixtral MoE block of `model` for `FastSparseMoe` (same parameters); return them in order."""
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    blocks = []
    for layer in model.model.layers:
        if isinstance(layer.mlp, MixtralSparseMoeBlock):
            layer.mlp = FastSparseMoe(layer.mlp)
        if isinstance(layer.mlp, FastSparseMoe):
            blocks.append(layer.mlp)
    return blocks


def load_balancing_loss(probs: torch.Tensor, counts: torch.Tensor, top_k: int) -> torch.Tensor:
    """Switch Transformer (Fedus et al. 2021, eq. 4-6) for one layer: N * sum_i f_i * P_i.

    f_i is the fraction of the layer's routed assignments that went to expert i (counts / (tokens * k)),
    P_i the mean router probability of expert i. Perfect balance gives 1.0.
    """
    n_experts = probs.shape[-1]
    f = counts.to(probs.dtype) / (probs.shape[0] * top_k)
    return n_experts * torch.sum(f * probs.mean(dim=0))


def router_z_loss(logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE (Zoph et al. 2022, eq. 5): mean over tokens of logsumexp(router logits)^2."""
    return torch.logsumexp(logits.float(), dim=-1).square().mean()


def aux_losses(blocks: list[FastSparseMoe]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-layer load-balancing and z losses, averaged over layers (each layer balanced on its own)."""
    lb = torch.stack([load_balancing_loss(b.last.probs, b.last.counts, b.top_k) for b in blocks]).mean()
    z = torch.stack([router_z_loss(b.last.logits) for b in blocks]).mean()
    return lb, z


def load_summary(counts: torch.Tensor) -> dict[str, float | list[float]]:
    """Expert load (fraction of routed assignments), its entropy normalised to [0, 1], and max/mean imbalance."""
    load = counts.double() / counts.sum().clamp(min=1)
    nz = load[load > 0]
    entropy = float(-(nz * nz.log()).sum() / torch.log(torch.tensor(float(len(load))))) if len(load) > 1 else 1.0
    return {"load": [round(float(x), 6) for x in load], "entropy": entropy,
            "imbalance": float(load.max() * len(load))}
