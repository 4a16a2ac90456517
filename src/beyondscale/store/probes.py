"""Probe results: one row per (model_key, probe, probe_version, data_key) in `probe_results`.

A re-run of the same probe on the same model and data replaces its row (idempotent), so nothing is
duplicated. `summary_json` holds the probe's document (lens curves, bias scores, routing statistics,
transparency items).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from beyondscale.store.db import Store


def put_probe_result(store: Store, *, model_key: str, probe: str, probe_version: str, data_key: str,
                     model_name: str, summary: dict[str, Any]) -> None:
    """Store one probe result, replacing the row of an earlier run on the same model, probe and data."""
    with store.transaction():
        store.conn.execute(
            "INSERT OR REPLACE INTO probe_results VALUES (?, ?, ?, ?, ?, ?, ?)",
            (model_key, probe, probe_version, data_key, model_name, json.dumps(summary, default=str), time.time()),
        )


def probe_results(store: Store, probe: str | None = None) -> pd.DataFrame:
    """Every stored probe row, or one probe's, with `summary` parsed (in place of `summary_json`)."""
    sql, args = "SELECT * FROM probe_results", ()
    if probe is not None:
        sql, args = sql + " WHERE probe = ?", (probe,)
    frame = store.query(sql, args)
    frame["summary"] = [json.loads(s) for s in frame.pop("summary_json")] if len(frame) else []
    return frame


def probe_frame(path: str | Path, probe: str | None = None) -> pd.DataFrame:
    """`probe_results` of the store at `path` (opened for this read, then closed)."""
    with Store(path) as db:
        return probe_results(db, probe)
