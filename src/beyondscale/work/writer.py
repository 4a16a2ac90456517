"""The single writer: the only code that commits what units yield (one transaction per batch).

Every write is keyed by content (items by (model, task, item), measurements by (model, task, batch),
models by model key), so a replayed or duplicated result changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from beyondscale.store import Store
from beyondscale.work.logs import append_log, unit_log_path
from beyondscale.work.plan import with_lab_record
from beyondscale.work.unit import BatchResult, FactsResult, UnitFailed, UnitLog, UnitOutput


@dataclass(frozen=True)
class ModelLabel:
    """What the models table records beside the facts: display name, family, reference, identity."""

    name: str
    family: str | None
    ref: dict
    identity: str
    lab_record: dict | None = None


class Writer:
    def __init__(self, store: Store, run_id: str, environment_key: str, labels: dict[str, ModelLabel],
                 on_batch: Callable[[str, str, int], None] | None = None,
                 on_notice: Callable[[str], None] | None = None):
        self.store, self.run_id, self.environment_key = store, run_id, environment_key
        self.labels = labels
        self.on_batch, self.on_notice = on_batch, on_notice
        self.failures: list[UnitFailed] = []  # units that stopped early, in the order reported
        self.computed: Counter[tuple[str, str]] = Counter()  # new items per (model_key, task_key)
        self.facts_written = 0

    def write(self, output: UnitOutput) -> None:
        if isinstance(output, FactsResult):
            self.write_facts(output.model_key, output.facts)
        elif isinstance(output, BatchResult):
            self.write_batch(output)
        elif isinstance(output, UnitLog):
            self.write_log(output)
        elif isinstance(output, UnitFailed):
            self.failures.append(output)
        else:
            raise TypeError(f"unknown unit output {type(output).__name__}")

    def write_facts(self, model_key: str, facts: dict) -> None:
        label = self.labels[model_key]
        self.store.put_model(model_key, label.name, label.family, label.ref, label.identity,
                             with_lab_record(facts, label.lab_record))
        self.facts_written += 1

    def write_batch(self, batch: BatchResult) -> None:
        new = self.store.write_batch(self.run_id, batch.model_key, batch.task_key, batch.batch_key,
                                     batch.rows, batch.measurement,
                                     batch.environment_key or self.environment_key)
        self.computed[(batch.model_key, batch.task_key)] += new
        if self.on_batch is not None:
            self.on_batch(batch.model_key, batch.task_key, len(batch.rows))

    def write_log(self, log: UnitLog) -> None:
        """Append to the unit's log file next to the store; notices also reach the driver's terminal."""
        label = self.labels[log.model_key]
        append_log(unit_log_path(self.store.path, self.run_id, label.name, log.model_key), log.text)
        if log.notice and self.on_notice is not None:
            self.on_notice(f"{label.name}: {log.text.strip()}")
