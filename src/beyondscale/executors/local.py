"""The local executor: run units one after the other in this process."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from beyondscale.work.unit import Unit, UnitOutput, run_unit


class LocalExecutor:
    capacity = 1  # one unit at a time: other processes may claim the rest meanwhile

    def run(self, units: Iterable[Unit]) -> Iterator[UnitOutput]:
        for unit in units:
            yield from run_unit(unit)
