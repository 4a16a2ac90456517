"""Planning: what is still to compute, read from the store, grouped by model into `Unit`s."""

from __future__ import annotations

from collections.abc import Sequence

from beyondscale.store import Store
from beyondscale.store.training import current_names
from beyondscale.work.unit import ModelJob, TaskJob, Unit

# The facts a lab record gives a model, and the record's name for each (`store.training.TrainingRecord`).
LAB_FACTS = {"training_tokens": "tokens", "training_flops": "train_flops"}


def todo(store: Store, model_key: str, task: TaskJob) -> TaskJob:
    """The task with only the items the store has no result for (under this model and task version)."""
    done = store.done_item_keys(model_key, task.task_key)
    keep = [i for i, key in enumerate(task.item_keys) if key not in done]
    return TaskJob(task.task_key, task.task, tuple(task.items[i] for i in keep),
                   tuple(task.item_keys[i] for i in keep))


def plan(store: Store, models: Sequence[ModelJob], tasks: Sequence[TaskJob]) -> list[Unit]:
    """One unit per model that has items still to compute (or whose facts the store lacks)."""
    units = []
    for model in models:
        parts = tuple(t for t in (todo(store, model.model_key, task) for task in tasks) if t.items)
        want_facts = store.model_facts(model.model_key) is None
        if parts or want_facts:
            units.append(Unit(model, parts, want_facts))
    return units


def with_lab_record(facts: dict, record: dict | None) -> dict:
    """Facts follow identity: a lab record found later still reaches the stored training fields."""
    if not record:
        return facts
    named = current_names(record)  # a record written before one name per field
    found = {fact: named.get(name) for fact, name in LAB_FACTS.items()}
    return {**facts, **{fact: value for fact, value in found.items() if value is not None}}
