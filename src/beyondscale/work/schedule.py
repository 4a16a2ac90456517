"""The driver's loop: plan, claim, execute, write, until no item is left to compute.

A unit whose code raises is reported once (`UnitFailed`) and its (model, task) pairs are left out for
the rest of the run; the others go on, and the `Summary` says what succeeded, failed and was skipped.

Several processes may run it on one store: each claims a (model, task) unit before computing it
(store/claims.py), so each item is computed and each measurement counted once. A process that finds
everything left claimed by others waits for them, taking over a claim whose owner died.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from beyondscale.store import Store
from beyondscale.store.claims import HEARTBEAT_S, Heartbeat
from beyondscale.work.plan import plan
from beyondscale.work.unit import ModelJob, TaskJob, Unit, UnitFailed, UnitOutput
from beyondscale.work.writer import Writer


class Executor(Protocol):
    """What the driver needs of an executor (`beyondscale.executors.Executor` declares the rest)."""

    capacity: int

    def run(self, units: Iterable[Unit]) -> Iterator[UnitOutput]: ...

POLL_S = 0.5

Pair = tuple[str, str]  # (model_key, task_key)


@dataclass
class Summary:
    """What one driver did: pairs it computed, pairs that failed (with the failure), and every other
    pair asked for (already stored, or computed by another process): skipped."""

    pairs: list[Pair] = field(default_factory=list)
    succeeded: list[Pair] = field(default_factory=list)
    failed: dict[Pair, UnitFailed] = field(default_factory=dict)
    failed_models: dict[str, UnitFailed] = field(default_factory=dict)  # could not even give its facts

    @property
    def skipped(self) -> list[Pair]:
        return [p for p in self.pairs if p not in self.failed and p not in set(self.succeeded)]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.failed_models

    def open_units(self, units: Sequence[Unit]) -> list[Unit]:
        """The units without what already failed in this run (it would fail again)."""
        out = []
        for unit in units:
            tasks = tuple(t for t in unit.tasks if (unit.model.model_key, t.task_key) not in self.failed)
            want_facts = unit.want_facts and unit.model.model_key not in self.failed_models
            if tasks or want_facts:
                out.append(replace(unit, tasks=tasks, want_facts=want_facts))
        return out


def claim(store: Store, units: Sequence[Unit], owner: str, timeout_s: float, capacity: int) -> list[Unit]:
    """Up to `capacity` units, each cut to the tasks this owner could claim (facts-only units need none)."""
    claimed: list[Unit] = []
    for unit in units:
        if len(claimed) >= capacity:
            break
        keys = store.try_claim(unit.model.model_key, [t.task_key for t in unit.tasks], owner, timeout_s)
        mine = tuple(t for t in unit.tasks if t.task_key in keys)
        if mine or (unit.want_facts and not unit.tasks):
            claimed.append(replace(unit, tasks=mine))
    return claimed


def run_all(store: Store, models: Sequence[ModelJob], tasks: Sequence[TaskJob], executor: Executor, writer: Writer,
            *, owner: str, timeout_s: float, on_round: Callable[[], None] | None = None,
            on_done: Callable[[list[tuple[str, str]]], None] | None = None) -> Summary:
    """Compute every item of every (model, task) the store lacks; return when none is left to try.

    `on_done(pairs)` is called with the (model_key, task_key) pairs of each unit this process finished.
    """
    by_key = {t.task_key: t for t in tasks}
    summary = Summary(pairs=[(m.model_key, t.task_key) for m in models for t in tasks])
    with Heartbeat(store.path, owner, interval_s=min(HEARTBEAT_S, timeout_s / 3)):
        while units := summary.open_units(plan(store, models, tasks)):
            if on_round is not None:
                on_round()
            claimed = claim(store, units, owner, timeout_s, executor.capacity)
            if not claimed:
                time.sleep(POLL_S)  # all left is claimed by live processes: wait for them
                continue
            try:
                # Re-plan under the claims: another process may have finished a task just before.
                fresh = [u for c in claimed for u in plan(store, [c.model], [by_key[t.task_key] for t in c.tasks])]
                _execute(executor, fresh, writer, summary, store, by_key)
            finally:
                store.release_claims(owner, [p for c in claimed for p in c.pairs])
            done = [p for c in claimed for p in c.pairs if p not in summary.failed]
            summary.succeeded.extend(done)
            if on_done is not None:
                on_done(done)
    if on_round is not None:
        on_round()
    return summary


def _execute(executor: Executor, units: list[Unit], writer: Writer, summary: Summary, store: Store,
             by_key: dict[str, TaskJob]) -> None:
    before = (sum(writer.computed.values()), writer.facts_written, len(writer.failures))
    for output in executor.run(units):
        writer.write(output)
    failures = writer.failures[before[2]:]
    for failure in failures:
        _record_failure(failure, units, summary, store, by_key)
    if units and not failures and (sum(writer.computed.values()), writer.facts_written) == before[:2]:
        raise RuntimeError("a unit of work ran but stored nothing; refusing to loop")


def _record_failure(failure: UnitFailed, units: list[Unit], summary: Summary, store: Store,
                    by_key: dict[str, TaskJob]) -> None:
    """The failed unit's pairs that still miss items fail; so does the model if its facts are missing."""
    for unit in (u for u in units if u.model.model_key == failure.model_key):
        left = plan(store, [unit.model], [by_key[t.task_key] for t in unit.tasks])
        pending = {p for u in left for p in u.pairs}
        summary.failed.update({p: failure for p in unit.pairs if p in pending})
        if any(u.want_facts for u in left):
            summary.failed_models[unit.model.model_key] = failure
