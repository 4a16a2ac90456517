"""Log-likelihood scoring with shared prefixes and logits only where they are scored.

A `Group` is a set of spans (see tokens.Span) whose model inputs share their first `prefix_len`
tokens: the k choices of a multiple-choice question share the context (and any common start of
the continuations). One batch is scored in at most two forward passes:

  phase 1: every group's shared prefix, left-padded so all prefixes end in the same column
           (real tokens stay contiguous, so sliding-window layers see true distances);
  phase 2: the KV cache is copied once per span that goes beyond its prefix
           (`Cache.batch_select_indices`), and the span's remaining input tokens are run
           right-padded, attending to [prefix | own tokens] with explicit position ids.

Both passes ask the model for logits only at scored positions (`logits_to_keep`), so the
vocabulary projection (262k wide for Gemma) is paid per scored token, not per input token.
Each span's tokens see exactly the tokens they would see in a separate forward pass, so the
result is lm-eval's up to float rounding, whatever the batching.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass

import torch

from beyondscale.engine.tokens import Span


@dataclass
class Group:
    """Spans of one item that share their first `prefix_len` input tokens."""

    owner: int  # index of the item in its batch
    prefix_len: int
    spans: list[Span]

    @property
    def prefix(self) -> list[int]:
        return self.spans[0].seq[: self.prefix_len]

    def remainders(self) -> list[int]:
        """Length of each span's input beyond the shared prefix (0: scored from phase 1 alone)."""
        return [len(s.seq) - 1 - self.prefix_len for s in self.spans]

    def tokens_in(self) -> int:
        return self.prefix_len + sum(self.remainders())


def make_groups(spans: list[Span], share: bool) -> list[Group]:
    """One group over the longest common input prefix, or one group per span."""
    if share and len(spans) > 1:
        inputs = [s.seq[:-1] for s in spans]
        n = 0
        for column in zip(*inputs, strict=False):
            if any(tok != column[0] for tok in column):
                break
            n += 1
        if n > 0:
            return [Group(0, n, spans)]
    return [Group(0, len(s.seq) - 1, [s]) for s in spans]


def batch_cost(groups: list[Group]) -> tuple[int, int, int]:
    """(padded tokens run, KV-cache rows x length copied, scored positions) of one forward pair."""
    lc = max(g.prefix_len for g in groups)
    rem = [r for g in groups for r in g.remainders() if r > 0]
    tokens = len(groups) * lc + len(rem) * max(rem, default=0)
    scored = sum(s.n_scored for g in groups for s in g.spans)
    return tokens, len(rem) * lc, scored


def keep_mode(model) -> str:
    """How the model takes `logits_to_keep`: a boolean mask (transformers 5), an int, or not at all."""
    if "logits_to_keep" not in inspect.signature(model.forward).parameters:
        return "none"
    module = sys.modules.get(type(model).__module__)
    if module is not None and hasattr(module, "slice_logits_to_keep"):
        return "mask"
    return "int"


class Scorer:
    """Runs groups through a causal LM and returns per-span (sum logprob, all-greedy)."""

    def __init__(self, model, pad_id: int) -> None:
        self.model = model
        self.pad_id = pad_id
        self.mode = keep_mode(model)
        self.device = next(model.parameters()).device

    def _forward(self, keep: torch.Tensor, use_cache: bool, **kwargs) -> tuple[torch.Tensor, object]:
        """Forward pass returning logits [K, V] at the True positions of `keep` (row-major)."""
        if self.mode == "mask":
            out = self.model(**kwargs, use_cache=use_cache, logits_to_keep=keep)
            return out.logits, out.past_key_values
        if self.mode == "int":
            cols = keep.any(0).nonzero()
            n = keep.shape[1] - int(cols[0]) if len(cols) else 1
            out = self.model(**kwargs, use_cache=use_cache, logits_to_keep=n)
            return out.logits[keep[:, -n:]], out.past_key_values
        out = self.model(**kwargs, use_cache=use_cache)
        return out.logits[keep], out.past_key_values

    @torch.inference_mode()
    def score(self, groups: list[Group]) -> list[list[tuple[float, bool]]]:
        dev = self.device
        lens = [g.prefix_len for g in groups]
        lc = max(lens)
        ids = torch.full((len(groups), lc), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(groups), lc), dtype=torch.bool)
        # scored tokens per phase: row, column, target, span id
        scored: dict[int, tuple[list[int], list[int], list[int], list[int]]] = {
            1: ([], [], [], []),
            2: ([], [], [], []),
        }
        rows2: list[tuple[int, list[int]]] = []  # (group row, input beyond the prefix)
        span_owner: list[int] = []
        for b, g in enumerate(groups):
            pad = lc - g.prefix_len
            ids[b, pad:] = torch.tensor(g.prefix, dtype=torch.long)
            mask[b, pad:] = True
            for s in g.spans:
                sid = len(span_owner)
                span_owner.append(b)
                m = len(s.seq) - 1
                first = m - s.n_scored
                for p in range(first, min(m, g.prefix_len)):
                    _append(scored[1], b, pad + p, s.seq[p + 1], sid)
                if m > g.prefix_len:
                    r = len(rows2)
                    rows2.append((b, s.seq[g.prefix_len : m]))
                    for p in range(max(first, g.prefix_len), m):
                        _append(scored[2], r, p - g.prefix_len, s.seq[p + 1], sid)

        keep1 = _mask(mask.shape, scored[1])
        pos = (mask.long().cumsum(1) - 1).clamp(min=0)
        logits = {}
        logits[1], cache = self._forward(
            keep1.to(dev),
            use_cache=bool(rows2),
            input_ids=ids.to(dev),
            attention_mask=mask.to(dev),
            position_ids=pos.to(dev),
        )
        keeps = {1: keep1}
        if rows2:
            lr = max(len(rem) for _, rem in rows2)
            gidx = torch.tensor([b for b, _ in rows2], dtype=torch.long)
            ids2 = torch.full((len(rows2), lr), self.pad_id, dtype=torch.long)
            mask2 = torch.zeros((len(rows2), lr), dtype=torch.bool)
            for r, (_, rem) in enumerate(rows2):
                ids2[r, : len(rem)] = torch.tensor(rem, dtype=torch.long)
                mask2[r, : len(rem)] = True
            keeps[2] = _mask(mask2.shape, scored[2])
            pos2 = torch.tensor([lens[b] for b, _ in rows2])[:, None] + torch.arange(lr)[None, :]
            cache.batch_select_indices(gidx.to(dev))  # one copy of the prefix cache per span
            logits[2], _ = self._forward(
                keeps[2].to(dev),
                use_cache=True,
                input_ids=ids2.to(dev),
                attention_mask=torch.cat([mask[gidx], mask2], dim=1).to(dev),
                position_ids=pos2.to(dev),
                past_key_values=cache,
            )
        del cache

        sums = torch.zeros(len(span_owner), dtype=torch.float64)
        misses = torch.zeros(len(span_owner), dtype=torch.long)
        for phase, (rows, cols, targets, sids) in scored.items():
            if not rows:
                continue
            keep = keeps[phase]
            index = torch.full(keep.shape, -1, dtype=torch.long)
            index[keep] = torch.arange(int(keep.sum()))  # kept logits come in row-major order
            at = index[rows, cols].to(dev)
            lp, greedy = token_logprobs(logits[phase], at, torch.tensor(targets, device=dev))
            owner = torch.tensor(sids, dtype=torch.long)
            sums.index_add_(0, owner, lp.double().cpu())
            misses.index_add_(0, owner, (~greedy).long().cpu())
        out: list[list[tuple[float, bool]]] = [[] for _ in groups]
        for sid, b in enumerate(span_owner):
            out[b].append((float(sums[sid]), bool(misses[sid] == 0)))
        return out


def _append(lists: tuple[list[int], ...], *values: int) -> None:
    for dest, v in zip(lists, values, strict=True):
        dest.append(v)


def _mask(shape: torch.Size, entries: tuple[list[int], ...]) -> torch.Tensor:
    keep = torch.zeros(shape, dtype=torch.bool)
    keep[entries[0], entries[1]] = True
    return keep


def token_logprobs(
    logits: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor, chunk_elems: int = 1 << 24
) -> tuple[torch.Tensor, torch.Tensor]:
    """log_softmax in float32 at the given logits rows (as lm-eval on an fp32 model), in chunks so
    a 262k vocabulary never needs a second full-size copy."""
    step = max(1, chunk_elems // logits.shape[-1])
    lps, greedy = [], []
    for i in range(0, len(rows), step):
        x = logits[rows[i : i + step]].float().log_softmax(-1)
        t = targets[i : i + step]
        lps.append(x.gather(1, t[:, None]).squeeze(1))
        greedy.append(x.argmax(-1) == t)
    return torch.cat(lps), torch.cat(greedy)
