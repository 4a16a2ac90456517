"""The engine and the generation benchmark use transformers' current cache argument: no deprecation
warning (FutureWarning or transformers' logged warning) reaches the study's output."""

from __future__ import annotations

import logging
import warnings

import torch
from transformers.utils import logging as hf_logging

from _tiny_models import tiny_llama, tiny_tokenizer
from beyondscale.engine import Engine, Item
from beyondscale.measure import Meter, bench_generation


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _run_without_deprecations(fn) -> None:
    hf_logging.warning_once.cache_clear()  # a warning already shown once in this process would hide
    handler = _Records()
    root = logging.getLogger("transformers")
    root.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            fn()
    finally:
        root.removeHandler(handler)
    assert not [m for m in handler.messages if "deprecated" in m], handler.messages


def test_engine_scoring_and_generation_use_the_current_cache_argument() -> None:
    engine = Engine(tiny_llama(), tiny_tokenizer())
    items = [
        Item(0, "multiple_choice", context="The cat sat on the", continuations=(" big red mat", " tree"),
             choices=("big red mat", "tree"), gold=0),  # phase 2: remainders run from the prefix cache
        Item(1, "generate_until", context="the dog ran to", until=(), max_gen_toks=4),
    ]
    _run_without_deprecations(lambda: engine.run(items))


def test_bench_uses_the_current_cache_argument() -> None:
    torch.manual_seed(0)
    _run_without_deprecations(
        lambda: bench_generation(tiny_llama(), None, prompt_tokens=[4], new_tokens=3, repetitions=1, warmup=0,
                                 meter=Meter())
    )
