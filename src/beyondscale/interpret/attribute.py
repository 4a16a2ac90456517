"""Attributions of a continuation's log-likelihood to the input tokens, with captum; attention entropy.

The scalar explained is log p(target | text), summed over the target's tokens, tokenised exactly
as lm-eval scores a (context, continuation) pair. Attributions are computed on the input
embeddings (the model's own embedding module, so Gemma's scaling is included) and summed over
the embedding dimension, one number per context token; positive means the token raises the
target's log-likelihood.
- gradient x input (captum InputXGradient);
- integrated gradients (captum IntegratedGradients), from a baseline that puts the pad (else EOS)
  token's embedding at every context position but the first; their sum equals f(x) - f(baseline)
  up to the reported convergence delta (`ig_converged` says whether it is within 5%). The first
  position is kept because it is the attention sink: moving it off its usual embedding makes the
  path integral diverge (SmolLM2-135M, "The capital of France is" -> " Paris": delta 17 nats at
  64 steps and -14 at 256 with it moved; 0.004 at 64 with it kept), so its IG attribution is 0;
- feature ablation: f(x) - f(x with that token replaced by the baseline token) (captum FeatureAblation),
  the first position included.
Not an all-zero baseline: RMSNorm and LayerNorm are scale-invariant, so along a path from zero the
whole change happens within ~sqrt(eps) of the origin and the integral does not converge. The
target's own embeddings stay as they are, so only the context is explained.
Attention entropy: per layer and head, the mean over query positions of the entropy (nats) of the
attention distribution, from the eager attention weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from beyondscale.errors import UserError

PROBE_VERSION = "attribute-1"
METHODS = ("gradient_x_input", "integrated_gradients", "feature_ablation")


@dataclass
class Prepared:
    ids: torch.Tensor  # (1, n) context + target
    n_context: int
    tokens: list[str]


def prepare(tokenizer: Any, text: str, target: str, max_length: int) -> Prepared:
    from beyondscale.engine.tokens import LmEvalTokenizer

    if not text.strip():
        raise UserError("--text: empty text; nothing to attribute to")
    if not target.strip():
        raise UserError("--target: empty target; there is no continuation to explain")
    ctx, cont = LmEvalTokenizer(tokenizer).encode_pair(text, target)
    if not cont:
        raise UserError("--target: encodes to zero tokens; nothing to explain")
    if len(ctx) + len(cont) > max_length:
        raise UserError(f"--text/--target: {len(ctx) + len(cont)} tokens, longer than the model's context "
                        f"of {max_length}")
    ids = torch.tensor([ctx + cont])
    return Prepared(ids, len(ctx), tokenizer.convert_ids_to_tokens(ids[0].tolist()))


def target_logprob(model: Any, n_context: int, ids: torch.Tensor):
    """f(embeds) = sum of log p(target token | everything before it), one value per batch row."""
    targets = ids[0, n_context:]

    def f(embeds: torch.Tensor) -> torch.Tensor:
        logits = model(inputs_embeds=embeds).logits.float()
        logp = torch.log_softmax(logits[:, n_context - 1 : -1], -1)
        return logp.gather(-1, targets.expand(embeds.shape[0], -1)[..., None])[..., 0].sum(-1)

    return f


def _baseline_embedding(model: Any, tokenizer: Any) -> torch.Tensor:
    """The pad (else EOS) token's embedding: a zero vector would sit where RMS/LayerNorm is discontinuous."""
    token = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if token is None:
        raise UserError("tokenizer: has neither a pad nor an EOS token to use as the attribution baseline")
    device = model.get_input_embeddings().weight.device
    return model.get_input_embeddings()(torch.tensor([token], device=device))[0].detach()


def attributions(model: Any, tokenizer: Any, prep: Prepared, n_steps: int = 64) -> dict[str, Any]:
    from captum.attr import FeatureAblation, InputXGradient, IntegratedGradients

    embeds = model.get_input_embeddings()(prep.ids.to(model.device)).detach()
    f = target_logprob(model, prep.n_context, prep.ids.to(model.device))
    n = prep.n_context
    ablated = embeds.clone()  # every context token replaced; the target's own embeddings stay
    ablated[:, :n] = _baseline_embedding(model, tokenizer)
    baseline = ablated.clone()  # integrated gradients: the first position (attention sink) stays too
    baseline[:, :1] = embeds[:, :1]
    position = torch.arange(embeds.shape[1], device=embeds.device).clamp(max=n)  # target tokens: one group, unused
    mask = position[None, :, None].expand_as(embeds)
    with torch.no_grad():
        value, base_value = float(f(embeds)), float(f(baseline))
    gxi = InputXGradient(f).attribute(embeds.clone().requires_grad_())
    ig, delta = IntegratedGradients(f).attribute(embeds, baselines=baseline, n_steps=n_steps,
                                                 internal_batch_size=16, return_convergence_delta=True)
    with torch.no_grad():
        ablation = FeatureAblation(f).attribute(embeds, baselines=ablated, feature_mask=mask)
    per_token = {name: a.detach()[0].sum(-1)[:n].tolist() for name, a in (("gradient_x_input", gxi),
                                                                         ("integrated_gradients", ig))}
    per_token["feature_ablation"] = ablation.detach()[0, :, 0][:n].tolist()
    delta_abs = float(delta.abs().max())
    return {"target_logprob": value, "baseline_logprob": base_value, "baseline_token_id": _baseline_id(tokenizer),
            "ig_convergence_delta": delta_abs, "ig_converged": delta_abs <= 0.05 * abs(value - base_value) + 0.01,
            "context_tokens": prep.tokens[:n], "target_tokens": prep.tokens[n:], "attributions": per_token}


def _baseline_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def attention_entropy(model: Any, ids: torch.Tensor) -> list[list[float]]:
    """[layer][head] mean entropy (nats) of the attention distributions over query positions."""
    previous = getattr(model.config, "_attn_implementation", None)
    try:
        model.set_attn_implementation("eager")
        with torch.no_grad():
            out = model(input_ids=ids.to(model.device), output_attentions=True)
    except (ValueError, AttributeError, TypeError) as err:
        raise UserError(f"{type(model).__name__}: attention weights are not available ({err})") from None
    finally:
        if previous and previous != "eager":
            model.set_attn_implementation(previous)
    if not getattr(out, "attentions", None):
        raise UserError(f"{type(model).__name__}: the model returned no attention weights")
    rows = []
    for att in out.attentions:  # (batch, heads, query, key)
        p = att[0].float()
        ent = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)  # (heads, query)
        rows.append(ent.mean(-1).tolist())
    return rows


def attribute_html(doc: dict[str, Any]) -> str:
    """Shaded context tokens per method (red raises the target's log-likelihood, blue lowers it)."""
    from beyondscale.interpret.html import heat_table, shaded_tokens

    target = "".join(doc["target_tokens"])
    parts = [shaded_tokens(doc["context_tokens"], scores, f"{method} (target: {target})")
             for method, scores in doc["attributions"].items()]
    ent = doc.get("attention_entropy")
    if ent:
        parts.append(heat_table("attention entropy (nats), layer x head", [f"layer {i}" for i in range(len(ent))],
                                [f"h{j}" for j in range(len(ent[0]))], ent))
    return "".join(parts)


def shaded_text(tokens: list[str], scores: list[float], tokenizer: Any) -> Any:
    """A rich Text with each token's background shaded by its score."""
    from rich.text import Text

    vmax = max((abs(s) for s in scores), default=0.0) or 1.0
    out = Text()
    for tok, score in zip(tokens, scores, strict=True):
        a = min(1.0, abs(score) / vmax)
        base = (220, 50, 47) if score >= 0 else (38, 139, 210)
        r, g, b = (round(255 - (255 - c) * a) for c in base)
        out.append(tokenizer.convert_tokens_to_string([tok]), style=f"black on rgb({r},{g},{b})")
    return out
