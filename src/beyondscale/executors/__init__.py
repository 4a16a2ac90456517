"""Executors run units of work (beyondscale.work) somewhere and stream their outputs to the driver.

`LocalExecutor` (default) loops in this process; `RayExecutor` runs units on a Ray cluster (the
`[ray]` extra; Ray itself is imported only when a RayExecutor is used). Names load on first use, so
the command line's option module (executors.cli) imports neither torch nor Ray.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from beyondscale.executors.base import Executor
    from beyondscale.executors.local import LocalExecutor
    from beyondscale.executors.ray import RayExecutor
    from beyondscale.executors.resources import Resources

_WHERE = {"Executor": "base", "LocalExecutor": "local", "RayExecutor": "ray", "Resources": "resources"}
__all__ = ["Executor", "LocalExecutor", "RayExecutor", "Resources"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"beyondscale.executors.{_WHERE[name]}"), name)
