"""Expert routing statistics for any Mixtral-style Hugging Face model (transformers' or the lab's).

The router logits come from the model itself (`output_router_logits=True`, one tensor of
tokens x experts per MoE layer); routing is recomputed as Mixtral routes: float32 softmax, top-k.
Per layer: expert load (share of the tokens x k assignments), routing entropy (mean over tokens of
the router distribution's entropy, nats, and the entropy of the load), load imbalance (max load /
mean load: 1 is perfectly balanced, E means one expert takes everything), which token went to which
experts, and co-activation between consecutive layers (how often expert i in layer l and expert j
in layer l+1 both serve the same token).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from beyondscale.errors import UserError

PROBE_VERSION = "routing-1"


def top_k_of(config: Any) -> int:
    for name in ("num_experts_per_tok", "moe_top_k", "top_k", "num_selected_experts"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    raise UserError(f"{type(config).__name__}: no num_experts_per_tok (top-k) in the config")


def router_logits(model: Any, input_ids: torch.Tensor) -> list[torch.Tensor]:
    """Per MoE layer, the (tokens, experts) router logits of one sequence; one-line error when there are none."""
    name = type(model).__name__
    try:
        with torch.no_grad():
            out = model(input_ids=input_ids, output_router_logits=True)
    except TypeError:
        raise UserError(f"{name}: not a Mixture-of-Experts model (no output_router_logits)") from None
    logits = getattr(out, "router_logits", None)
    if not logits:
        raise UserError(f"{name}: the model returned no router logits (not a Mixtral-style MoE)")
    n = input_ids.shape[1]
    return [layer.reshape(-1, layer.shape[-1])[-n:].float() for layer in logits]


def layer_stats(logits: torch.Tensor, top_k: int) -> dict[str, Any]:
    probs = torch.softmax(logits, -1)
    experts = torch.topk(probs, top_k, -1).indices  # (tokens, k)
    n_experts = probs.shape[-1]
    counts = torch.bincount(experts.reshape(-1), minlength=n_experts)
    load = counts.float() / counts.sum()
    token_entropy = -(probs * torch.log(probs.clamp_min(1e-30))).sum(-1)
    load_entropy = -sum(float(p) * math.log(float(p)) for p in load if p > 0)
    return {"counts": counts.tolist(), "load": load.tolist(), "router_entropy": float(token_entropy.mean()),
            "load_entropy": load_entropy, "max_entropy": math.log(n_experts),
            "imbalance": float(load.max() * n_experts), "experts": experts.tolist()}


def coactivation(a: list[list[int]], b: list[list[int]], n_experts: int) -> list[list[int]]:
    """counts[i][j]: tokens served by expert i in one layer and by expert j in the next."""
    counts = [[0] * n_experts for _ in range(n_experts)]
    for ea, eb in zip(a, b, strict=True):
        for i in ea:
            for j in eb:
                counts[i][j] += 1
    return counts


def routing(model: Any, tokenizer: Any, text: str, max_length: int, name: str = "") -> dict[str, Any]:
    from beyondscale.interpret.lens import encode_text

    ids = encode_text(tokenizer, text, max_length)
    logits = router_logits(model, ids.to(model.device))
    top_k = top_k_of(model.config)
    per_layer = [layer_stats(lg, top_k) for lg in logits]
    n_experts = len(per_layer[0]["load"])
    tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
    return {
        "model": name or type(model).__name__, "n_layers": len(per_layer), "n_experts": n_experts, "top_k": top_k,
        "n_tokens": len(tokens), "tokens": tokens,
        "layers": [{"layer": i, **{k: v for k, v in s.items() if k != "experts"}} for i, s in enumerate(per_layer)],
        "token_experts": [[s["experts"][t] for s in per_layer] for t in range(len(tokens))],
        "coactivation": [{"layers": [i, i + 1],
                          "counts": coactivation(per_layer[i]["experts"], per_layer[i + 1]["experts"], n_experts)}
                         for i in range(len(per_layer) - 1)],
    }


def routing_html(doc: dict[str, Any]) -> str:
    """Heat maps: expert load per layer, and co-activation between consecutive layers."""
    from beyondscale.interpret.html import heat_table

    experts = [f"e{j}" for j in range(doc["n_experts"])]
    parts = [heat_table("expert load (share of assignments) per layer", [f"layer {r['layer']}" for r in doc["layers"]],
                        experts, [r["load"] for r in doc["layers"]])]
    for co in doc["coactivation"]:
        a, b = co["layers"]
        parts.append(heat_table(f"co-activation: layer {a} expert (rows) x layer {b} expert (columns)",
                                experts, experts, co["counts"], "{:.0f}"))
    parts.append(_token_table(doc))
    return "".join(parts)


def _token_table(doc: dict[str, Any]) -> str:
    from html import escape

    head = "".join(f"<th>layer {i}</th>" for i in range(doc["n_layers"]))
    rows = "".join(f"<tr><th>{escape(tok)}</th>" + "".join(f"<td>{escape(str(sorted(e)))}</td>" for e in experts)
                   + "</tr>" for tok, experts in zip(doc["tokens"], doc["token_experts"], strict=True))
    return f'<table class="bs-heat"><caption>experts per token</caption><tr><th>token</th>{head}</tr>{rows}</table>'
