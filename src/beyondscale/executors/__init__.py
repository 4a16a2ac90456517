"""Executors run units of work (beyondscale.work) somewhere and stream their outputs to the driver.

`LocalExecutor` (default) loops in this process; `RayExecutor` runs units on a Ray cluster (the
`[ray]` extra; Ray itself is imported only when a RayExecutor is used).
"""

from beyondscale.executors.base import Executor
from beyondscale.executors.local import LocalExecutor
from beyondscale.executors.ray import RayExecutor
from beyondscale.executors.resources import Resources

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "Resources"]
