"""Can beyondscale run this lm-evaluation-harness task config? Decided before any data is loaded.

lm-eval does the task's semantics (prompts, few-shot, filters, metrics, aggregations); what is checked
here is that every piece lm-eval will need resolves (its metric, aggregation, filter and sampler
registries, the functions the YAML names) and that the requests it will send are ones beyondscale's
model answers: text in, log-likelihoods or generations out, with generation options that
`transformers`' `generate` understands. A refusal is one line saying which field and why.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from beyondscale.errors import UserError

OUTPUT_TYPES = ("loglikelihood", "loglikelihood_rolling", "multiple_choice", "generate_until")
# lm-eval's own generation options (lm_eval.models.utils.normalize_gen_kwargs and HFLM.generate_until)
LM_EVAL_GEN_KEYS = frozenset({"until", "max_gen_toks", "max_new_tokens", "max_tokens", "max_completion_tokens",
                              "do_sample", "temperature", "max_length"})
STRUCTURAL_KEYS = ("tag", "group", "task_list")


@functools.cache
def _hf_generation_keys() -> frozenset[str]:
    from transformers import GenerationConfig

    return frozenset(GenerationConfig().to_dict())


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _metric_refusal(cfg: dict[str, Any]) -> str | None:
    from lm_eval.api import registry

    registry.get_metric("acc")  # fills the registries (lazy in lm-eval)
    for entry in cfg.get("metric_list") or []:
        if not isinstance(entry, dict) or "metric" not in entry:
            return "metric_list: every entry needs a `metric`"
        name = entry["metric"]
        if cfg.get("process_results") is None and not callable(name):
            if entry.get("hf_evaluate") or name not in registry.metric_registry:
                if importlib.util.find_spec("evaluate") is None:
                    return f"metric_list: metric {name!r} is not lm-eval's; it comes from the `evaluate` package, " \
                           "which is not installed"
        agg = entry.get("aggregation")
        if isinstance(agg, str) and agg not in registry.aggregation_registry:
            return f"metric_list: aggregation {agg!r} of metric {_name(name)!r} is not one lm-eval knows"
    return None


def _filter_refusal(cfg: dict[str, Any]) -> str | None:
    import lm_eval.filters  # noqa: F401 - registers lm-eval's filters
    from lm_eval.api.registry import filter_registry

    filters = cfg.get("filter_list")
    if filters is None:
        return None
    if not isinstance(filters, list):
        return "filter_list: expected a list of {name, filter} entries"
    for pipeline in filters:
        for step in pipeline.get("filter", []):
            fn = step.get("function")
            if not callable(fn) and fn not in filter_registry:
                return f"filter_list: filter {fn!r} (pipeline {pipeline.get('name')!r}) is not one lm-eval knows"
            kwargs = {k: v for k, v in step.items() if k != "function"}
            try:
                cls = fn if callable(fn) else filter_registry.get(fn)
                if isinstance(cls, type):
                    cls(**kwargs)
            except Exception as err:  # noqa: BLE001 - any construction error is the config's
                return f"filter_list: filter {fn!r} does not accept {sorted(kwargs)}: {err}"
    return None


def _generation_refusal(cfg: dict[str, Any]) -> str | None:
    kwargs = cfg.get("generation_kwargs") or {}
    if not isinstance(kwargs, dict):
        return "generation_kwargs: expected a mapping"
    unknown = sorted(set(kwargs) - LM_EVAL_GEN_KEYS - _hf_generation_keys())
    if unknown:
        return f"generation_kwargs: {', '.join(unknown)} not understood by transformers' generate"
    return None


def _sampler_refusal(cfg: dict[str, Any]) -> str | None:
    from lm_eval.api.samplers import SAMPLER_REGISTRY, ContextSampler

    fewshot = cfg.get("fewshot_config") or {}
    sampler = fewshot.get("sampler", "default") if isinstance(fewshot, dict) else "default"
    if isinstance(sampler, str) and sampler not in SAMPLER_REGISTRY:
        return f"fewshot_config.sampler: {sampler!r} is not one of {sorted(SAMPLER_REGISTRY)}"
    if not isinstance(sampler, str) and not (isinstance(sampler, type) and issubclass(sampler, ContextSampler)):
        return "fewshot_config.sampler: expected a sampler name or a ContextSampler class"
    return None


def task_refusal(cfg: dict[str, Any]) -> str | None:
    """Why beyondscale cannot run this task config (None: it can). `cfg` has its functions resolved."""
    from lm_eval.api.task import Task
    from lm_eval.config.task import TaskConfig

    if "class" in cfg:
        cls = cfg["class"]
        return None if isinstance(cls, type) and issubclass(cls, Task) else "class: not an lm-eval Task class"
    if cfg.get("doc_to_image") is not None or cfg.get("doc_to_audio"):
        return "doc_to_image/doc_to_audio: multimodal task; beyondscale's engine scores text models"
    if cfg.get("unsafe_code"):
        return "unsafe_code: the task executes model-written code, which beyondscale does not run"
    output_type = cfg.get("output_type", "generate_until")
    if output_type not in OUTPUT_TYPES:
        return f"output_type: {output_type!r} is not one of {', '.join(OUTPUT_TYPES)}"
    prompt = cfg.get("use_prompt")
    if prompt and str(prompt).startswith("promptsource") and importlib.util.find_spec("promptsource") is None:
        return "use_prompt: promptsource prompts need the `promptsource` package, which is not installed"
    if cfg.get("dataset_path") is None and cfg.get("custom_dataset") is None:
        return "dataset_path: missing (and no custom_dataset)"
    for check in (_metric_refusal, _filter_refusal, _generation_refusal, _sampler_refusal):
        reason = check(cfg)
        if reason:
            return reason
    try:
        TaskConfig(**{k: v for k, v in cfg.items() if k not in STRUCTURAL_KEYS})
    except Exception as err:  # noqa: BLE001 - lm-eval's own validation, worded as a refusal
        return f"config: {type(err).__name__}: {err}"
    return None


def group_refusal(cfg: dict[str, Any], known: set[str] | dict[str, Any]) -> str | None:
    """Why this group config cannot run: its aggregation or a member lm-eval does not know."""
    from lm_eval.config.group import GroupConfig
    from lm_eval.tasks._factory import GROUP_FIELD_NAMES

    try:
        group = GroupConfig(**{k: v for k, v in cfg.items() if k in GROUP_FIELD_NAMES})
    except Exception as err:  # noqa: BLE001
        return f"group config: {err}"
    for member in group.task or []:
        if isinstance(member, str) and member not in known:
            return f"task: member {member!r} is not a task, group or tag lm-eval knows"
        if isinstance(member, dict) and "task" not in member and "group" not in member:
            return f"task: member {member!r} has neither `task` nor `group`"
    return None


def check_task_config(cfg: dict[str, Any], source: str | Path | None) -> None:
    """Raise one-line UserError when `task_refusal` refuses the config."""
    reason = task_refusal(cfg)
    if reason:
        raise UserError(f"task {cfg.get('task')!r} ({source or 'inline'}): {reason}")
