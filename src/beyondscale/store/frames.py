"""Read the store as the long-format DataFrames analysis and export use (CONTRACTS §1, ARCHITECTURE).

`models`, `scores`, `efficiency`, `items`, `tasks`. Every row naming a task carries `task` (its name,
a label) and `task_key` (its identity); every row naming a model carries `model` and `model_key`.
Scores are keyed by content: one score set per (model_key, task_key), whichever run computed it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from beyondscale.store.db import Store

FACT_COLUMNS = (
    "params_total", "params_embedding", "params_non_embedding", "params_active", "flops_per_token",
    "bytes_on_disk", "dtype", "weights_format", "architecture", "max_context", "training_tokens", "training_flops",
    "vocab_size", "quantization", "tokenizer_key", "bytes_in_memory",
)
EFFICIENCY_COLUMNS = (
    "seconds", "tokens_in", "tokens_out", "tokens_per_s", "prefill_tokens_per_s", "ms_per_item",
    "peak_memory_bytes", "energy_j", "energy_source", "joules_per_token", "joules_per_correct",
    "gco2e_per_1k_tokens", "carbon_source", "usd_per_1m_tokens", "usd_per_correct", "cost_source", "mfu",
    "peak_flops_source", "energy_scope", "model_flops", "flops_source",
)
RENAMED = {"ms_per_item": "latency_ms_per_item"}  # figures stored before the rename keep their old name
UNIT = ["model_key", "task_key"]


@dataclass
class Frames:
    models: pd.DataFrame
    scores: pd.DataFrame
    efficiency: pd.DataFrame
    items: pd.DataFrame
    tasks: pd.DataFrame

    def as_dict(self) -> dict[str, pd.DataFrame]:
        return {"models": self.models, "scores": self.scores, "efficiency": self.efficiency, "items": self.items,
                "tasks": self.tasks}


def _models_frame(store: Store) -> pd.DataFrame:
    rows = store.query("SELECT model_key, name, family, ref, facts FROM models")
    frame = pd.DataFrame(
        [
            {"model_key": r.model_key, "model": r.name, "family": r.family, "ref": json.loads(r.ref).get("spec"),
             **{c: json.loads(r.facts).get(c) for c in FACT_COLUMNS}}
            for r in rows.itertuples()
        ],
        columns=["model_key", "model", "family", "ref", *FACT_COLUMNS],
    )
    for col in ("training_tokens", "training_flops", "vocab_size"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame


SIZE_COLUMNS = ["model_key", "model", "params_total", "params_active", "training_flops"]


def model_sizes(store: Store) -> pd.DataFrame:
    """Every stored model (not only the scored ones) with its size facts: SIZE_COLUMNS."""
    return _models_frame(store)[SIZE_COLUMNS]


def mean_accuracy(store: Store) -> pd.DataFrame:
    """Per model: mean `acc` over the tasks it was scored on (model_key, mean_acc, n_tasks)."""
    return store.query("SELECT model_key, AVG(value) AS mean_acc, COUNT(*) AS n_tasks FROM metrics "
                       "WHERE metric='acc' AND value IS NOT NULL GROUP BY model_key")


def _tasks_frame(store: Store) -> pd.DataFrame:
    return store.query(
        "SELECT t.task_key, t.name AS task, t.spec_hash, t.created, COUNT(DISTINCT s.doc_id) AS n_items "
        "FROM tasks t LEFT JOIN item_scores s USING(task_key) GROUP BY t.task_key ORDER BY t.created"
    )


def _units(store: Store, mdf: pd.DataFrame, tdf: pd.DataFrame, tasks: list[str] | None,
           touched_by: str | None) -> pd.DataFrame:
    """The scored (model_key, task_key) units that pass the filters, with their labels."""
    units = store.query("SELECT DISTINCT model_key, task_key FROM metrics")
    if touched_by is not None:
        touched = store.units_touched(touched_by)
        units = units[[(m, t) in touched for m, t in zip(units["model_key"], units["task_key"], strict=True)]]
    units = units.merge(tdf[["task_key", "task"]], on="task_key").merge(mdf[["model_key", "model"]], on="model_key")
    if tasks:
        units = units[units["task"].isin(tasks) | units["task_key"].isin(tasks)]
    return units.reset_index(drop=True)


def _efficiency_frame(store: Store, units: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in store.query("SELECT model_key, task_key, figures FROM efficiency").merge(units, on=UNIT).itertuples():
        figures = json.loads(r.figures)
        rows.append({"model_key": r.model_key, "model": r.model, "task_key": r.task_key, "task": r.task,
                     **{c: figures.get(c, figures.get(RENAMED.get(c, c))) for c in EFFICIENCY_COLUMNS}})
    return pd.DataFrame(rows, columns=["model_key", "model", "task_key", "task", *EFFICIENCY_COLUMNS])


def _items_frame(store: Store, units: pd.DataFrame) -> pd.DataFrame:
    columns = ["model_key", "model", "task_key", "task", "doc_id", "metric", "value"]
    raw = store.query('SELECT model_key, task_key, doc_id, "values" FROM item_scores').merge(units, on=UNIT)
    long = [
        (r.model_key, r.model, r.task_key, r.task, r.doc_id, metric, value)
        for r in raw.itertuples()
        for metric, value in json.loads(r.values).items()
    ]
    items = pd.DataFrame(long, columns=columns)
    items["value"] = pd.to_numeric(items["value"], errors="coerce").astype(float)
    return items


def load_frames(
    store: Store,
    *,
    models: list[str] | None = None,
    family: str | None = None,
    tasks: list[str] | None = None,
    with_items: bool = True,
    touched_by: str | None = None,
) -> Frames:
    """The store's scores as DataFrames, filtered by model name/key, family, task name/key, or the units
    one run touched (`touched_by`: a filter, not a choice of scores; a unit has one score set)."""
    mdf = _models_frame(store)
    if models:
        mdf = mdf[mdf["model"].isin(models) | mdf["model_key"].isin(models)]
    if family:
        mdf = mdf[mdf["family"] == family]
    tdf = _tasks_frame(store)
    units = _units(store, mdf, tdf, tasks, touched_by)
    mdf = mdf[mdf["model_key"].isin(units["model_key"])].reset_index(drop=True)
    tdf = tdf[tdf["task_key"].isin(units["task_key"])].reset_index(drop=True)
    scores = store.query("SELECT * FROM metrics").merge(units, on=UNIT)[
        ["model_key", "model", "task_key", "task", "metric", "value", "stderr", "n_items"]
    ].sort_values(["task", "metric", "model", "task_key"]).reset_index(drop=True)
    efficiency = _efficiency_frame(store, units)
    items = _items_frame(store, units if with_items else units.iloc[:0])
    return Frames(mdf, scores, efficiency, items, tdf)


def results_table(frames: Frames) -> pd.DataFrame:
    """One row per (model, task version, metric) with the model's size and the unit's efficiency: the export."""
    table = frames.scores.merge(frames.models.drop(columns=["model"]), on="model_key", how="left")
    table = table.merge(frames.efficiency.drop(columns=["model", "task"]), on=UNIT, how="left")
    return table.replace({np.nan: None})
