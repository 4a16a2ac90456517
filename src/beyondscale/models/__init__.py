"""Models: parse what the user typed (`ModelRef`), load it safely, and measure its size (`ModelFacts`)."""

from __future__ import annotations

from typing import Any

from beyondscale.keys import content_key
from beyondscale.models.cache import cache_dir
from beyondscale.models.facts import FlopShape, ModelFacts, compute_facts, flop_shape
from beyondscale.models.load import LoadedModel, load_model
from beyondscale.models.ref import ModelRef, parse_model_ref


def model_key(ref: ModelRef, dtype: Any, identity: str | None = None, quantization: str | None = None) -> str:
    """The store's key of a model: its content identity, the dtype it is evaluated in and the
    quantisation applied at load time (`QuantPlan.label`; None keeps a float model's key unchanged).

    `dtype` is the resolved dtype name ("float32", "auto", or a torch.dtype, written without "torch.");
    pass `identity` when `ref.identity()` was already computed.
    """
    ident = identity if identity is not None else ref.identity()
    parts = {"identity": ident, "dtype": str(dtype).removeprefix("torch.")}
    if quantization:
        parts["quantization"] = quantization
    return content_key(parts)


__all__ = [
    "FlopShape",
    "LoadedModel",
    "ModelFacts",
    "ModelRef",
    "cache_dir",
    "compute_facts",
    "flop_shape",
    "load_model",
    "model_key",
    "parse_model_ref",
]
