"""The driver's loop: plan, claim, execute, write, until no item is left to compute.

Several processes may run it on one store: each claims a (model, task) unit before computing it
(store/claims.py), so each item is computed and each measurement counted once. A process that finds
everything left claimed by others waits for them, taking over a claim whose owner died.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from beyondscale.store import Store
from beyondscale.store.claims import HEARTBEAT_S, Heartbeat
from beyondscale.work.plan import plan
from beyondscale.work.unit import ModelJob, TaskJob, Unit
from beyondscale.work.writer import Writer

if TYPE_CHECKING:
    from beyondscale.executors import Executor

POLL_S = 0.5


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
            on_done: Callable[[list[tuple[str, str]]], None] | None = None) -> None:
    """Compute every item of every (model, task) the store lacks; return when none is left.

    `on_done(pairs)` is called with the (model_key, task_key) pairs of each unit this process finished.
    """
    by_key = {t.task_key: t for t in tasks}
    with Heartbeat(store.path, owner, interval_s=min(HEARTBEAT_S, timeout_s / 3)):
        while units := plan(store, models, tasks):
            if on_round is not None:
                on_round()
            claimed = claim(store, units, owner, timeout_s, executor.capacity)
            if not claimed:
                time.sleep(POLL_S)  # all left is claimed by live processes: wait for them
                continue
            try:
                # Re-plan under the claims: another process may have finished a task just before.
                fresh = [u for c in claimed for u in plan(store, [c.model], [by_key[t.task_key] for t in c.tasks])]
                _execute(executor, fresh, writer)
            finally:
                store.release_claims(owner, [p for c in claimed for p in c.pairs])
            if on_done is not None:
                on_done([p for c in claimed for p in c.pairs])
    if on_round is not None:
        on_round()


def _execute(executor: Executor, units: list[Unit], writer: Writer) -> None:
    before = (sum(writer.computed.values()), writer.facts_written)
    for output in executor.run(units):
        writer.write(output)
    if units and (sum(writer.computed.values()), writer.facts_written) == before:
        raise RuntimeError("a unit of work ran but stored nothing; refusing to loop")
