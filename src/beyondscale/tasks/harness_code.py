"""Which code an lm-evaluation-harness task file may run, and a sandbox for its prompt templates.

lm-eval's YAML loader imports every `!function` it meets. Functions named by lm-eval's own installed
task files are installed code and run as lm-eval runs them; a `!function` in any other folder (a
user's task folder) runs only when the caller passes `allow_task_code=True` (the CLI's
`--allow-task-code`, in the spirit of `trust_remote_code`). Without it the load stops with one line
naming the file, the function and the flag, before any of that file's code is imported.

`load_task_yaml` mirrors `lm_eval.tasks._yaml_loader.load_yaml` (0.4.13: includes merged, local keys
win, `task_list` not inherited) with that one guard added, and `GuardedTaskFactory` is lm-eval's
`TaskFactory` reading configs through it. `sandbox_templates()` swaps lm-eval's module-level Jinja
environment for a sandboxed one with the same settings: the same prompts render, a template cannot
reach Python internals.
"""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path
from typing import Any

import yaml
from lm_eval.tasks import _yaml_loader
from lm_eval.tasks._factory import TaskFactory
from lm_eval.tasks._index import Entry

from beyondscale.errors import UserError

LM_EVAL_TASKS_DIR = Path(_yaml_loader.__file__).resolve().parent
ALLOW_FLAG = "--allow-task-code"


def is_installed(path: Path) -> bool:
    """True for files inside lm-eval's own installed task folder."""
    return Path(path).resolve().is_relative_to(LM_EVAL_TASKS_DIR)


class TaskCodeRefused(UserError):
    """A user task file names Python code and the caller did not allow task code."""


def _function_ctor(yaml_path: Path, *, resolve: bool, allow_code: bool):
    base_dir = yaml_path.parent

    def construct(loader: yaml.Loader, node: yaml.Node) -> Any:
        spec = loader.construct_scalar(node)  # type: ignore[arg-type]
        if not resolve:
            return str(base_dir.expanduser() / spec)
        if not allow_code and not is_installed(base_dir):
            module = base_dir / f"{spec.rpartition('.')[0].replace('.', '/')}.py"
            raise TaskCodeRefused(
                f"{yaml_path}: `!function {spec}` would run code from {module}; "
                f"pass {ALLOW_FLAG} to run a task folder's own Python"
            )
        try:
            return _yaml_loader._import_func_in_yml(spec, base_dir)
        except ModuleNotFoundError as err:
            raise UserError(f"{yaml_path}: `!function {spec}` needs the Python package `{err.name or err}`, "
                            "which is not installed") from err
        except (ImportError, AttributeError, SystemExit) as err:  # a task module may even sys.exit on import
            first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
            raise UserError(f"{yaml_path}: `!function {spec}` could not be loaded: {first}") from err

    return construct


def load_task_yaml(path: str | Path, *, allow_code: bool, resolve: bool = True,
                   _seen: set[Path] | None = None) -> dict[str, Any]:
    """lm-eval's `load_yaml`, with `!function` resolved only where `allow_code` or installed."""
    path = Path(path).expanduser().resolve()
    seen = set() if _seen is None else _seen
    if path in seen:
        raise UserError(f"{path}: `include:` cycle")
    seen.add(path)

    class Loader(_yaml_loader._Base):  # type: ignore[name-defined,misc]
        pass

    yaml.add_constructor("!function", _function_ctor(path, resolve=resolve, allow_code=allow_code), Loader=Loader)
    with path.open("rb") as fh:
        cfg = yaml.load(fh, Loader=Loader)  # noqa: S506 - the constructor above is the only extra tag
    if not isinstance(cfg, dict):
        raise UserError(f"{path}: expected a YAML mapping, got {type(cfg).__name__}")
    includes = cfg.pop("include", None)
    if includes is None:
        return cfg
    merged: dict[str, Any] = {}
    for inc in includes if isinstance(includes, list) else [includes]:
        inc_path = Path(inc) if Path(inc).is_absolute() else path.parent / inc
        if not inc_path.is_file():
            raise UserError(f"{path}: include: {inc} not found (looked for {inc_path})")
        inc_cfg = load_task_yaml(inc_path, allow_code=allow_code, resolve=resolve, _seen=seen)
        inc_cfg.pop("task_list", None)
        merged.update(inc_cfg)
    merged.update(cfg)
    return merged


class GuardedTaskFactory(TaskFactory):
    """lm-eval's TaskFactory reading YAML through `load_task_yaml`."""

    def __init__(self, *, meta: dict[str, Any] | None, allow_code: bool) -> None:
        super().__init__(meta=meta)
        self.allow_code = allow_code

    def _load_full_config(self, entry: Entry, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        # lm_eval.tasks._factory.TaskFactory._load_full_config (0.4.13), with the guarded loader
        if entry.yaml_path:
            cfg = deepcopy(load_task_yaml(entry.yaml_path, allow_code=self.allow_code))
        elif entry.cfg:
            cfg = deepcopy(entry.cfg)
        else:
            cfg = {"metadata": {"config": "unknown"}}
        if overrides:
            cfg = {**cfg, **overrides}
        meta = cfg.get("metadata", {})
        cfg["metadata"] = (meta if isinstance(meta, dict) else {"_metadata": meta}) | self._meta
        cfg["metadata"]["config_source"] = str(entry.yaml_path) if entry.yaml_path else "inline"
        return cfg


def sandbox_templates() -> None:
    """Render lm-eval's Jinja prompt fields in a sandbox (same settings and filters as lm-eval's)."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment
    from lm_eval import utils

    if isinstance(utils.env, SandboxedEnvironment):
        return
    env = SandboxedEnvironment(loader=jinja2.BaseLoader, undefined=jinja2.StrictUndefined,
                               keep_trailing_newline=True)
    env.filters.update(utils.env.filters)
    utils.env = env
