"""Reading the store: its runs, one run's results, their export, the frames analysis reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from beyondscale.errors import UserError
from beyondscale.store import DEFAULT_STORE, Frames, Store, load_frames, results_table


def open_store(store: str | Path) -> Store:
    """An existing store (reading never creates one)."""
    if not Path(store).exists():
        raise UserError(f"--store {store}: no such store (run `beyondscale eval` first)")
    return Store(store, create=False)


def list_runs(store: str | Path = DEFAULT_STORE) -> pd.DataFrame:
    return open_store(store).runs()


def show_run(run_id: str, store: str | Path = DEFAULT_STORE) -> pd.DataFrame:
    db = open_store(store)
    if run_id == "latest":
        runs = db.runs()
        if runs.empty:
            raise UserError(f"--store {store}: holds no runs yet")
        run_id = runs["run_id"].iloc[-1]
    elif not db.run_exists(run_id):
        close = [r for r in db.runs()["run_id"] if r.startswith(run_id[:8])][:5]
        raise UserError(f"run {run_id}: not in {store}" + (f" (close: {', '.join(close)})" if close else ""))
    return results_table(load_frames(db, touched_by=run_id, with_items=False))


def export_run(run_id: str, out: str | Path, fmt: str = "csv", store: str | Path = DEFAULT_STORE) -> Path:
    """Write a run's results (scores + sizes + efficiency with sources) as CSV or JSON."""
    if fmt not in ("csv", "json"):
        raise UserError(f"--format {fmt}: expected csv or json")
    table = show_run(run_id, store)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if fmt == "csv":
        table.to_csv(tmp, index=False)
    else:
        tmp.write_text(json.dumps(table.to_dict(orient="records"), indent=2, default=str), encoding="utf-8")
    tmp.replace(out)
    return out


def load_store_frames(store: str | Path = DEFAULT_STORE, **filters: Any) -> Frames:
    return load_frames(open_store(store), **filters)
