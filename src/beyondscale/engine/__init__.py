"""Evaluation engine: lm-evaluation-harness semantics, shared-prefix scoring, batched greedy decoding."""

from beyondscale.engine.engine import Engine
from beyondscale.engine.requests import OUTPUT_TYPES, Item, ItemResult, OutputType

__all__ = ["Engine", "Item", "ItemResult", "OutputType", "OUTPUT_TYPES"]
