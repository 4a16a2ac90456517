"""Pareto frontier of quality against a cost (energy, money, latency, memory).

A model is on the frontier when no other model is at least as good and at most as costly, and
strictly better on one of the two. Bigger-and-better is only worth it when it is on the frontier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def pareto_frontier(df: pd.DataFrame, higher_better: bool = True) -> pd.DataFrame:
    """Add ``on_frontier`` (bool) and ``dominated_by`` (comma-separated models) to rows of model, quality, cost.

    Rows with a missing quality or cost are kept with on_frontier False and dominated_by "".
    """
    out = df.copy()
    q = out["quality"].to_numpy(float)
    c = out["cost"].to_numpy(float)
    if not higher_better:
        q = -q
    ok = np.isfinite(q) & np.isfinite(c)
    # dom[i, j]: j dominates i
    ge_q = q[None, :] >= q[:, None]
    le_c = c[None, :] <= c[:, None]
    strict = (q[None, :] > q[:, None]) | (c[None, :] < c[:, None])
    dom = ge_q & le_c & strict & ok[None, :] & ok[:, None]
    names = out["model"].astype(str).to_numpy()
    out["on_frontier"] = ok & ~dom.any(axis=1)
    out["dominated_by"] = [", ".join(names[dom[i]]) for i in range(len(out))]
    return out


PARETO_COSTS = ("joules_per_token", "usd_per_1m_tokens", "ms_per_item", "peak_memory_bytes")


def _quality_sets(scores: pd.DataFrame, primary: dict[str, str], leaderboard: pd.DataFrame
                  ) -> list[tuple[str, str, pd.DataFrame]]:
    sets = []
    for task, metric in primary.items():
        s = scores[(scores["task"] == task) & (scores["metric"] == metric)].drop_duplicates("model_key")
        sets.append((task, metric, pd.DataFrame({"model_key": s["model_key"].astype(str),
                                                 "quality": s["value"].astype(float)})))
    if "mean_score" in leaderboard.columns and leaderboard["mean_score"].notna().sum() >= 2 and len(primary) > 1:
        sets.append(("all", "mean_score", pd.DataFrame({"model_key": leaderboard["model_key"].astype(str),
                                                        "quality": leaderboard["mean_score"].astype(float)})))
    return sets


def pareto_rows(names: dict[str, str], scores: pd.DataFrame, eff: pd.DataFrame, eff_model: pd.DataFrame,
                primary: dict[str, str], leaderboard: pd.DataFrame) -> list[dict]:
    """Frontier rows for each task's primary metric (and the mean score) against each cost axis."""
    from beyondscale.analysis.marginal import higher_is_better

    rows: list[dict] = []
    eff_t = eff.assign(model_key=eff["model_key"].astype(str)).drop_duplicates(["model_key", "task"])
    eff_t = eff_t.set_index(["model_key", "task"])
    eff_m = eff_model.set_index("model_key")
    for task, metric, q in _quality_sets(scores, primary, leaderboard):
        hb = True if metric == "mean_score" else higher_is_better(metric)
        for cost in PARETO_COSTS:
            cs = []
            for k in q["model_key"]:
                v = pd.to_numeric(eff_t.at[(k, task), cost], errors="coerce") if (k, task) in eff_t.index else np.nan
                if not np.isfinite(v) and k in eff_m.index:
                    v = pd.to_numeric(eff_m.at[k, cost], errors="coerce")
                cs.append(float(v))
            df = pd.DataFrame({"model": [names.get(k, k) for k in q["model_key"]], "quality": q["quality"].values,
                               "cost": cs})
            df = df[np.isfinite(df["quality"]) & np.isfinite(df["cost"])]
            if len(df) >= 2:
                fr = pareto_frontier(df, higher_better=hb)
                rows += [{"task": task, "metric": metric, "cost_axis": cost, **r} for r in fr.to_dict("records")]
    return rows
