"""Probe results in the store: one row per (model_key, probe, probe_version, data_key).

The store's own schema belongs to `beyondscale.store`; probes keep their own table, created on
demand on the same SQLite connection. A re-run of the same probe on the same model and data
replaces its row (idempotent), so nothing is duplicated.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from beyondscale.keys import content_key

TABLE = """CREATE TABLE IF NOT EXISTS probe_results (
    model_key TEXT NOT NULL, probe TEXT NOT NULL, probe_version TEXT NOT NULL, data_key TEXT NOT NULL,
    model_name TEXT, summary_json TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (model_key, probe, probe_version, data_key))"""


def nan_to_none(obj: Any) -> Any:
    """NaN -> None, so a probe's stored and printed JSON is standard."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [nan_to_none(v) for v in obj]
    return obj


def data_key(obj: Any) -> str:
    """Content hash of a probe's input (texts, file bytes, settings)."""
    return content_key(obj, ensure_ascii=False)  # probe keys were written with UTF-8 text


def file_key(path: str | Path, **settings: Any) -> str:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return data_key({"file_sha256": digest, **settings})


def put_probe(store: str | Path, *, model_key: str, probe: str, probe_version: str, data: str,
              model_name: str, summary: dict[str, Any], model_record: dict[str, Any] | None = None) -> None:
    """Store one probe result; `model_record` registers the model (with its size facts) if the store lacks it."""
    from beyondscale.store import Store

    db = Store(store)
    try:
        if model_record is not None and db.model_facts(model_key) is None:
            r = model_record
            db.put_model(model_key, r["name"], None, r["ref"], r["identity"], r["facts"])
        db.conn.execute(TABLE)
        db.conn.execute(
            "INSERT OR REPLACE INTO probe_results VALUES (?, ?, ?, ?, ?, ?, ?)",
            (model_key, probe, probe_version, data, model_name, json.dumps(summary, default=str), time.time()),
        )
    finally:
        db.close()


def probe_frame(store: str | Path, probe: str | None = None) -> pd.DataFrame:
    """All stored probe rows (summary parsed), optionally one probe; empty when none."""
    from beyondscale.store import Store

    db = Store(store)
    try:
        db.conn.execute(TABLE)
        sql, args = "SELECT * FROM probe_results", ()
        if probe is not None:
            sql, args = sql + " WHERE probe = ?", (probe,)
        frame = pd.read_sql_query(sql, db.conn, params=args)
    finally:
        db.close()
    frame["summary"] = [json.loads(s) for s in frame.pop("summary_json")] if len(frame) else []
    return frame
