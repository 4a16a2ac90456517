"""Logit lens for any Hugging Face causal LM, without model-specific code.

Each layer's residual stream is read through the model's own final norm and unembedding, as if
the network stopped there (nostalgebraist 2020). The parts are found structurally:

- residual stream: `output_hidden_states=True` (entry 0 = embedding output, entry i = after block i);
- unembedding: `model.get_output_embeddings()` (weight and optional bias), plus the final logit
  soft-capping a config declares (`final_logit_softcapping`, Gemma 2/3);
- final norm: the last normalisation module among the direct children of `model.base_model`
  (`norm`, `ln_f`, `final_layernorm`, ... whatever its name).

transformers returns the *already normed* last hidden state as the last entry of `hidden_states`,
so the norm is re-applied to entries 0..L-1 only (applying it twice is the bug class of
TransformerLens issue 1076). Before trusting the parts, the lens checks that norm + unembedding
reproduce the model's own logits at the last position; if not, it refuses in one line.

The layers x positions x vocabulary tensor is never built: for a block of positions, all layers'
logits are computed one vocabulary chunk at a time and reduced on the fly (online log-sum-exp,
running arg-max, the KL numerator), so memory is bounded by `budget` floats whatever the
vocabulary and depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from beyondscale.errors import UserError

PROBE_VERSION = "lens-1"
DEFAULT_BUDGET = 1 << 23  # floats of logits alive at once (32 MiB in fp32)
_MIN_CHUNK = 64


@dataclass
class LensParts:
    """What the lens needs: the final norm module, the unembedding weight/bias and the soft-cap."""

    norm: torch.nn.Module
    weight: torch.Tensor
    bias: torch.Tensor | None
    softcap: float | None
    norm_last: bool = False  # True only for a model whose last hidden state is not normed


@dataclass
class LayerStats:
    """Per-layer sums over positions (divide by n for means) and per-position agreement."""

    kl: torch.Tensor  # (layers, positions) nats
    agrees: torch.Tensor  # (layers, positions) bool
    p_final_top1: torch.Tensor  # (layers, positions)


def _is_norm(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.LayerNorm) or "norm" in type(module).__name__.lower()


def find_parts(model: Any) -> LensParts:
    """Locate final norm and unembedding structurally; one-line UserError when they are absent."""
    name = type(model).__name__
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    weight = getattr(head, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise UserError(f"{name}: no output embedding (get_output_embeddings) to read the residual stream through")
    base = getattr(model, "base_model", None)
    norms = [m for m in base.children() if _is_norm(m)] if isinstance(base, torch.nn.Module) else []
    if not norms or base is model:
        raise UserError(f"{name}: no final normalisation module found among the base model's children")
    bias = getattr(head, "bias", None)
    cap = getattr(getattr(model, "config", None), "final_logit_softcapping", None)
    return LensParts(norms[-1], weight, bias if isinstance(bias, torch.Tensor) else None, cap or None)


def chunk_logits(parts: LensParts, hidden: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """Logits for vocabulary rows [start, end) of already-normed hidden states, in float32."""
    logits = (hidden @ parts.weight[start:end].T).float()
    if parts.bias is not None:
        logits = logits + parts.bias[start:end].float()
    if parts.softcap:
        logits = torch.tanh(logits / parts.softcap) * parts.softcap
    return logits


def hidden_states(model: Any, input_ids: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """All residual-stream states and the model's own logits at the last position."""
    name = type(model).__name__
    with torch.no_grad():
        try:
            out = model(input_ids=input_ids, output_hidden_states=True, logits_to_keep=1)
        except TypeError:  # models without logits_to_keep
            out = model(input_ids=input_ids, output_hidden_states=True)
    states = getattr(out, "hidden_states", None)
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if not states or len(states) < 2 or (n_layers and len(states) != n_layers + 1):
        raise UserError(f"{name}: the model does not return its hidden states (output_hidden_states)")
    return tuple(states), out.logits[:, -1].float()


def check_parts(parts: LensParts, states: tuple[torch.Tensor, ...], last_logits: torch.Tensor, name: str) -> None:
    """Norm + unembedding must reproduce the model's logits; decides whether the last state is normed."""
    vocab = parts.weight.shape[0]
    last = states[-1][:, -1]
    tol = 1e-3 * max(1.0, float(last_logits.abs().max()))
    with torch.no_grad():
        if torch.allclose(chunk_logits(parts, last, 0, vocab), last_logits, atol=tol, rtol=1e-3):
            return
        if torch.allclose(chunk_logits(parts, parts.norm(last), 0, vocab), last_logits, atol=tol, rtol=1e-3):
            parts.norm_last = True
            return
    raise UserError(f"{name}: final norm + unembedding do not reproduce the model's logits; logit lens refused")


def _normed_stack(parts: LensParts, states: tuple[torch.Tensor, ...], lo: int, hi: int,
                  translators: list[tuple] | None = None) -> torch.Tensor:
    """(layers + 1, positions, d) states for positions [lo, hi), the norm applied where the model did not.

    `translators` (affine lens): per layer below the last, (A, b) applied as h A + b before the norm.
    """
    rows = []
    with torch.no_grad():
        for i, h in enumerate(states):
            block = h[0, lo:hi]
            last = i == len(states) - 1
            if translators is not None and not last:
                a, b = translators[i]
                block = (block.float() @ a.to(block.device) + b.to(block.device)).to(block.dtype)
            rows.append(parts.norm(block) if (not last or parts.norm_last) else block)
    return torch.stack(rows)


def _final_reductions(parts: LensParts, final: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-sum-exp and arg-max of the final logits, one vocabulary chunk at a time."""
    vocab = parts.weight.shape[0]
    lse = torch.full((final.shape[0],), -torch.inf, device=final.device)
    best = torch.full((final.shape[0],), -torch.inf, device=final.device)
    arg = torch.zeros(final.shape[0], dtype=torch.long, device=final.device)
    for start in range(0, vocab, chunk):
        z = chunk_logits(parts, final, start, min(vocab, start + chunk))
        lse = torch.logaddexp(lse, torch.logsumexp(z, -1))
        value, idx = z.max(-1)
        better = value > best  # strict: the first maximum wins, as torch.argmax
        best, arg = torch.where(better, value, best), torch.where(better, idx + start, arg)
    return lse, arg


def block_stats(parts: LensParts, stack: torch.Tensor, budget: int = DEFAULT_BUDGET) -> LayerStats:
    """Reduce every layer's logits for one block of positions without materialising them all.

    KL(p_f || p_l) = sum_v p_f (z_f - z_l) - lse_f + lse_l, accumulated chunk by chunk.
    """
    n_layers, n_pos, _ = stack.shape
    vocab = parts.weight.shape[0]
    chunk = max(_MIN_CHUNK, budget // max(1, n_layers * n_pos))
    with torch.no_grad():
        lse_f, top1 = _final_reductions(parts, stack[-1], chunk)
        on = {"device": stack.device}
        lse = torch.full((n_layers, n_pos), -torch.inf, **on)
        best = torch.full((n_layers, n_pos), -torch.inf, **on)
        arg = torch.zeros((n_layers, n_pos), dtype=torch.long, **on)
        cross = torch.zeros((n_layers, n_pos), **on)
        z_top1 = torch.zeros((n_layers, n_pos), **on)
        for start in range(0, vocab, chunk):
            end = min(vocab, start + chunk)
            z = chunk_logits(parts, stack, start, end)  # (layers, positions, chunk), reduced where it lies
            p_f = torch.exp(z[-1] - lse_f[:, None])
            cross += (p_f[None] * (z[-1][None] - z)).sum(-1)
            lse = torch.logaddexp(lse, torch.logsumexp(z, -1))
            value, idx = z.max(-1)
            better = value > best
            best, arg = torch.where(better, value, best), torch.where(better, idx + start, arg)
            inside = (top1 >= start) & (top1 < end)
            if inside.any():
                local = (top1 - start).clamp(0, end - start - 1)
                picked = z.gather(-1, local[None, :, None].expand(n_layers, n_pos, 1))[..., 0]
                z_top1 = torch.where(inside[None], picked, z_top1)
    kl = (cross - lse_f[None] + lse).clamp_min(0.0)
    return LayerStats(kl.cpu(), (arg == top1[None]).cpu(), torch.exp(z_top1 - lse).cpu())


def prediction_depth(agrees: torch.Tensor) -> torch.Tensor:
    """Per position: the first layer from which the final top-1 stays the top-1 (agrees is layers x pos)."""
    n_layers = agrees.shape[0]
    stays = torch.flip(torch.cumprod(torch.flip(agrees.long(), [0]), 0), [0])  # 1 where all later agree
    return n_layers - stays.sum(0)


@dataclass
class LensResult:
    model: str
    n_layers: int
    n_positions: int
    kl_to_final: list[float]
    top1_agrees: list[float]
    p_final_top1: list[float]
    prediction_depth: float
    max_logits_floats: int  # the largest block of logits alive at once (memory bound check)
    n_texts: int = 1
    prediction_depth_item_mean: float | None = None  # each text's mean depth, averaged over texts

    def to_json(self) -> dict[str, Any]:
        layers = [
            {"layer": i, "kl_to_final": k, "top1_agrees": a, "p_final_top1": p}
            for i, (k, a, p) in enumerate(zip(self.kl_to_final, self.top1_agrees, self.p_final_top1, strict=True))
        ]
        doc = {"model": self.model, "n_layers": self.n_layers, "layers": layers,
               "prediction_depth": self.prediction_depth}
        if self.n_texts > 1:
            doc.update(n_texts=self.n_texts, prediction_depth_item_mean=self.prediction_depth_item_mean)
        return doc


def encode_text(tokenizer: Any, text: str, max_length: int) -> torch.Tensor:
    """Token ids of `text` (with the tokenizer's own special tokens); one-line errors for bad input."""
    if not text or not text.strip():
        raise UserError("--text: empty text; nothing to read through the lens")
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    if ids.shape[1] > max_length:
        raise UserError(f"--text: {ids.shape[1]} tokens, longer than the model's context of {max_length}")
    return ids


def logit_lens(model: Any, input_ids: torch.Tensor, name: str = "", budget: int = DEFAULT_BUDGET,
               block: int = 64, translators: list[tuple] | None = None) -> LensResult:
    """Per-layer KL to the final distribution, top-1 agreement, p(final top-1) and prediction depth."""
    name = name or type(model).__name__
    parts = find_parts(model)
    device = parts.weight.device
    states, last_logits = hidden_states(model, input_ids.to(device))
    check_parts(parts, states, last_logits, name)
    n_layers, n_pos = len(states) - 1, input_ids.shape[1]
    kl, agrees, p_top1 = [], [], []
    max_floats = 0
    for lo in range(0, n_pos, block):
        stack = _normed_stack(parts, states, lo, min(n_pos, lo + block), translators)
        stats = block_stats(parts, stack, budget)
        rows = stack.shape[0] * stack.shape[1]
        max_floats = max(max_floats, rows * min(parts.weight.shape[0], max(_MIN_CHUNK, budget // rows)))
        kl.append(stats.kl)
        agrees.append(stats.agrees)
        p_top1.append(stats.p_final_top1)
    kl_t, agrees_t, p_t = torch.cat(kl, 1), torch.cat(agrees, 1), torch.cat(p_top1, 1)
    return LensResult(
        name, n_layers, n_pos, kl_t.mean(1).tolist(), agrees_t.float().mean(1).tolist(), p_t.mean(1).tolist(),
        float(prediction_depth(agrees_t).float().mean()), max_floats,
    )


def pool(results: list[LensResult]) -> LensResult:
    """Average several texts' lens results over all their positions (each position weighs the same)."""
    n = sum(r.n_positions for r in results)

    def mean(attr: str) -> list[float]:
        return [sum(getattr(r, attr)[i] * r.n_positions for r in results) / n for i in range(results[0].n_layers + 1)]

    depth = sum(r.prediction_depth * r.n_positions for r in results) / n
    return LensResult(results[0].model, results[0].n_layers, n, mean("kl_to_final"), mean("top1_agrees"),
                      mean("p_final_top1"), depth, max(r.max_logits_floats for r in results), len(results),
                      sum(r.prediction_depth for r in results) / len(results))


def lens_texts(model: Any, tokenizer: Any, texts: list[str], max_length: int, name: str,
               translators: list[tuple] | None = None) -> LensResult:
    """The logit lens over one or more texts: averages over every position, and the depth also per text."""
    if not texts:
        raise UserError("--text: give at least one text")
    ids = [encode_text(tokenizer, t, max_length) for t in texts]
    return pool([logit_lens(model, i, name, translators=translators) for i in ids])


def task_texts(task: str, limit: int | None, seed: int = 1234) -> list[str]:
    """A task's documents as the model reads them (lm-eval builds them): context plus the gold choice, the
    context of a generation task, or the whole document of a perplexity task."""
    from beyondscale.tasks.harness import load_tasks, task_manager
    from beyondscale.tasks.lm_eval_items import gold_texts

    files_only = Path(task).expanduser().is_file()
    loaded = load_tasks([task], manager=task_manager(include_defaults=not files_only))
    texts = gold_texts(loaded, {"limit": limit, "fewshot_random_seed": seed})
    return [t for t in texts if t.strip()]
