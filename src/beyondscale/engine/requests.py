"""What a task asks of a model (`Item`) and what the engine answers (`ItemResult`).

These two types are the contract between tasks/, engine/, metrics/ and store/: a task renders
each document into one `Item`; the engine turns each `Item` into one `ItemResult`; metrics score
the pairs; the store keeps both, keyed by `Item.key()` so a re-run resumes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

OutputType = Literal["multiple_choice", "loglikelihood", "loglikelihood_rolling", "generate_until"]
OUTPUT_TYPES: tuple[str, ...] = ("multiple_choice", "loglikelihood", "loglikelihood_rolling", "generate_until")


@dataclass(frozen=True)
class Item:
    """One document of a task, rendered into the request(s) the engine must compute.

    multiple_choice: `context` (few-shot included) and one continuation per choice, each already
        prefixed with the task's `target_delimiter` (as lm-evaluation-harness builds them);
        `choices` are the raw choice strings (acc_norm divides by their length in characters);
        `gold` is the index of the right choice (or a tuple of indices when several are right).
        Partial evaluation (winogrande): `contexts` holds one context per choice and
        `continuations` holds the single continuation they share; `context` is then empty.
    loglikelihood: `context` and a single continuation; `gold` is unused.
    loglikelihood_rolling: `text` is the whole document, scored with no context.
    generate_until: `context`, the stop strings `until`, `max_gen_toks`; `gold` is the reference
        string (or a tuple of acceptable strings).
    """

    doc_id: int
    output_type: OutputType
    context: str = ""
    continuations: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ()
    gold: int | str | tuple[int, ...] | tuple[str, ...] | None = None
    text: str = ""
    until: tuple[str, ...] = ()
    max_gen_toks: int = 256
    count_text: str = ""  # rolling: words/bytes counted on this text when set (lm-eval's wikitext)

    def key(self) -> str:
        """Content hash of the request: equal requests resume, changed ones are recomputed."""
        fields = asdict(self)
        if not fields["count_text"]:
            del fields["count_text"]  # keeps the keys of items that never set it
        blob = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=list)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


@dataclass
class ItemResult:
    """The engine's answer for one `Item`.

    logprobs / is_greedy / n_tokens: one entry per continuation (multiple_choice, loglikelihood),
        or a single entry for the whole document (loglikelihood_rolling). logprobs are natural-log
        sums over the continuation's tokens; is_greedy says every continuation token was the argmax.
    generation: the generated text, cut at the first stop string (generate_until only).
    tokens_in: tokens the model read for this item (prefill, each shared context counted once);
    tokens_out: tokens generated (generate_until only). The meter sums both.
    flops: model FLOPs this item's scoring needed, from the context lengths actually processed
        (shared prefixes counted once, padding excluded; see models.facts.FlopShape); None when unknown.
    """

    doc_id: int
    logprobs: list[float] = field(default_factory=list)
    is_greedy: list[bool] = field(default_factory=list)
    n_tokens: list[int] = field(default_factory=list)
    generation: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    flops: float | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ItemResult:
        return cls(**data)
