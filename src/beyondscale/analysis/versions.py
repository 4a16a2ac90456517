"""Task versions: a task name may have several task keys (edited data, other few-shot, limit, max length).

The current version of a name is its key with the newest `created`. Each model's leaderboard figure is its
own newest version; a paired comparison uses the newest key both models have, so both are judged on the
same items. Without a `created` time, versions are ordered by how many models have them (then by key).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from beyondscale.analysis.inputs import frame


@dataclass
class Versions:
    """Per task name: the keys newest first; per (model_key, task name): the keys that model has."""

    order: dict[str, list[str]]
    have: dict[tuple[str, str], set[str]]

    def current(self, task: str) -> str:
        return self.order[task][0]

    def own(self, model_key: str, task: str) -> str | None:
        """The newest version of `task` that this model was scored on."""
        have = self.have.get((model_key, task), set())
        return next((k for k in self.order.get(task, []) if k in have), None)

    def common(self, a: str, b: str, task: str) -> str | None:
        """The newest version of `task` both models were scored on."""
        both = self.have.get((a, task), set()) & self.have.get((b, task), set())
        return next((k for k in self.order.get(task, []) if k in both), None)

    def frame(self, names: dict[str, str]) -> pd.DataFrame:
        """task, model, model_key, task_key (the model's own newest), current (bool)."""
        rows = []
        for (k, task) in sorted(self.have):
            own = self.own(k, task)
            rows.append({"task": task, "model": names.get(k, k), "model_key": k, "task_key": own,
                         "current": own == self.current(task)})
        return pd.DataFrame(rows, columns=["task", "model", "model_key", "task_key", "current"])


def task_versions(scores: pd.DataFrame, tasks: pd.DataFrame | None) -> Versions:
    """Order each task name's keys newest first, from the `tasks` frame's `created` (contract §1)."""
    t = frame(tasks, ("task_key", "task", "created"))
    created = dict(zip(t["task_key"].astype(str), pd.to_numeric(t["created"], errors="coerce"), strict=True))
    have: dict[tuple[str, str], set[str]] = {}
    for k, task, tk in scores[["model_key", "task", "task_key"]].drop_duplicates().itertuples(index=False):
        have.setdefault((str(k), str(task)), set()).add(str(tk))
    order: dict[str, list[str]] = {}
    for task, g in scores.groupby("task", sort=False):
        n_models = g.groupby("task_key")["model_key"].nunique()
        keys = [str(k) for k in n_models.index]
        order[str(task)] = sorted(keys, key=lambda k: (-_finite(created.get(k)), -int(n_models[k]), k))
    return Versions(order, have)


def _finite(x: float | None) -> float:
    return float(x) if x is not None and np.isfinite(x) else -np.inf


def own_version_rows(df: pd.DataFrame, versions: Versions) -> pd.DataFrame:
    """Rows of each model's own newest version of each task name (one merge, not a loop over rows)."""
    if df.empty:
        return df
    own = pd.DataFrame([(k, t, versions.own(k, t)) for (k, t) in versions.have], columns=["model_key", "task", "_own"])
    keys = pd.DataFrame({"model_key": df["model_key"].astype(str).to_numpy(), "task": df["task"].astype(str).to_numpy()})
    mine = keys.merge(own, how="left", on=["model_key", "task"])["_own"].to_numpy(object)
    return df[mine == df["task_key"].astype(str).to_numpy(object)]
