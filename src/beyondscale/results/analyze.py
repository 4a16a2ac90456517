"""What scale buys in a store: the analysis of its scored results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from beyondscale.analysis import Analysis
from beyondscale.analysis import analyze as analyze_frames
from beyondscale.errors import UserError
from beyondscale.results.runs import load_store_frames
from beyondscale.store import DEFAULT_STORE, Frames


def analyze(
    store: str | Path = DEFAULT_STORE,
    *,
    models: list[str] | None = None,
    family: str | None = None,
    tasks: list[str] | None = None,
    metrics: list[str] | None = None,
    min_gain_per_doubling: float | None = None,
    constraints: dict[str, Any] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    primary: str | None = None,
) -> tuple[Analysis, Frames]:
    """What scale buys in this store: returns the `Analysis` (DataFrames) and the frames it used.

    `primary`: the task that decides the recommendation when no model dominates.
    """
    frames = load_store_frames(store, models=models, family=family, tasks=tasks)
    if frames.scores.empty:
        raise UserError(f"--store {store}: no scored results match (models={models}, family={family}, tasks={tasks})")
    result = analyze_frames(
        frames.models, frames.scores, frames.efficiency, frames.items, tasks=tasks, metrics=metrics,
        min_gain_per_doubling=min_gain_per_doubling, constraints=constraints, seed=seed, n_boot=n_boot,
        primary=primary, task_versions=frames.tasks,
    )
    return result, frames
