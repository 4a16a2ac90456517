"""Where units run, as one settings object (`--executor`, `--ray-*` flags) that builds its executor.

`local` returns None (the callers' in-process default) and never imports Ray.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from beyondscale.errors import UserError


@dataclass(frozen=True)
class ExecutorSettings:
    executor: str = "local"  # local | ray
    ray_address: str | None = None  # auto or HOST:PORT; None: RAY_ADDRESS, else a local cluster
    max_retries: int = 2  # re-runs of a unit whose worker died (errors are never retried)
    ray_cpus: float = 1.0
    ray_gpus: float | None = None  # None: 1 on cuda
    ray_memory_gb: float | None = None  # None: estimated from the weights on disk

    def build(self) -> Any:
        """The executor these settings ask for (None for local), or a UserError naming the flag."""
        if self.executor == "local":
            if self.ray_address is not None:
                raise UserError("--ray-address: only with --executor ray")
            return None
        if self.executor != "ray":
            raise UserError(f"--executor {self.executor}: expected local or ray")
        if self.ray_cpus <= 0 or (self.ray_gpus is not None and self.ray_gpus < 0) or (
                self.ray_memory_gb is not None and self.ray_memory_gb <= 0):
            raise UserError("--ray-cpus and --ray-memory-gb must be positive, --ray-gpus 0 or more")
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("--executor ray: Ray is not installed (pip install 'beyondscale[ray]')") from None
        from beyondscale.executors.ray import RayExecutor
        from beyondscale.executors.resources import Resources

        return RayExecutor(self.ray_address, max_retries=self.max_retries,
                           resources=Resources(self.ray_cpus, self.ray_gpus, self.ray_memory_gb))
