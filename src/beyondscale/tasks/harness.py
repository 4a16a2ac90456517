"""lm-evaluation-harness as beyondscale's task library: names, folders and files in, lm-eval tasks out.

    loaded = load_tasks("mmlu,gsm8k", include_path="my_tasks/")     # any task, group or tag lm-eval knows
    results = run_harness(lm, loaded, limit=40)                      # lm-eval's own evaluation, our model
    ids = {name: task_identity(t, seed) for name, t in loaded.tasks.items()}

lm-eval resolves the names (its `TaskManager`, `include_path` folders and YAML files), builds the tasks,
their few-shot contexts, filters, metrics and group aggregations; beyondscale checks before any data
loads that it can answer every request (`harness_check`), guards task code (`harness_code`), and
turns lm-eval's failures on bad input into one-line `UserError`s: an unknown name (with the nearest
known ones), a group whose member is missing, a hub data set that cannot be fetched.
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from beyondscale.errors import UserError
from beyondscale.tasks.harness_check import STRUCTURAL_KEYS, check_task_config, group_refusal
from beyondscale.tasks.harness_code import GuardedTaskFactory, sandbox_templates
from beyondscale.tasks.harness_identity import TaskIdentity, doc_key, task_identity

__all__ = ["HarnessTasks", "TaskIdentity", "TaskListing", "doc_key", "list_tasks", "load_tasks", "run_harness",
           "split_names", "task_identity", "task_manager"]

LOCAL_BUILDERS = frozenset({"json", "csv", "parquet", "text", "arrow", "pandas", "webdataset", "xml", "sql"})


@dataclass
class HarnessTasks:
    """Tasks lm-eval built for the names asked: leaf tasks, groups, and what to hand lm-eval back."""

    tasks: dict[str, Any]
    groups: dict[str, Any]
    group_map: dict[str, list[str]]
    built: list[Any] = field(repr=False)  # the Task/Group objects, in the order asked
    manager: Any = field(repr=False)


@dataclass(frozen=True)
class TaskListing:
    name: str
    kind: str  # task | group | tag | python task
    path: str | None


def _dataset_error(config: Any, err: BaseException) -> UserError:
    path, name = config.dataset_path, config.dataset_name
    first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
    where = f"task {config.task!r}"
    if path in LOCAL_BUILDERS or (path and Path(str(path)).exists()):
        return UserError(f"{where}: dataset_kwargs.data_files: could not load {path!r} data: {first}")
    named = f"{path!r}" + (f" (dataset_name {name!r})" if name else "")
    return UserError(
        f"{where}: data set {named} is on the Hugging Face hub and could not be fetched ({type(err).__name__}: "
        f"{first}); for local files set `dataset_path: json` (or csv, parquet) and `dataset_kwargs.data_files`")


def _harness_task_class():
    from lm_eval.api.task import ConfigurableTask

    class HarnessTask(ConfigurableTask):
        """lm-eval's ConfigurableTask whose data-loading failure is one line naming the data set."""

        def download(self, dataset_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            try:
                super().download(dataset_kwargs, **kwargs)
            except UserError:
                raise
            except Exception as err:  # noqa: BLE001 - any failure to load data is worded for the user
                raise _dataset_error(self.config, err) from err

    return HarnessTask


def _data_files_beside(cfg: dict[str, Any], yaml_path: Any) -> None:
    """A relative `dataset_kwargs.data_files` path missing from the working folder but present beside the task
    file is read from there: a task folder moved as a whole keeps working (lm-eval reads such paths from the
    working folder only)."""
    kwargs = cfg.get("dataset_kwargs")
    if not yaml_path or not isinstance(kwargs, dict) or "data_files" not in kwargs:
        return
    folder = Path(yaml_path).parent

    def beside(path: Any) -> Any:
        if isinstance(path, str) and not Path(path).is_absolute() and not Path(path).exists() \
                and (folder / path).exists():
            return str(folder / path)
        return path

    files = kwargs["data_files"]
    if isinstance(files, dict):
        files = {split: [beside(f) for f in v] if isinstance(v, list) else beside(v) for split, v in files.items()}
    elif isinstance(files, list):
        files = [beside(f) for f in files]
    else:
        files = beside(files)
    cfg["dataset_kwargs"] = {**kwargs, "data_files": files}


class _BridgeFactory(GuardedTaskFactory):
    """Checks each task config before its data loads and each group's members before they build."""

    def _build_task(self, entry: Any, overrides: dict[str, Any] | None) -> Any:
        from lm_eval.tasks._factory import _ctor_accepts_config

        cfg = self._load_full_config(entry, overrides)
        for key in STRUCTURAL_KEYS:
            cfg.pop(key, None)
        check_task_config(cfg, entry.yaml_path)
        _data_files_beside(cfg, entry.yaml_path)
        if "class" in cfg:  # a Python task of lm-eval's (its class came through the code guard)
            cls = cfg["class"]
            obj = cls(config=cfg) if _ctor_accepts_config(cls) else cls()
            if hasattr(obj, "config") and hasattr(obj.config, "task"):
                obj.config.task = cfg["task"]
            return obj
        return _harness_task_class()(config=cfg)

    def _build_group(self, group_name: str, raw_cfg: dict[str, Any], overrides: dict[str, Any] | None,
                     registry: dict[str, Any]) -> Any:
        reason = group_refusal(raw_cfg, registry)
        if reason:
            source = raw_cfg.get("metadata", {}).get("config_source", "inline")
            missing = reason.split("'")[1] if "member '" in reason else ""
            near = difflib.get_close_matches(missing, list(registry), n=3) if missing else []
            hint = f" (nearest: {', '.join(near)})" if near else ""
            raise UserError(f"group {group_name!r} ({source}): {reason}{hint}")
        return super()._build_group(group_name, raw_cfg, overrides, registry)


_INSTALLED_INDEX: dict[str, Any] = {}  # lm-eval's installed task files, indexed once per process (~15 s)


def _installed_index() -> dict[str, Any]:
    from lm_eval.tasks import TaskManager

    if not _INSTALLED_INDEX:
        _INSTALLED_INDEX.update(TaskManager(include_defaults=True)._index)
    return _INSTALLED_INDEX


def _with_installed(manager: Any) -> None:
    """The installed index under the manager's own (include_path) one: what lm-eval builds from both paths,
    later paths overriding earlier, without indexing the installed files again."""
    from collections import defaultdict
    from itertools import chain

    from lm_eval.tasks._index import Kind

    manager._index = {**_installed_index(), **manager._index}
    buckets = defaultdict(list)
    for name, entry in manager._index.items():
        buckets[entry.kind].append(name)
    manager._all_tasks = sorted(manager._index)
    manager._all_subtasks = sorted(chain.from_iterable(buckets[k] for k in (Kind.TASK, Kind.PY_TASK)))
    manager._all_groups = sorted(buckets[Kind.GROUP])
    manager._all_tags = sorted(buckets[Kind.TAG])


def task_manager(include_path: str | Path | Sequence[str | Path] | None = None, *, allow_task_code: bool = False,
                 metadata: dict[str, Any] | None = None, include_defaults: bool = True) -> Any:
    """lm-eval's TaskManager over its installed tasks plus `include_path`, with beyondscale's guards.
    The installed tasks are indexed once per process (~15 s) and reused; `include_defaults=False` indexes
    `include_path` only (files there may still `include:` lm-eval's installed task files by path)."""
    from lm_eval.tasks import TaskManager

    paths = [include_path] if isinstance(include_path, str | Path) else list(include_path or [])
    for p in paths:
        if not Path(p).is_dir():
            raise UserError(f"--include-path {p}: not a folder")
    sandbox_templates()
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    manager = TaskManager(include_path=[str(p) for p in paths] or None, metadata=metadata, include_defaults=False)
    if not hasattr(manager, "_factory") or not hasattr(manager, "_index"):
        raise RuntimeError("lm-eval's TaskManager changed shape; beyondscale's bridge supports lm-eval 0.4.13")
    if include_defaults:
        _with_installed(manager)
    manager._factory = _BridgeFactory(meta=metadata, allow_code=allow_task_code)
    return manager


def split_names(names: str | Sequence[str]) -> list[str]:
    """`--tasks a,b c` as a list: comma-separated, repeated, blanks dropped."""
    items = [names] if isinstance(names, str) else list(names)
    return [n.strip() for item in items for n in str(item).split(",") if n.strip()]


def _resolve(manager: Any, name: str) -> list[str]:
    """A name, glob or YAML file as the specs lm-eval's `load` takes."""
    if name in manager.task_index:
        return [name]
    if any(ch in name for ch in "*?["):
        matched = manager.match_tasks([name])
        if not matched:
            raise UserError(f"--tasks {name}: no task, group or tag lm-eval knows matches this pattern")
        return matched
    path = Path(name).expanduser()
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise UserError(f"--tasks {name}: no such task file" + (" (a folder: pass it as --include-path)"
                                                                    if path.is_dir() else ""))
        return [str(path.resolve())]
    near = difflib.get_close_matches(name, manager.all_tasks, n=3, cutoff=0.6)
    hint = f"; nearest: {', '.join(near)}" if near else "; `beyondscale tasks PATTERN` lists what lm-eval knows"
    raise UserError(f"--tasks {name}: not a task, group or tag lm-eval knows, nor a YAML file{hint}")


def load_tasks(names: str | Sequence[str], *, include_path: str | Path | Sequence[str | Path] | None = None,
               allow_task_code: bool = False, metadata: dict[str, Any] | None = None,
               manager: Any = None) -> HarnessTasks:
    """Build lm-eval's tasks for `names` (tasks, groups, tags, globs, YAML files; comma-separated).

    Raises one-line UserError on an unknown name, a refused config, a missing group member, task code
    without `allow_task_code`, or data that cannot be loaded."""
    manager = manager or task_manager(include_path, allow_task_code=allow_task_code, metadata=metadata)
    specs = [spec for name in split_names(names) for spec in _resolve(manager, name)]
    if not specs:
        raise UserError("--tasks: no task named")
    built: list[Any] = []
    for spec in specs:
        try:
            obj = manager._load_spec(spec)
        except UserError:
            raise
        except (ValueError, KeyError, TypeError, jinja2.TemplateError) as err:  # e.g. a template a sandbox refuses
            first = str(err).splitlines()[0][:200] if str(err) else ""
            raise UserError(f"--tasks {spec}: lm-eval could not build it: {type(err).__name__}: {first}") from err
        except IndexError as err:  # lm-eval reads the first document while it builds a task
            raise UserError(f"--tasks {spec}: lm-eval could not build it: no documents to evaluate "
                            f"(IndexError: {str(err)[:120]})") from err
        built.extend(obj if isinstance(obj, list) else [obj])
    try:
        loaded = manager.load(built)
    except ValueError as err:  # lm-eval's duplicate check: one task asked twice through two groups
        raise UserError(f"--tasks: {err}") from err
    return HarnessTasks(loaded["tasks"], loaded.get("groups", {}), loaded.get("group_map", {}), built, manager)


def run_harness(lm: Any, loaded: HarnessTasks, **kwargs: Any) -> dict[str, Any]:
    """lm-eval's `simple_evaluate` on the tasks already built, answered by `lm` (an `lm_eval.api.model.LM`).

    kwargs are simple_evaluate's (num_fewshot, limit, gen_kwargs, apply_chat_template, system_instruction,
    fewshot_random_seed, log_samples, bootstrap_iters, ...); the return value is its results dict, whose
    `samples` hold each document's `doc_hash` (= `doc_key`) and per-document metrics."""
    from lm_eval import simple_evaluate

    kwargs.setdefault("log_samples", True)
    limit = kwargs.get("limit")
    if limit is not None and (limit <= 0 or (isinstance(limit, float) and limit > 1.0 and not limit.is_integer())):
        raise UserError(f"--limit {limit}: expected a count (1, 2, ...) or a fraction in (0, 1]")
    return simple_evaluate(model=lm, tasks=loaded.built, task_manager=loaded.manager, **kwargs)


def list_tasks(pattern: str | None = None, *, include_path: str | Path | Sequence[str | Path] | None = None,
               manager: Any = None) -> list[TaskListing]:
    """What lm-eval knows (installed tasks plus `include_path`), filtered by a glob or a substring."""
    from lm_eval.tasks._index import Kind

    manager = manager or task_manager(include_path)
    kinds = {Kind.TASK: "task", Kind.PY_TASK: "python task", Kind.GROUP: "group", Kind.TAG: "tag"}
    out = []
    for name, entry in sorted(manager.task_index.items()):
        if pattern and not (fnmatch.fnmatch(name, pattern) if any(c in pattern for c in "*?[")
                            else pattern.lower() in name.lower()):
            continue
        out.append(TaskListing(name, kinds.get(entry.kind, "task"),
                               str(entry.yaml_path) if entry.yaml_path else None))
    return out
