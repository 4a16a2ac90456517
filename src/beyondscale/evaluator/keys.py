"""The resume keys of an evaluation: a task key covers lm-eval's identity of it and the settings that change scores; a
model key covers weights, config, tokenizer, dtype and quantisation (`models.model_key`)."""

from __future__ import annotations

from typing import Any

from beyondscale.evaluator.settings import EvalSettings
from beyondscale.keys import content_key


def task_key(identity: Any, settings: EvalSettings) -> str:
    """What the task is (lm-eval's content identity of it, `tasks.harness_identity.task_identity`), the request
    options lm-eval's config does not record, and the settings that change its scores."""
    return content_key({"lm_eval_task": identity.key, "apply_chat_template": settings.apply_chat_template,
                        "system_instruction": settings.system_instruction, "score_config": settings.score_config()})


def model_key_for(ref: Any, identity: str, settings: EvalSettings, device: str) -> str:
    from beyondscale.models import model_key
    from beyondscale.models.load import resolve_dtype
    from beyondscale.models.quantize import plan_quantization

    plan = plan_quantization(settings.quantize, device)
    return model_key(ref, resolve_dtype(settings.dtype, device), identity=identity,
                     quantization=plan.label if plan else None)
