"""`TaskSpec`: an lm-evaluation-harness task file, parsed safely and checked before any model runs.

Task files use lm-eval's field names so a user can bring their own lm-eval YAML (minus `!function`)
and take ours back to lm-eval. What we cannot honour is refused with a one-line `UserError` naming
the file and field, never silently ignored: a task that runs must mean what lm-eval would mean.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from beyondscale.errors import UserError
from beyondscale.tasks import template
from beyondscale.tasks.safe_builtins import (
    BUILTINS_VERSION,
    PROCESS_DOCS,
    PROCESS_RESULTS,
    process_docs_names,
)

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
HASH_VERSION = "1"

DEFAULT_METRICS: dict[str, list[str]] = {
    "multiple_choice": ["acc", "acc_norm"],
    "loglikelihood": ["perplexity", "acc"],
    "loglikelihood_rolling": ["word_perplexity", "byte_perplexity", "bits_per_byte"],
    "generate_until": ["exact_match"],
}

# lm-eval fields we know but refuse, with the reason shown to the user.
UNSUPPORTED_FIELDS: dict[str, str] = {
    "custom_dataset": "is Python code; point dataset_path/dataset_kwargs at the data instead",
    "use_prompt": "(promptsource) is not supported; write doc_to_text/doc_to_target as Jinja",
    "doc_to_image": "multimodal tasks are not supported",
    "doc_to_audio": "multimodal tasks are not supported",
    "unsafe_code": "tasks that execute code are not supported",
    "gen_prefix": "is not supported",
    "task_list": "group files are not supported; load each task file on its own",
    "aggregate_metric_list": "group files are not supported; load each task file on its own",
    "group_alias": "group files are not supported; load each task file on its own",
}

# Decoding settings that change nothing under greedy decoding; accepted and ignored.
_IGNORED_GEN_KWARGS = ("temperature", "top_p", "top_k")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricConfig(BaseModel):
    """One `metric_list` entry; keys other than these three are the metric's keyword arguments."""

    model_config = ConfigDict(extra="allow")

    metric: str
    aggregation: str | None = None
    higher_is_better: bool | None = None

    def kwargs(self) -> dict[str, Any]:
        extra = dict(self.model_extra or {})
        extra.pop("hf_evaluate", None)
        return extra


class GenerationKwargs(_Model):
    """`generation_kwargs` of a generate_until task. Decoding is greedy, so sampling is refused."""

    until: str | list[str] | None = None
    max_gen_toks: int | None = Field(default=None, ge=1)
    do_sample: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None


class FewshotConfig(_Model):
    """`fewshot_config`: where few-shot examples come from and how they are formatted."""

    sampler: Literal["default", "first_n"] = "default"
    split: str | None = None
    process_docs: str | None = None
    fewshot_indices: list[int] | None = None
    samples: list[dict[str, Any]] | None = None
    doc_to_text: str | int | None = None
    doc_to_target: str | int | list[Any] | None = None
    doc_to_choice: str | list[Any] | dict[str, Any] | None = None
    fewshot_delimiter: str | None = None
    target_delimiter: str | None = None


class TaskSpec(_Model):
    """An lm-evaluation-harness task, resolved (includes merged, data paths absolute) and checked."""

    task: str
    task_alias: str | None = None
    tag: str | list[str] | None = None
    group: str | list[str] | None = None
    dataset_path: str
    dataset_name: str | None = None
    dataset_kwargs: dict[str, Any] | None = None
    training_split: str | None = None
    validation_split: str | None = None
    test_split: str | None = None
    fewshot_split: str | None = None
    process_docs: str | None = None
    process_results: str | None = None
    doc_to_text: str | int | None = None
    doc_to_target: str | int | list[Any] | None = None
    doc_to_choice: str | list[Any] | dict[str, Any] | None = None
    description: str = ""
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    fewshot_config: FewshotConfig | None = None
    num_fewshot: int | None = Field(default=None, ge=0)
    metric_list: list[MetricConfig] | None = None
    output_type: Literal["multiple_choice", "loglikelihood", "loglikelihood_rolling", "generate_until"] = (
        "generate_until"
    )
    generation_kwargs: GenerationKwargs | None = None
    repeats: int = 1
    filter_list: list[dict[str, Any]] | None = None
    should_decontaminate: bool = False
    doc_to_decontamination_query: str | None = None
    metadata: dict[str, Any] | None = None

    _source_path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> TaskSpec:
        where = (info.context or {}).get("source") or f"task {self.task}"
        _check_spec(self, where)
        return self

    # --- derived views ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The task's name (`task:` in the file)."""
        return self.task

    @property
    def source_path(self) -> Path | None:
        """The YAML file this spec came from (None when built in Python)."""
        return self._source_path

    def eval_split(self) -> str:
        """The split that is scored: test_split, else validation_split (as lm-eval)."""
        split = self.test_split or self.validation_split
        assert split is not None  # checked at validation
        return split

    def metric_names(self) -> list[str]:
        """Metrics to report: `metric_list`, else lm-eval's defaults for the output type."""
        if self.metric_list:
            return [m.metric for m in self.metric_list]
        return list(DEFAULT_METRICS[self.output_type])

    def metric_kwargs(self, name: str) -> dict[str, Any]:
        """Keyword arguments given for metric `name` (e.g. ignore_case for exact_match)."""
        for m in self.metric_list or []:
            if m.metric == name:
                return m.kwargs()
        if name in self.metric_names():
            return {}
        raise UserError(f"task {self.task}: metric `{name}` is not one of {', '.join(self.metric_names())}")

    def generation_settings(self) -> tuple[tuple[str, ...], int]:
        """(until, max_gen_toks) with lm-eval's defaults: until = [fewshot_delimiter], 256 tokens."""
        gk = self.generation_kwargs
        until: str | list[str] | None = gk.until if gk is not None else None
        if until is None:
            until = [self.fewshot_delimiter]
        elif isinstance(until, str):
            until = [until]
        max_gen_toks = gk.max_gen_toks if gk is not None and gk.max_gen_toks is not None else 256
        return tuple(until), max_gen_toks

    def spec_hash(self) -> str:
        """Content hash of the resolved spec and of its data (file bytes, or hub path/name/revision).

        Paths are left out for local data, so moving a task folder keeps its hash while editing a
        data file changes it. Cosmetic fields (tags, aliases, decontamination) are left out too.
        """
        from beyondscale.tasks.data import data_fingerprint

        dumped = self.model_dump(
            mode="json",
            exclude={"tag", "group", "task_alias", "should_decontaminate", "doc_to_decontamination_query"},
        )
        if dumped.get("dataset_kwargs") and "data_files" in dumped["dataset_kwargs"]:
            dumped["dataset_kwargs"] = {
                k: v for k, v in dumped["dataset_kwargs"].items() if k != "data_files"
            }
        blob = {
            "hash_version": HASH_VERSION,
            "builtins_version": BUILTINS_VERSION,
            "spec": dumped,
            "data": data_fingerprint(self),
        }
        text = json.dumps(blob, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# --- checks -----------------------------------------------------------------------------------------


def _check_spec(spec: TaskSpec, where: str) -> None:
    if spec.repeats != 1:
        raise UserError(f"{where}: `repeats: {spec.repeats}` is not supported (decoding is greedy; use 1)")
    if spec.test_split is None and spec.validation_split is None:
        raise UserError(f"{where}: set `test_split` or `validation_split` (the split to evaluate)")
    if spec.output_type != "loglikelihood_rolling" and spec.doc_to_text is None:
        raise UserError(f"{where}: missing required field `doc_to_text` for output_type {spec.output_type}")
    if spec.doc_to_target is None:
        raise UserError(f"{where}: missing required field `doc_to_target`")
    if spec.output_type == "multiple_choice" and spec.doc_to_choice is None:
        raise UserError(f"{where}: missing required field `doc_to_choice` for output_type multiple_choice")
    gk = spec.generation_kwargs
    if gk is not None and gk.do_sample:
        raise UserError(f"{where}: `generation_kwargs.do_sample: true` is not supported (decoding is greedy)")
    for field, name in (
        ("process_docs", spec.process_docs),
        ("fewshot_config.process_docs", spec.fewshot_config.process_docs if spec.fewshot_config else None),
    ):
        if name is not None and name not in PROCESS_DOCS:
            raise UserError(
                f"{where}: `{field}: {name}` is not a built-in process_docs "
                f"(available: {', '.join(process_docs_names())})"
            )
    if spec.process_results is not None and (
        spec.process_results not in PROCESS_RESULTS or spec.output_type != "loglikelihood_rolling"
    ):
        raise UserError(
            f"{where}: `process_results: {spec.process_results}` is not a built-in for {spec.output_type} "
            f"(available for loglikelihood_rolling: {', '.join(PROCESS_RESULTS)}); metrics come from metric_list"
        )
    _check_filters(spec, where)
    _check_dataset(spec, where)
    _check_templates(spec, where)


def _check_filters(spec: TaskSpec, where: str) -> None:
    for entry in spec.filter_list or []:
        steps = entry.get("filter")
        if not isinstance(steps, list) or not steps:
            raise UserError(f"{where}: each `filter_list` entry needs a `filter:` list of steps")
        for step in steps:
            fn = step.get("function") if isinstance(step, dict) else None
            if fn != "take_first":
                raise UserError(
                    f"{where}: filter `{fn}` in filter_list is not supported "
                    "(only `take_first`, which is what greedy decoding does anyway)"
                )


def _check_dataset(spec: TaskSpec, where: str) -> None:
    if spec.dataset_path.endswith(".py"):
        raise UserError(
            f"{where}: dataset_path `{spec.dataset_path}` is a loading script (code); not allowed"
        )
    kwargs = spec.dataset_kwargs or {}
    if kwargs.get("trust_remote_code"):
        raise UserError(f"{where}: `dataset_kwargs.trust_remote_code: true` runs remote code; not allowed")


def _template_fields(spec: TaskSpec) -> list[tuple[str, Any]]:
    fields: list[tuple[str, Any]] = [
        ("doc_to_text", spec.doc_to_text),
        ("doc_to_target", spec.doc_to_target),
        ("doc_to_choice", spec.doc_to_choice),
        ("description", spec.description),
    ]
    if spec.fewshot_config is not None:
        fc = spec.fewshot_config
        fields += [
            ("fewshot_config.doc_to_text", fc.doc_to_text),
            ("fewshot_config.doc_to_target", fc.doc_to_target),
            ("fewshot_config.doc_to_choice", fc.doc_to_choice),
        ]
    return fields


def _check_templates(spec: TaskSpec, where: str) -> None:
    for field, value in _template_fields(spec):
        if isinstance(value, str):
            template.check_syntax(value, where=f"{where}: field `{field}`")


# --- YAML loading -----------------------------------------------------------------------------------


class _RefusedTag(Exception):
    def __init__(self, tag: str, line: int) -> None:
        super().__init__(tag)
        self.tag = tag
        self.line = line


class _TaskLoader(yaml.SafeLoader):
    """SafeLoader that refuses every non-standard tag (`!function` above all): task files are data."""


def _refuse(loader: yaml.Loader, node: yaml.Node) -> Any:
    raise _RefusedTag(node.tag, node.start_mark.line + 1)


_TaskLoader.add_constructor(None, _refuse)  # type: ignore[arg-type]
_TaskLoader.add_constructor("!function", _refuse)  # type: ignore[arg-type]


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Parse one YAML file safely; also return each top-level key's line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read task file ({err.strerror})") from None
    try:
        data = yaml.load(text, Loader=_TaskLoader)  # noqa: S506 - _TaskLoader is a SafeLoader
        node = yaml.compose(text, Loader=_TaskLoader)  # noqa: S506
    except _RefusedTag as err:
        if err.tag == "!function":
            raise UserError(
                f"{path}:{err.line}: `!function` (code execution) is not allowed; use a built-in "
                f"process_docs name ({', '.join(process_docs_names())}) or a Jinja template"
            ) from None
        raise UserError(f"{path}:{err.line}: YAML tag `{err.tag}` is not allowed in task files") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{path}{line}: invalid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a task file must be a YAML mapping of lm-eval fields")
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            lines[str(key_node.value)] = key_node.start_mark.line + 1
    return data, lines


def _load_merged(path: Path, seen: tuple[Path, ...]) -> tuple[dict[str, Any], dict[str, tuple[Path, int]]]:
    """lm-eval's `include`: included files (relative to this one) are merged underneath this one."""
    path = path.resolve()
    if path in seen:
        raise UserError(f"{path}: `include` cycle ({' -> '.join(p.name for p in (*seen, path))})")
    data, lines = _read_yaml(path)
    prov = {key: (path, lines.get(key, 0)) for key in data}
    if "include" not in data:
        return data, prov
    includes = data.pop("include")
    prov.pop("include", None)
    merged: dict[str, Any] = {}
    merged_prov: dict[str, tuple[Path, int]] = {}
    for inc in includes if isinstance(includes, list) else [includes]:
        if not isinstance(inc, str):
            raise UserError(f"{path}: `include` must be a file name or a list of file names")
        inc_path = Path(inc) if Path(inc).is_absolute() else path.parent / inc
        if not inc_path.is_file():
            raise UserError(f"{path}: included file `{inc}` not found (looked in {path.parent})")
        inc_data, inc_prov = _load_merged(inc_path, (*seen, path))
        inc_data.pop("task_list", None)
        merged.update(inc_data)
        merged_prov.update(inc_prov)
    merged.update(data)
    merged_prov.update(prov)
    return merged, merged_prov


def _resolve_data_files(data: dict[str, Any], prov: dict[str, tuple[Path, int]]) -> None:
    """Make local `data_files` absolute, relative to the file that wrote `dataset_kwargs`."""
    from beyondscale.tasks.data import LOCAL_BUILDERS

    kwargs = data.get("dataset_kwargs")
    if data.get("dataset_path") not in LOCAL_BUILDERS or not isinstance(kwargs, dict):
        return
    files = kwargs.get("data_files")
    if files is None:
        return
    base = prov["dataset_kwargs"][0].parent

    def fix(p: Any) -> Any:
        if not isinstance(p, str) or "://" in p or Path(p).is_absolute():
            return p
        return str(base / p)

    if isinstance(files, str):
        new: Any = fix(files)
    elif isinstance(files, list):
        new = [fix(p) for p in files]
    elif isinstance(files, dict):
        new = {split: ([fix(p) for p in v] if isinstance(v, list) else fix(v)) for split, v in files.items()}
    else:
        new = files  # let validation in data.py complain with context
    data["dataset_kwargs"] = {**kwargs, "data_files": new}


def _where(source: Path, prov: dict[str, tuple[Path, int]], field: str) -> str:
    top = field.split(".")[0]
    if top in prov:
        path, line = prov[top]
        return f"{path}:{line}" if line else str(path)
    return str(source)


def spec_from_dict(
    data: dict[str, Any],
    *,
    source: str | Path | None = None,
    provenance: dict[str, tuple[Path, int]] | None = None,
) -> TaskSpec:
    """Validate a dict of lm-eval fields into a `TaskSpec`, turning every problem into a `UserError`."""
    label = str(source) if source is not None else f"task {data.get('task', '?')}"
    prov = provenance or {}
    src = Path(source) if source is not None else Path("<dict>")
    known = set(TaskSpec.model_fields)
    for key in data:
        if key in UNSUPPORTED_FIELDS:
            raise UserError(f"{_where(src, prov, key)}: field `{key}` {UNSUPPORTED_FIELDS[key]}")
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UserError(f"{_where(src, prov, str(key))}: unknown field `{key}`{hint}")
    try:
        spec = TaskSpec.model_validate(data, context={"source": label})
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        where = _where(src, prov, loc) if loc else label
        if first["type"] == "missing":
            raise UserError(f"{where}: missing required field `{loc}`") from None
        if first["type"] == "extra_forbidden":
            raise UserError(f"{where}: unknown field `{loc}`") from None
        got = repr(first.get("input"))
        got = got if len(got) <= 80 else got[:77] + "..."
        raise UserError(f"{where}: field `{loc}`: {first['msg']} (got {got})") from None
    if source is not None:
        spec._source_path = Path(source)
    return spec


def load_task_file(path: str | Path) -> TaskSpec:
    """Load and validate one task YAML file (with its includes)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"task file {path} not found")
    data, prov = _load_merged(path, ())
    _resolve_data_files(data, prov)
    return spec_from_dict(data, source=path.resolve(), provenance=prov)


def list_builtin_tasks() -> list[str]:
    """Names of the task files shipped with beyondscale (tasks/builtin/<name>.yaml)."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml") if not p.stem.startswith("_"))


def load_task(name_or_path: str) -> TaskSpec:
    """A built-in task by name (`arc_easy`) or any lm-eval style YAML file by path."""
    text = str(name_or_path)
    looks_like_path = text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text
    if looks_like_path or Path(text).is_file():
        return load_task_file(text)
    names = list_builtin_tasks()
    if text in names:
        return load_task_file(BUILTIN_DIR / f"{text}.yaml")
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserError(f"unknown task `{text}`; {hint}built-in tasks: {', '.join(names)} (or give a YAML path)")
