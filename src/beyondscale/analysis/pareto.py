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
