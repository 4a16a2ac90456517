"""Batched greedy decoding with a KV cache, stopping as lm-eval's `generate_until` does.

lm-eval calls `model.generate(do_sample=False)` on a left-padded batch, stops on the model's EOS or
when its stop strings appear, then decodes with `skip_special_tokens=True` and cuts the text at
the first stop string (its `until` plus the EOS string). Here finished rows leave the batch at
once (their cache rows are dropped), which changes no row's tokens: each row's text depends only
on its own tokens up to its first stop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from beyondscale.engine.cache import cache_kwargs, output_cache


@dataclass
class GenRow:
    ids: list[int]  # prompt tokens, already left-truncated
    max_new: int
    stops: list[str]  # lm-eval's `until` with the EOS string appended
    out: list[int] = field(default_factory=list)


def eos_ids(model, tokenizer) -> set[int]:
    """Tokens that end a sequence: the tokenizer's EOS plus the generation config's."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(gen_eos, int):
        ids.add(gen_eos)
    elif gen_eos is not None:
        ids.update(int(t) for t in gen_eos)
    return ids


def finish_text(tokenizer, tokens: list[int], stops: list[str]) -> str:
    """lm-eval's post-processing: decode without special tokens, cut at every stop string."""
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    for term in stops:
        if term:
            text = text.split(term)[0]
    return text


def _done(tokenizer, row: GenRow, eos: set[int]) -> bool:
    if row.out[-1] in eos or len(row.out) >= row.max_new:
        return True
    # lm-eval's stopping criterion decodes with special tokens kept
    text = tokenizer.decode(row.out, skip_special_tokens=False)
    return any(term and term in text for term in row.stops)


@torch.inference_mode()
def greedy_generate(
    model, tokenizer, rows: list[GenRow], pad_id: int, eos: set[int], keep_last: bool = True
) -> list[GenRow]:
    """Fill `row.out` for every row with its greedy continuation (stop token included)."""
    extra = {"logits_to_keep": 1} if keep_last else {}
    dev = next(model.parameters()).device
    width = max(len(r.ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, width - len(r.ids) :] = torch.tensor(r.ids, dtype=torch.long)
        mask[i, width - len(r.ids) :] = True
    pos = (mask.long().cumsum(1) - 1).clamp(min=0)
    mask, pos = mask.to(dev), pos.to(dev)
    out = model(input_ids=ids.to(dev), attention_mask=mask, position_ids=pos, use_cache=True, **extra)
    cache, logits = output_cache(out), out.logits[:, -1]
    active = list(range(len(rows)))
    next_pos = pos[:, -1] + 1
    while True:
        nxt = logits.argmax(-1).tolist()
        still = []
        for j, i in enumerate(active):
            rows[i].out.append(nxt[j])
            if not _done(tokenizer, rows[i], eos):
                still.append(j)
        if not still:
            return rows
        if len(still) < len(active):  # drop finished rows from every tensor and the cache
            keep = torch.tensor(still, dtype=torch.long, device=dev)
            cache.batch_select_indices(keep)
            mask, next_pos = mask[keep], next_pos[keep]
            nxt = [nxt[j] for j in still]
            active = [active[j] for j in still]
        mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.bool, device=dev)], dim=1)
        out = model(
            input_ids=torch.tensor(nxt, dtype=torch.long, device=dev)[:, None],
            attention_mask=mask,
            position_ids=next_pos[:, None],
            use_cache=True,
            **cache_kwargs(model, cache),
            **extra,
        )
        cache, logits = output_cache(out), out.logits[:, -1]
        next_pos = next_pos + 1
