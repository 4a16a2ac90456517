"""What an executor is: it runs units of work and whole jobs somewhere, and streams back what they yield;
it never writes.

The driver (work/schedule.py) claims at most `capacity` units at a time, hands them to `run`, and
passes every output to the single writer. Whole jobs (a training run, a model's generation benchmark)
go through `map`. `LocalExecutor` and `RayExecutor` both implement every member: callers never ask
`hasattr`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from beyondscale.work.unit import Unit, UnitOutput

if TYPE_CHECKING:
    from beyondscale.executors.jobs import Job, JobResult
    from beyondscale.executors.resources import Resources


class Executor(Protocol):
    capacity: int  # how many units it runs at once
    resources: Resources  # what each unit or job asks for (CPUs, GPUs, memory)

    def run(self, units: Iterable[Unit]) -> Iterator[UnitOutput]:
        """Run the units; yield their outputs as they arrive (per unit, in each unit's order)."""
        ...

    def map(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        """Run whole jobs; yield each one's result (a failure is a result, never an exception)."""
        ...

    def resolve_device(self, device: str) -> str:
        """'auto', 'cpu', 'cuda[:i]' as the machines that run the units have them."""
        ...
