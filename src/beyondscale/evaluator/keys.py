"""The resume keys of an evaluation: a task key covers its spec and the settings that change scores; a
model key covers weights, config, tokenizer, dtype and quantisation (`models.model_key`)."""

from __future__ import annotations

from typing import Any

from beyondscale.evaluator.settings import EvalSettings
from beyondscale.keys import content_key


def task_key_for(spec_hash: str, settings: EvalSettings) -> str:
    """What the task is and how it is scored."""
    return content_key({"spec": spec_hash, "score_config": settings.score_config()})


def model_key_for(ref: Any, identity: str, settings: EvalSettings, device: str) -> str:
    from beyondscale.models import model_key
    from beyondscale.models.load import resolve_dtype
    from beyondscale.models.quantize import plan_quantization

    plan = plan_quantization(settings.quantize, device)
    return model_key(ref, resolve_dtype(settings.dtype, device), identity=identity,
                     quantization=plan.label if plan else None)
