"""Executors run units of work (beyondscale.work) somewhere and stream their outputs to the driver."""

from beyondscale.executors.base import Executor
from beyondscale.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor"]
