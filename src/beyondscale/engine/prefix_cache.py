"""A prefix shared across documents, computed once: few-shot tasks read the same examples before every item.

With lm-eval's `first_n` sampler (MMLU) every document of a subject starts with the same description and
the same five solved examples, ~400 tokens of a ~480-token input. `PrefixCacheScorer` finds the longest
token prefix that a cluster of scoring groups share (at least `MIN_SHARED` tokens, and ending before any
scored position), runs it once into a KV cache, then scores each group as one packed row
[its input beyond the shared prefix | each span's rest] over a copy of that cache, with a 4D mask that
lets every token see the cached prefix, its group's tokens and its own span only (as scoring.SpanScorer's
packed path, shifted by the prefix). Each scored token sees exactly the tokens it would see in a separate
forward pass, so the log-likelihoods are the engine's (and lm-eval's) up to float rounding.

Used for models whose attention layers are all full (a sliding-window layer's cache keeps only its
window: such models, and groups that share too little, take the engine's ordinary path).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import torch

from beyondscale.engine.requests import Item, ItemResult
from beyondscale.engine.scoring import Group, SpanScorer, _append, _mask, _select_rows, _span_sums

MIN_SHARED = 64  # tokens: below this a separate forward of the prefix is not worth its overhead


def shared_len(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def first_scored(g: Group) -> int:
    """The earliest input position whose logits a span of `g` scores."""
    return min(len(s.seq) - 1 - s.n_scored for s in g.spans)


def clusters(groups: list[Group], min_shared: int = MIN_SHARED) -> tuple[list[tuple[int, list[int]]], list[int]]:
    """Indexes of groups that share >= `min_shared` leading input tokens, as (shared length, members), and
    the indexes of the rest. The shared length stops one token before any member's first scored position."""
    order = sorted(range(len(groups)), key=lambda i: groups[i].prefix)
    out, rest, run, shared = [], [], [order[0]] if order else [], 10**9
    for prev, cur in zip(order, order[1:], strict=False):
        n = min(shared, shared_len(groups[prev].prefix, groups[cur].prefix), first_scored(groups[cur]),
                first_scored(groups[prev]))
        if n >= min_shared:
            run.append(cur)
            shared = n
            continue
        (out.append((shared, run)) if len(run) > 1 else rest.extend(run))
        run, shared = [cur], 10**9
    if run:
        (out.append((shared, run)) if len(run) > 1 else rest.extend(run))
    return out, rest


class PrefixCacheScorer(SpanScorer):
    """scoring.SpanScorer with a cross-document prefix: run it once, score groups over copies of its cache."""

    def usable(self) -> bool:
        return all(w is None for w in self.windows)

    @torch.inference_mode()
    def prefix_cache(self, tokens: list[int]):
        """The KV cache of `tokens` (one row)."""
        ids = torch.tensor([tokens], dtype=torch.long, device=self.device)
        keep = torch.zeros(ids.shape, dtype=torch.bool, device=self.device)
        _, cache = self._forward(keep, use_cache=True, input_ids=ids,
                                 position_ids=torch.arange(len(tokens), device=self.device)[None])
        return cache

    @torch.inference_mode()
    def score_after(self, groups: list[Group], shared: int, cache) -> list[list[tuple[float, bool]]]:
        """Per group, per span: (sum log-prob, all greedy), every group starting with the cached `shared` tokens."""
        dev = self.device
        width = max(g.prefix_len - shared + sum(r for r in g.remainders() if r > 0) for g in groups)
        ids = torch.full((len(groups), width), self.pad_id, dtype=torch.long)
        pos = torch.zeros((len(groups), width), dtype=torch.long)
        seg = torch.full((len(groups), width), -1, dtype=torch.long)
        scored: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
        span_owner: list[int] = []
        for b, g in enumerate(groups):
            n = g.prefix_len
            ids[b, : n - shared] = torch.tensor(g.prefix[shared:], dtype=torch.long)
            pos[b, : n - shared], seg[b, : n - shared] = torch.arange(shared, n), 0
            col = n - shared
            for k, s in enumerate(g.spans, start=1):
                sid, m = len(span_owner), len(s.seq) - 1
                span_owner.append(b)
                first = m - s.n_scored
                for p in range(first, min(m, n)):
                    _append(scored, b, p - shared, s.seq[p + 1], sid)
                if m > n:
                    ids[b, col : col + m - n] = torch.tensor(s.seq[n:m], dtype=torch.long)
                    pos[b, col : col + m - n], seg[b, col : col + m - n] = torch.arange(n, m), k
                    for p in range(max(first, n), m):
                        _append(scored, b, col + p - n, s.seq[p + 1], sid)
                    col += m - n
        keep = _mask(ids.shape, scored)
        sub = _select_rows(cache, torch.zeros(len(groups), dtype=torch.long, device=dev))
        out, _ = self._forward(keep.to(dev), use_cache=True, cache=sub, input_ids=ids.to(dev),
                               position_ids=pos.to(dev), attention_mask=self._masks_after(pos, seg, shared))
        index = torch.full(keep.shape, -1, dtype=torch.long)
        index[keep] = torch.arange(int(keep.sum()))
        lp, greedy = self._logprobs(out, index[scored[0], scored[1]].to(dev), torch.tensor(scored[2], device=dev))
        return _span_sums(groups, span_owner, [(scored[3], lp, greedy)])

    def _masks_after(self, pos: torch.Tensor, seg: torch.Tensor, shared: int) -> torch.Tensor:
        """Additive [B, 1, T, shared + T] mask: every real token sees the cached prefix; within the row,
        SpanScorer's tree rule (its group's tokens and its own span, causally); padding sees only itself."""
        qp, kp, qs, ks = pos[:, :, None], pos[:, None, :], seg[:, :, None], seg[:, None, :]
        row = (kp <= qp) & ((ks == 0) | (ks == qs)) & (ks >= 0) & (qs >= 0)
        row |= torch.eye(pos.shape[1], dtype=torch.bool)[None] & (qs < 0)
        cached = (qs >= 0).expand(-1, -1, shared)
        allowed = torch.cat([cached, row], dim=2)
        dtype = next(self.model.parameters()).dtype
        dtype = dtype if dtype.is_floating_point else torch.float32
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
        return mask[:, None].to(self.device)


def row_len(g: Group, shared: int) -> int:
    return g.prefix_len - shared + sum(r for r in g.remainders() if r > 0)


def chunked(members: list[int], groups: list[Group], shared: int, budget: int) -> Iterator[list[int]]:
    """Members in chunks of at most `budget` padded row tokens and 4 x `budget` cached rows, longest first."""
    lens = {i: row_len(groups[i], shared) for i in members}
    chunk: list[int] = []
    for i in sorted(members, key=lambda i: -lens[i]):
        n = len(chunk) + 1
        if chunk and (n * lens[chunk[0]] > budget or n * shared > 4 * budget):
            yield chunk
            chunk = []
        chunk.append(i)
    if chunk:
        yield chunk


def run_with_prefix_cache(engine: Any, items: list[Item], min_shared: int = MIN_SHARED
                          ) -> Iterator[list[tuple[Item, ItemResult]]]:
    """Score log-likelihood `items` (no generation), yielding (item, result) pairs as they complete: items
    whose groups share a prefix of >= `min_shared` tokens with others through the prefix cache, the rest
    through `engine`'s own batches. Results equal `engine.run(items)`'s up to float rounding."""
    scorer = PrefixCacheScorer(engine.model, engine.pad_id)
    preps = [engine._build(it) for it in items]
    groups = [dataclasses.replace(g, owner=i) for i, p in enumerate(preps) for g in p.groups]
    found, rest = clusters(groups, min_shared) if scorer.usable() and groups else ([], list(range(len(groups))))
    plain = sorted({groups[i].owner for i in rest})
    if plain:
        for batch in engine.plan([items[i] for i in plain]):
            yield list(zip(batch, engine.run_batch(batch), strict=True))
    cached = {groups[i].owner for _, members in found for i in members} - set(plain)
    results = {i: ItemResult(doc_id=items[i].doc_id, logprobs=[0.0] * preps[i].n_slots,
                             is_greedy=[True] * preps[i].n_slots, n_tokens=list(preps[i].n_tokens), flops=0.0)
               for i in cached}
    left = {i: len(preps[i].groups) for i in cached}
    shape = engine.flop_shape
    for shared, members in found:
        members = [m for m in members if groups[m].owner in cached]
        if not members:
            continue
        cache = scorer.prefix_cache(groups[members[0]].prefix[:shared])
        first = results[groups[members[0]].owner]
        first.tokens_in += shared
        first.flops += shape.forward(0, shared, 0)
        for chunk in chunked(members, groups, shared, engine.token_budget):
            outs = scorer.score_after([groups[i] for i in chunk], shared, cache)
            done = []
            for i, spans in zip(chunk, outs, strict=True):
                g, res = groups[i], results[groups[i].owner]
                n_scored = sum(s.n_scored for s in g.spans)
                res.tokens_in += row_len(g, shared)
                res.flops += shape.forward(shared, shared + row_len(g, shared), n_scored)
                for span, (lp, ok) in zip(g.spans, spans, strict=True):
                    slot = 0 if preps[g.owner].rolling else span.slot
                    res.logprobs[slot] += lp
                    res.is_greedy[slot] &= ok
                left[g.owner] -= 1
                if left[g.owner] == 0:
                    done.append(g.owner)
            if done:
                yield [(items[i], results[i]) for i in done]
        del cache
