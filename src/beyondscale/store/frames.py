"""Read the store as the four long-format DataFrames analysis and export use.

`models`, `scores`, `efficiency`, `items` (columns in docs/ARCHITECTURE.md). By default each
(model, task) contributes its latest scored run; `run_id` restricts to one run.
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
)
EFFICIENCY_COLUMNS = (
    "seconds", "tokens_in", "tokens_out", "tokens_per_s", "prefill_tokens_per_s", "latency_ms_per_item",
    "peak_memory_bytes", "energy_j", "energy_source", "joules_per_token", "joules_per_correct",
    "gco2e_per_1k_tokens", "carbon_source", "usd_per_1m_tokens", "usd_per_correct", "cost_source", "mfu",
    "peak_flops_source",
)


@dataclass
class Frames:
    models: pd.DataFrame
    scores: pd.DataFrame
    efficiency: pd.DataFrame
    items: pd.DataFrame

    def as_dict(self) -> dict[str, pd.DataFrame]:
        return {"models": self.models, "scores": self.scores, "efficiency": self.efficiency, "items": self.items}


def load_frames(
    store: Store,
    *,
    run_id: str | None = None,
    models: list[str] | None = None,
    family: str | None = None,
    tasks: list[str] | None = None,
    with_items: bool = True,
) -> Frames:
    """Collect the store's latest results into DataFrames (filtered by model name/key, family, task)."""
    pairs = store.latest_pairs(run_id)
    model_rows = store.query("SELECT model_key, name, family, ref, facts FROM models")
    task_rows = store.query("SELECT task_key, name AS task FROM tasks")
    mdf = pd.DataFrame(
        [
            {"model_key": r.model_key, "model": r.name, "family": r.family, "ref": json.loads(r.ref).get("spec"),
             **{c: json.loads(r.facts).get(c) for c in FACT_COLUMNS}}
            for r in model_rows.itertuples()
        ],
        columns=["model_key", "model", "family", "ref", *FACT_COLUMNS],
    )
    if models:
        mdf = mdf[mdf["model"].isin(models) | mdf["model_key"].isin(models)]
    if family:
        mdf = mdf[mdf["family"] == family]
    pairs = pairs.merge(task_rows, on="task_key").merge(mdf[["model_key", "model"]], on="model_key")
    if tasks:
        pairs = pairs[pairs["task"].isin(tasks)]
    mdf = mdf[mdf["model_key"].isin(pairs["model_key"])].reset_index(drop=True)
    for col in ("training_tokens", "training_flops"):
        mdf[col] = pd.to_numeric(mdf[col], errors="coerce")

    keys = pairs[["run_id", "model_key", "task_key"]]
    metrics = store.query("SELECT * FROM metrics").merge(keys, on=["run_id", "model_key", "task_key"])
    scores = metrics.merge(pairs, on=["run_id", "model_key", "task_key"])[
        ["model_key", "model", "task", "metric", "value", "stderr", "n_items", "run_id"]
    ].sort_values(["task", "metric", "model"]).reset_index(drop=True)

    eff = store.query("SELECT * FROM efficiency").merge(keys, on=["run_id", "model_key", "task_key"])
    eff_rows = []
    for r in eff.merge(pairs, on=["run_id", "model_key", "task_key"]).itertuples():
        figures = json.loads(r.figures)
        eff_rows.append({"model_key": r.model_key, "model": r.model, "task": r.task,
                         **{c: figures.get(c) for c in EFFICIENCY_COLUMNS}})
    efficiency = pd.DataFrame(eff_rows, columns=["model_key", "model", "task", *EFFICIENCY_COLUMNS])

    items = pd.DataFrame(columns=["model_key", "model", "task", "doc_id", "metric", "value"])
    if with_items and len(keys):
        raw = store.query('SELECT run_id, model_key, task_key, doc_id, correct, "values" FROM item_scores').merge(
            pairs, on=["run_id", "model_key", "task_key"]
        )
        long = []
        for r in raw.itertuples():
            for metric, value in json.loads(r.values).items():
                long.append((r.model_key, r.model, r.task, r.doc_id, metric, value))
        items = pd.DataFrame(long, columns=["model_key", "model", "task", "doc_id", "metric", "value"])
        items["value"] = pd.to_numeric(items["value"], errors="coerce").astype(float)
    return Frames(mdf, scores, efficiency, items)


def results_table(frames: Frames) -> pd.DataFrame:
    """One row per (model, task, metric) with the model's size and the pair's efficiency: the export."""
    table = frames.scores.merge(frames.models.drop(columns=["model"]), on="model_key", how="left")
    table = table.merge(frames.efficiency.drop(columns=["model"]), on=["model_key", "task"], how="left")
    return table.replace({np.nan: None})
