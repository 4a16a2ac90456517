"""Load a model for a probe (lens, attribution, routing, bias) and compute its store key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ProbeModel:
    """A loaded model, its tokenizer, display name and the store's model key (content identity + dtype)."""

    model: Any
    tokenizer: Any
    name: str
    key: str
    max_length: int
    record: dict[str, Any]  # what the store's models table keeps: name, ref, identity, facts


def load_probe_model(spec: str, *, device: str = "auto", dtype: str = "auto") -> ProbeModel:
    from beyondscale.engine.tokens import resolve_max_length
    from beyondscale.models import load_model, model_key, parse_model_ref
    from beyondscale.models.load import resolve_device, resolve_dtype

    ref = parse_model_ref(spec)
    device = resolve_device(device)
    identity = ref.identity()
    loaded = load_model(ref, dtype=dtype, device=device, identity=identity)
    key = model_key(ref, resolve_dtype(dtype, device), identity)
    max_length = resolve_max_length(loaded.model.config, loaded.tokenizer)
    record = {"name": ref.name, "ref": ref.to_dict(), "identity": identity, "facts": loaded.facts.to_dict()}
    return ProbeModel(loaded.model, loaded.tokenizer, ref.name, key, max_length, record)
