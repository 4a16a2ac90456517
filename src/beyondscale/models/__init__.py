"""Models: parse what the user typed (`ModelRef`), load it safely, and measure its size (`ModelFacts`)."""

from beyondscale.models.facts import ModelFacts, compute_facts
from beyondscale.models.load import LoadedModel, cache_dir, load_model
from beyondscale.models.ref import ModelRef, parse_model_ref

__all__ = ["LoadedModel", "ModelFacts", "ModelRef", "cache_dir", "compute_facts", "load_model", "parse_model_ref"]
