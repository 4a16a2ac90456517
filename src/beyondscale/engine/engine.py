"""The evaluation engine: Items in, ItemResults out, with lm-evaluation-harness's semantics.

    engine = Engine(model, tokenizer)
    for batch in engine.plan(items):
        results = engine.run_batch(batch)

`plan` sorts items by length and packs them under a token budget so padding stays small;
`run_batch` tokenises each item as lm-eval would (tokens.py), scores log-likelihood items with
shared prefixes and logits only at scored positions (scoring.py) and decodes generation items
greedily with a KV cache (generate.py). On out-of-memory it halves the work and retries.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import torch

from beyondscale.engine.generate import GenRow, eos_ids, finish_text, greedy_generate
from beyondscale.engine.requests import Item, ItemResult
from beyondscale.engine.scoring import (
    SPLIT_OVERHEAD_TOKENS,
    Group,
    SpanScorer,
    batch_cost,
    make_groups,
    packed_len,
    split_by_length,
)
from beyondscale.engine.tokens import LmEvalTokenizer, loglik_span, resolve_max_length, rolling_spans
from beyondscale.errors import UserError
from beyondscale.models.facts import FlopShape, flop_shape

T = TypeVar("T")

# Auto batch size: padded tokens per forward pass. Small on CPU (two cores gain nothing from huge
# matrices), larger on GPU; out-of-memory halving covers an optimistic guess.
CPU_TOKEN_BUDGET = 4096
CUDA_TOKEN_BUDGET = 16384
# float32 logits elements per forward (512 MiB on CPU, 1 GiB on GPU): bounds the scored positions
# per batch for big vocabularies (Gemma: 262k -> 512 positions on CPU) when the model's own head
# computes them (head.ChunkedHead holds a fixed chunk of rows whatever the batch).
CPU_LOGIT_BUDGET = 1 << 27
CUDA_LOGIT_BUDGET = 1 << 28


@dataclass
class _Prepared:
    """An item turned into token work: scoring groups, or one generation row."""

    groups: list[Group] = field(default_factory=list)
    n_slots: int = 0
    n_tokens: list[int] = field(default_factory=list)
    rolling: bool = False
    gen: GenRow | None = None

    def size(self) -> int:
        if self.gen is not None:
            return len(self.gen.ids) + self.gen.max_new
        return max((packed_len(g) for g in self.groups), default=0)


def is_oom(err: BaseException) -> bool:
    """CUDA and CPU out-of-memory errors (the CPU allocator raises a plain RuntimeError)."""
    if isinstance(err, (torch.OutOfMemoryError, MemoryError)):
        return True
    msg = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


class Engine:
    """Scores Items on a causal LM exactly as lm-eval's HF backend, in fewer FLOPs."""

    def __init__(
        self,
        model,
        tokenizer,
        *,
        batch_size: int | Literal["auto"] = "auto",
        max_length: int | None = None,
        add_bos_token: bool | None = None,
        rolling_stride: int | None = None,
    ) -> None:
        if batch_size != "auto" and (not isinstance(batch_size, int) or batch_size < 1):
            raise UserError(f"batch_size: must be a positive integer or 'auto', got {batch_size!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length or resolve_max_length(model.config, tokenizer)
        self.rolling_stride = rolling_stride
        if rolling_stride is not None and not 1 <= rolling_stride <= self.max_length:
            raise UserError(f"rolling_stride: must be between 1 and max_length={self.max_length}")
        self.tok = LmEvalTokenizer(tokenizer, add_bos_token)
        self.device = next(model.parameters()).device
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.tok.prefix_token_id  # always masked out
        self.scorer = SpanScorer(model, self.pad_id)
        self.eos = eos_ids(model, tokenizer)
        self.eos_str = (
            tokenizer.decode(tokenizer.eos_token_id, skip_special_tokens=False)
            if tokenizer.eos_token_id is not None
            else None
        )
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        self.vocab = head.weight.shape[0] if head is not None else int(model.config.vocab_size)
        cuda = self.device.type == "cuda"
        self.token_budget = CUDA_TOKEN_BUDGET if cuda else CPU_TOKEN_BUDGET
        self.logit_budget = CUDA_LOGIT_BUDGET if cuda else CPU_LOGIT_BUDGET
        self._prepared: dict[Item, _Prepared] = {}
        self.flop_shape = flop_shape(model)

    # ---- tokenisation --------------------------------------------------------------------------
    def _prepare(self, item: Item) -> _Prepared:
        prep = self._prepared.get(item)
        if prep is None:
            prep = self._prepared[item] = self._build(item)
        return prep

    def _build(self, item: Item) -> _Prepared:
        kind, L = item.output_type, self.max_length
        if kind == "generate_until":
            max_ctx = L - item.max_gen_toks
            if max_ctx <= 0:
                raise UserError(f"max_gen_toks: {item.max_gen_toks} leaves no room under max_length={L}")
            # an empty prompt (lm-eval would fail) conditions on the prefix token instead
            ids = self.tok.encode_generation_context(item.context)[-max_ctx:] or [self.tok.prefix_token_id]
            stops = list(item.until)
            if self.eos_str is not None and self.eos_str not in stops:
                stops.append(self.eos_str)
            return _Prepared(gen=GenRow(ids, item.max_gen_toks, stops))
        if kind == "loglikelihood_rolling":
            tokens = self.tok.encode(item.text)
            spans = rolling_spans(tokens, self.tok.prefix_token_id, L, self.rolling_stride)
            return _Prepared(make_groups(spans, share=False), 1, [len(tokens)], rolling=True)
        if kind == "multiple_choice" and item.contexts:
            if len(item.continuations) != 1:
                raise UserError(f"task item {item.doc_id}: partial evaluation needs one shared continuation")
            pairs = [self.tok.encode_pair(c, item.continuations[0]) for c in item.contexts]
        elif kind in ("multiple_choice", "loglikelihood"):
            if not item.continuations or (kind == "loglikelihood" and len(item.continuations) != 1):
                raise UserError(
                    f"task item {item.doc_id}: {kind} needs {'one' if kind == 'loglikelihood' else 'some'} continuation(s)"
                )
            pairs = [self.tok.encode_pair(item.context, c) for c in item.continuations]
        else:
            raise UserError(f"task item {item.doc_id}: unknown output_type {kind!r}")
        spans = [loglik_span(i, ctx, cont, L) for i, (ctx, cont) in enumerate(pairs)]
        return _Prepared(make_groups(spans, share=True), len(spans), [len(c) for _, c in pairs])

    # ---- batching ------------------------------------------------------------------------------
    def _fits(self, groups: list[Group]) -> bool:
        tokens, cache_rows, scored = batch_cost(groups)
        return (
            tokens <= self.token_budget
            and cache_rows <= 4 * self.token_budget
            and (self.scorer.head is not None or scored * self.vocab <= self.logit_budget)
        )

    def _gen_fits(self, rows: list[GenRow]) -> bool:
        return len(rows) * max(len(r.ids) + r.max_new for r in rows) <= 4 * self.token_budget

    def plan(self, items: Sequence[Item]) -> list[list[Item]]:
        """Batches of items of similar length (longest first). Results do not depend on it."""
        gen = [it for it in items if it.output_type == "generate_until"]
        score = [it for it in items if it.output_type != "generate_until"]
        batches: list[list[Item]] = []
        for part, fits in ((score, self._groups_fit), (gen, self._rows_fit)):
            ordered = sorted(part, key=lambda it: -self._prepare(it).size())
            if self.batch_size != "auto":
                n = self.batch_size
                batches += [ordered[i : i + n] for i in range(0, len(ordered), n)]
                continue
            current: list[Item] = []
            for it in ordered:
                if current and not fits([*current, it]):
                    batches.append(current)
                    current = []
                current.append(it)
            if current:
                batches.append(current)
        return batches

    def _groups_fit(self, items: list[Item]) -> bool:
        groups = [g for it in items for g in self._prepare(it).groups]
        return not groups or self._fits(groups)

    def _rows_fit(self, items: list[Item]) -> bool:
        return self._gen_fits([self._prepare(it).gen for it in items])

    def _chunks(self, xs: list[T], fits: Callable[[list[T]], bool]) -> list[list[T]]:
        """Split one batch's work under the budget (auto mode); a fixed batch size runs as given."""
        if self.batch_size != "auto":
            return [xs] if xs else []
        out: list[list[T]] = []
        for x in xs:
            if out and fits([*out[-1], x]):
                out[-1].append(x)
            else:
                out.append([x])
        return out

    def _halving(self, fn: Callable[[list[T]], list], xs: list[T]) -> list:
        """Run fn(xs); on out-of-memory, shrink the budget and run each half separately."""
        try:
            return fn(xs)
        except Exception as err:  # noqa: BLE001 - only OOM is handled, the rest re-raised
            if not is_oom(err) or len(xs) <= 1:
                raise
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.token_budget = max(256, self.token_budget // 2)
        mid = len(xs) // 2
        return self._halving(fn, xs[:mid]) + self._halving(fn, xs[mid:])

    # ---- running -------------------------------------------------------------------------------
    def run_batch(self, batch: list[Item]) -> list[ItemResult]:
        """One ItemResult per item, in the order given."""
        preps = [self._prepared.pop(it, None) or self._build(it) for it in batch]
        results = [ItemResult(doc_id=it.doc_id) for it in batch]
        groups = sorted(
            (dataclasses.replace(g, owner=i) for i, p in enumerate(preps) for g in p.groups),
            key=packed_len,
        )
        sums = {i: [0.0] * p.n_slots for i, p in enumerate(preps) if p.gen is None}
        greedy = {i: [True] * p.n_slots for i, p in enumerate(preps) if p.gen is None}
        # Prefixes of similar length share a forward pass (little padding); within that, the budget. A
        # forward's fixed cost is ~25-35 ms on CPU for SmolLM2/Gemma-3, ~40 tokens' worth (measured):
        # twice that left 7% padding on the short-answer bench, this 3% (1.6% faster, A/B, load ~2).
        similar, start = [], 0
        for n in split_by_length([packed_len(g) for g in groups], overhead=SPLIT_OVERHEAD_TOKENS):
            similar.append(groups[start : start + n])
            start += n
        for chunk in (c for part in similar for c in self._chunks(part, self._fits)):
            for g, outs in zip(chunk, self._halving(self.scorer.score, chunk), strict=True):
                results[g.owner].tokens_in += g.tokens_in()
                results[g.owner].flops = (results[g.owner].flops or 0.0) + self._group_flops(g)
                for span, (lp, ok) in zip(g.spans, outs, strict=True):
                    slot = 0 if preps[g.owner].rolling else span.slot
                    sums[g.owner][slot] += lp
                    greedy[g.owner][slot] &= ok
        for i, p in enumerate(preps):
            if p.gen is None:
                results[i].logprobs, results[i].is_greedy = sums[i], greedy[i]
                results[i].n_tokens = list(p.n_tokens)

        rows = [(i, p.gen) for i, p in enumerate(preps) if p.gen is not None]
        rows.sort(key=lambda r: -len(r[1].ids))
        keep_last = self.scorer.mode != "none"
        run = self._generate
        for chunk in self._chunks(rows, lambda rs: self._gen_fits([r for _, r in rs])):
            for i, row in self._halving(run, chunk):
                results[i].generation = finish_text(self.tokenizer, row.out, row.stops)
                results[i].tokens_in = len(row.ids)
                results[i].tokens_out = len(row.out)
                results[i].flops = generation_flops(self.flop_shape, len(row.ids), len(row.out), keep_last)
        return results

    def _group_flops(self, g: Group) -> float:
        """FLOPs of one group: its prefix once, each span's remainder after it; logits where computed
        (a prefix position scored by several spans is projected once)."""
        shape, all_logits = self.flop_shape, self.scorer.head is None and self.scorer.mode == "none"
        in_prefix: set[int] = set()
        for s in g.spans:
            m = len(s.seq) - 1
            in_prefix.update(range(m - s.n_scored, min(m, g.prefix_len)))
        flops = shape.forward(0, g.prefix_len, g.prefix_len if all_logits else len(in_prefix))
        for s in g.spans:
            m = len(s.seq) - 1
            if m > g.prefix_len:
                scored = m - max(m - s.n_scored, g.prefix_len)
                flops += shape.forward(g.prefix_len, m, m - g.prefix_len if all_logits else scored)
        return flops

    def _generate(self, rows: list[tuple[int, GenRow]]) -> list[tuple[int, GenRow]]:
        fresh = [dataclasses.replace(r, out=[]) for _, r in rows]
        keep_last = self.scorer.mode != "none"
        done = greedy_generate(self.model, self.tokenizer, fresh, self.pad_id, self.eos, keep_last)
        return [(i, r) for (i, _), r in zip(rows, done, strict=True)]

    def run(self, items: Sequence[Item]) -> list[ItemResult]:
        """Convenience: plan, run every batch, return results in the items' order."""
        by_id: dict[int, ItemResult] = {}
        for batch in self.plan(items):
            for it, res in zip(batch, self.run_batch(batch), strict=True):
                by_id[id(it)] = res
        return [by_id[id(it)] for it in items]


def generation_flops(shape: FlopShape, prompt: int, generated: int, keep_last: bool) -> float:
    """Prefill of the prompt (logits at its last position only when `keep_last`) plus one forward
    per generated token fed back (the last generated token is never fed)."""
    prefill = shape.forward(0, prompt, 1 if keep_last else prompt)
    fed = max(0, generated - 1)
    return prefill + shape.forward(prompt, prompt + fed, fed)
