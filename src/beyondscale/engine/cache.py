"""The KV cache's argument and output names across transformers versions.

transformers 5 renamed a forward's `past_key_values` (input and output) to `cache` and removes the
old name in 5.40; older releases only know `past_key_values`. The engine and the benchmark ask here
instead of naming either.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


@functools.cache
def _takes_cache(forward_type: type) -> bool:
    return "cache" in inspect.signature(forward_type.forward).parameters


def cache_kwargs(model: Any, cache: Any) -> dict[str, Any]:
    """{"cache": cache} where the model takes it, else {"past_key_values": cache}."""
    return {"cache" if _takes_cache(type(model)) else "past_key_values": cache}


def output_cache(out: Any) -> Any:
    """The cache a forward returned, read under its current name."""
    names = getattr(type(out), "__dataclass_fields__", {})
    return out.cache if "cache" in names else out.past_key_values
