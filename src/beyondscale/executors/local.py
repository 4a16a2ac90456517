"""The local executor: run units one after the other in this process (no Ray needed)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from beyondscale.executors.jobs import Job, JobResult, local_map
from beyondscale.executors.resources import Resources
from beyondscale.work.guard import guarded
from beyondscale.work.unit import Unit, UnitOutput


class LocalExecutor:
    capacity = 1  # one unit at a time: other processes may claim the rest meanwhile

    def __init__(self) -> None:
        self.resources = Resources()

    def run(self, units: Iterable[Unit]) -> Iterator[UnitOutput]:
        """Each unit under guard: an error in one is reported (`UnitFailed`) and the next one runs."""
        for unit in units:
            yield from guarded(unit)

    def map(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        """Whole jobs (training runs, benchmarks), one after the other; an error fails that job alone."""
        return local_map(jobs)

    def resolve_device(self, device: str) -> str:
        """This machine's devices ('auto': cuda when it has one)."""
        from beyondscale.models.load import resolve_device

        return resolve_device(device)
