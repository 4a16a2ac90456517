"""Exact memorisation as Carlini et al. 2022 ("Quantifying Memorization Across Neural Language Models")
measure it: sample training sequences, give the model the first `prefix` tokens, decode `suffix` tokens
greedily, and count the sequences whose continuation is reproduced token for token."""

from __future__ import annotations

import inspect

import numpy as np
import torch


@torch.no_grad()
def greedy_continue(model: torch.nn.Module, prefixes: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Plain greedy decoding (no stop token, no sampling) of `n_tokens` for each row, with the KV cache."""
    model.eval()
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    out = model(input_ids=prefixes, use_cache=True)
    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    generated = [nxt]
    for _ in range(n_tokens - 1):
        out = model(input_ids=nxt, use_cache=True, **{name: getattr(out, name)})
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        generated.append(nxt)
    return torch.cat(generated, dim=1)


def exact_memorisation(model: torch.nn.Module, train_tokens: np.ndarray, *, n_samples: int = 64, prefix: int = 32,
                       suffix: int = 32, seed: int = 0, device: str = "cpu", batch_size: int = 32) -> dict:
    """Share of sampled training sequences whose `suffix`-token continuation the model reproduces greedily."""
    span = prefix + suffix
    n_samples = min(n_samples, max(0, len(train_tokens) - span))
    starts = np.random.default_rng(seed).choice(len(train_tokens) - span, size=n_samples, replace=False)
    seqs = np.stack([np.asarray(train_tokens[s:s + span], dtype=np.int64) for s in starts]) if n_samples else \
        np.zeros((0, span), dtype=np.int64)
    hits = 0
    for i in range(0, n_samples, batch_size):
        block = torch.from_numpy(seqs[i:i + batch_size]).to(device)
        cont = greedy_continue(model, block[:, :prefix], suffix)
        hits += int((cont == block[:, prefix:]).all(dim=1).sum())
    return {"memorised": hits, "samples": n_samples, "share": hits / n_samples if n_samples else None,
            "prefix": prefix, "suffix": suffix, "seed": seed}
