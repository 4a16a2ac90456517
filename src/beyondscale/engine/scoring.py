"""Log-likelihood scoring with shared prefixes and logits only where they are scored.

A `Group` is a set of spans (see tokens.Span) whose model inputs share their first `prefix_len`
tokens: the k choices of a multiple-choice question share the context (and any common start of
the continuations). A batch whose groups have spans beyond their prefix (multiple choice) is scored
in one forward pass (`SpanScorer._score_packed`): each group is one row [prefix | span 1's rest | span 2's
rest | ...] with explicit positions and a 4D mask (per attention type, sliding windows applied) that
lets a span's tokens see the prefix and themselves only, so the prefix runs once and no KV cache is
built or copied. Rows longer than PACKED_MAX_ROW, and groups with nothing beyond the prefix (rolling
windows), take the two-phase path, in at most two forward passes:

  phase 1: every group's shared prefix, left-padded so all prefixes end in the same column
           (real tokens stay contiguous, so sliding-window layers see true distances);
  phase 2: the KV cache is copied once per span that goes beyond its prefix
           (`Cache.batch_select_indices`), and the span's remaining input tokens are run
           right-padded, attending to [prefix | own tokens] with explicit position ids.

Logits are computed only at scored positions, so the vocabulary projection (262k wide for Gemma) is
paid per scored token, not per input token: by `head.ChunkedHead` on the body's hidden states (a chunk
of rows at a time, no [K, V] tensor), or, for a model whose logits are not head(body), by the model
itself through `logits_to_keep`.
Each span's tokens see exactly the tokens they would see in a separate forward pass, so the
result is lm-eval's up to float rounding, whatever the batching.
"""

from __future__ import annotations

import copy
import inspect
import sys
from dataclasses import dataclass

import torch

from beyondscale.engine.cache import cache_kwargs, output_cache
from beyondscale.engine.head import ChunkedHead
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
    """(padded tokens run, KV-cache rows x length copied, scored positions) of one batch: packed rows
    (`SpanScorer._score_packed`) copy no cache; the two-phase path copies the prefix per span."""
    scored = sum(s.n_scored for g in groups for s in g.spans)
    width = max(packed_len(g) for g in groups)
    rem = [r for g in groups for r in g.remainders() if r > 0]
    if rem and width <= PACKED_MAX_ROW:
        return len(groups) * width, 0, scored
    lc = max(g.prefix_len for g in groups)
    return len(groups) * lc + len(rem) * max(rem, default=0), len(rem) * lc, scored


def keep_mode(model) -> str:
    """How the model takes `logits_to_keep`: a boolean mask (transformers 5), an int, or not at all."""
    if "logits_to_keep" not in inspect.signature(model.forward).parameters:
        return "none"
    module = sys.modules.get(type(model).__module__)
    if module is not None and hasattr(module, "slice_logits_to_keep"):
        return "mask"
    return "int"


class SpanScorer:
    """Runs groups through a causal LM and returns per-span (sum logprob, all-greedy)."""

    def __init__(self, model, pad_id: int) -> None:
        self.model = model
        self.pad_id = pad_id
        self.mode = keep_mode(model)
        self.device = next(model.parameters()).device
        from beyondscale.models.facts import flop_shape

        self.windows = flop_shape(model).windows  # per layer: None (full) or the sliding window
        self.head = ChunkedHead.of(model)  # None: the model's own head, logits_to_keep per `mode`

    def _forward(self, keep: torch.Tensor, use_cache: bool, cache=None, **kwargs) -> tuple[torch.Tensor, object]:
        """Forward pass (from `cache` when given) returning, at the True positions of `keep` (row-major),
        the body's hidden states [K, H] when the block head is in use, else the logits [K, V]."""
        if cache is not None:
            kwargs.update(cache_kwargs(self.model if self.head is None else self.head.body, cache))
        if self.head is not None:
            out = self.head.body(**kwargs, use_cache=use_cache)
            return out.last_hidden_state[keep], output_cache(out)
        if self.mode == "mask":
            out = self.model(**kwargs, use_cache=use_cache, logits_to_keep=keep)
            return out.logits, output_cache(out)
        if self.mode == "int":
            cols = keep.any(0).nonzero()
            n = keep.shape[1] - int(cols[0]) if len(cols) else 1
            out = self.model(**kwargs, use_cache=use_cache, logits_to_keep=n)
            return out.logits[keep[:, -n:]], output_cache(out)
        out = self.model(**kwargs, use_cache=use_cache)
        return out.logits[keep], output_cache(out)

    def _logprobs(self, out: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(target), target is argmax) at `rows` of what `_forward` returned."""
        if self.head is not None:
            return self.head.logprobs(out, rows, targets)
        return token_logprobs(out, rows, targets)

    @torch.inference_mode()
    def score(self, groups: list[Group]) -> list[list[tuple[float, bool]]]:
        """Per group, per span: (sum of log-probabilities, every token greedy)."""
        if any(r > 0 for g in groups for r in g.remainders()) and \
                max(packed_len(g) for g in groups) <= PACKED_MAX_ROW:
            return self._score_packed(groups)
        return self._score_two_phase(groups)

    def _score_packed(self, groups: list[Group]) -> list[list[tuple[float, bool]]]:
        """One forward pass: each group is one row [prefix | span 1's rest | span 2's rest | ...] whose
        spans see the prefix and themselves only (a 4D mask built from positions and segments), so the
        prefix runs once, no cache is copied, and logits are computed at scored positions only."""
        dev, width = self.device, max(packed_len(g) for g in groups)
        ids = torch.full((len(groups), width), self.pad_id, dtype=torch.long)
        pos = torch.zeros((len(groups), width), dtype=torch.long)
        seg = torch.full((len(groups), width), -1, dtype=torch.long)  # -1 padding, 0 prefix, k: k-th span's rest
        scored: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
        span_owner: list[int] = []
        for b, g in enumerate(groups):
            n = g.prefix_len
            ids[b, :n], pos[b, :n], seg[b, :n] = torch.tensor(g.prefix, dtype=torch.long), torch.arange(n), 0
            col = n
            for k, s in enumerate(g.spans, start=1):
                sid, m = len(span_owner), len(s.seq) - 1
                span_owner.append(b)
                first = m - s.n_scored
                for p in range(first, min(m, n)):
                    _append(scored, b, p, s.seq[p + 1], sid)
                if m > n:
                    ids[b, col : col + m - n] = torch.tensor(s.seq[n:m], dtype=torch.long)
                    pos[b, col : col + m - n], seg[b, col : col + m - n] = torch.arange(n, m), k
                    for p in range(max(first, n), m):
                        _append(scored, b, col + p - n, s.seq[p + 1], sid)
                    col += m - n
        keep = _mask(ids.shape, scored)
        logits, _ = self._forward(keep.to(dev), use_cache=False, input_ids=ids.to(dev), position_ids=pos.to(dev),
                                  attention_mask=self._tree_masks(pos, seg))
        index = torch.full(keep.shape, -1, dtype=torch.long)
        index[keep] = torch.arange(int(keep.sum()))  # kept logits come in row-major order
        lp, greedy = self._logprobs(logits, index[scored[0], scored[1]].to(dev), torch.tensor(scored[2], device=dev))
        return _span_sums(groups, span_owner, [(scored[3], lp, greedy)])

    def _tree_masks(self, pos: torch.Tensor, seg: torch.Tensor):
        """Additive 4D masks [B, 1, T, T]: a token sees the prefix and its own segment up to its position
        (within the layer's sliding window); padding sees only itself. One mask per attention type, as a
        dict when the model mixes full and sliding layers (its forward takes that form)."""
        qp, kp, qs, ks = pos[:, :, None], pos[:, None, :], seg[:, :, None], seg[:, None, :]
        allowed = (kp <= qp) & ((ks == 0) | (ks == qs)) & (ks >= 0) & (qs >= 0)
        allowed |= torch.eye(pos.shape[1], dtype=torch.bool)[None] & (qs < 0)
        dtype = next(self.model.parameters()).dtype
        dtype = dtype if dtype.is_floating_point else torch.float32

        def additive(ok: torch.Tensor) -> torch.Tensor:
            mask = torch.zeros(ok.shape, dtype=dtype).masked_fill_(~ok, torch.finfo(dtype).min)
            return mask[:, None].to(self.device)

        windows = set(self.windows)
        masks = {w: additive(allowed if w is None else allowed & ((qp - kp < w) | (qs < 0))) for w in windows}
        if len(windows) == 1:
            return masks[next(iter(windows))]
        window = next(w for w in windows if w is not None)
        return {"full_attention": masks[None], "sliding_attention": masks[window]}

    def _score_two_phase(self, groups: list[Group]) -> list[list[tuple[float, bool]]]:
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
        index1 = torch.full(keep1.shape, -1, dtype=torch.long)
        index1[keep1] = torch.arange(int(keep1.sum()))  # kept logits come in row-major order
        indexes = {1: index1}
        if rows2:
            logits[2], indexes[2] = self._phase2(rows2, scored[2], cache, mask, lens)
        del cache

        parts = []
        for phase, (rows, cols, targets, sids) in scored.items():
            if rows:
                at = indexes[phase][rows, cols].to(dev)
                parts.append((sids, *self._logprobs(logits[phase], at, torch.tensor(targets, device=dev))))
        return _span_sums(groups, span_owner, parts)


    def _phase2(self, rows2, scored2, cache, mask, lens) -> tuple[torch.Tensor, torch.Tensor]:
        """Run each span's remainder from a copy of its prefix cache, in sub-batches of similar length.

        Continuations of one question differ in length; padding them all to the longest wasted
        close to half of the compute. Rows are sorted by length and split where padding would cost
        more than another forward pass. Returns the kept logits and, for every (row, column) of the
        full remainder grid, the index of its logits row (-1 where nothing is scored).
        """
        dev = self.device
        lr = max(len(rem) for _, rem in rows2)
        keep2 = _mask((len(rows2), lr), scored2)
        index = torch.full(keep2.shape, -1, dtype=torch.long)
        order = sorted(range(len(rows2)), key=lambda r: len(rows2[r][1]))
        chunks = split_by_length([len(rows2[r][1]) for r in order])
        parts, offset, start = [], 0, 0
        for n_rows in chunks:
            rows = order[start : start + n_rows]
            start += n_rows
            width = max(len(rows2[r][1]) for r in rows)
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            own = torch.zeros((len(rows), width), dtype=torch.bool)
            for i, r in enumerate(rows):
                rem = rows2[r][1]
                ids[i, : len(rem)] = torch.tensor(rem, dtype=torch.long)
                own[i, : len(rem)] = True
            gidx = torch.tensor([rows2[r][0] for r in rows], dtype=torch.long)
            keep = keep2[rows, :width]
            sel = torch.tensor(rows)[:, None].expand(-1, width)[keep], torch.arange(width)[None, :].expand(
                len(rows), -1)[keep]
            index[sel] = torch.arange(offset, offset + len(sel[0]))
            offset += len(sel[0])
            sub = _select_rows(cache, gidx.to(dev))  # one copy of the prefix cache per span
            pos = torch.tensor([lens[rows2[r][0]] for r in rows])[:, None] + torch.arange(width)[None, :]
            out, _ = self._forward(
                keep.to(dev),
                use_cache=True,
                input_ids=ids.to(dev),
                attention_mask=torch.cat([mask[gidx], own], dim=1).to(dev),
                position_ids=pos.to(dev),
                cache=sub,
            )
            parts.append(out)
            del sub
        return torch.cat(parts), index


def _select_rows(cache, index: torch.Tensor):
    """A cache holding `index` rows of `cache`, which is left untouched for the next sub-batch.

    Cache layers replace (never modify in place) their tensors on select and update, so shallow
    copies of the layer objects suffice: only the selected rows are copied, not the whole cache.
    """
    layers = getattr(cache, "layers", None)
    if layers is None:
        sub = copy.deepcopy(cache)
    else:
        sub = copy.copy(cache)
        sub.layers = [copy.copy(layer) for layer in layers]
    sub.batch_select_indices(index)
    return sub


def _span_sums(groups: list[Group], span_owner: list[int], parts) -> list[list[tuple[float, bool]]]:
    """Per group, per span: summed log-probabilities (float64) and whether every token was greedy."""
    sums = torch.zeros(len(span_owner), dtype=torch.float64)
    misses = torch.zeros(len(span_owner), dtype=torch.long)
    for sids, lp, greedy in parts:
        owner = torch.tensor(sids, dtype=torch.long)
        sums.index_add_(0, owner, lp.double().cpu())
        misses.index_add_(0, owner, (~greedy).long().cpu())
    out: list[list[tuple[float, bool]]] = [[] for _ in groups]
    for sid, b in enumerate(span_owner):
        out[b].append((float(sums[sid]), bool(misses[sid] == 0)))
    return out


# Rows longer than this take the two-phase path (a packed row's mask is T x T per attention type).
PACKED_MAX_ROW = 4096


def packed_len(g: Group) -> int:
    """Length of a group's packed row: its prefix, then each span's input beyond it."""
    return g.prefix_len + sum(r for r in g.remainders() if r > 0)


# A forward pass costs about as much as this many padded tokens more (Python overhead, cache copy).
SPLIT_OVERHEAD_TOKENS = 48


def split_by_length(lengths: list[int], overhead: int = SPLIT_OVERHEAD_TOKENS) -> list[int]:
    """Sizes of consecutive chunks of sorted `lengths` minimising padded tokens + per-chunk overhead."""
    n = len(lengths)
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):  # chunk = lengths[i:j], padded to lengths[j-1]
            cost = best[i] + (j - i) * lengths[j - 1] + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    sizes, j = [], n
    while j > 0:
        sizes.append(j - cut[j])
        j = cut[j]
    return sizes[::-1]


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
