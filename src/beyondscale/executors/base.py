"""What an executor is: it runs units of work and streams back what they yield; it never writes.

The driver (work/schedule.py) claims at most `capacity` units at a time, hands them to `run`, and
passes every output to the single writer. A Ray executor (a later issue) implements the same
protocol with remote tasks: units and outputs are plain picklable data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from beyondscale.work.unit import Unit, UnitOutput


class Executor(Protocol):
    capacity: int  # how many units it runs at once

    def run(self, units: Iterable[Unit]) -> Iterator[UnitOutput]:
        """Run the units; yield their outputs as they arrive (per unit, in each unit's order)."""
        ...
