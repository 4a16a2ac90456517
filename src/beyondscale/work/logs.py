"""Unit logs: plain text files next to the store, one per (run, model), kept after the run.

    <store file>.logs/<run_id>/<model name>-<model key>.log

Files, not a table: a log is for reading (`beyondscale results logs RUN`, `less`, `grep`), holds
tracebacks and library warnings of any length, and must never slow the store's batch commits. Each
attempt of a unit appends to its file, so a retried unit shows why it was retried.
"""

from __future__ import annotations

import re
from pathlib import Path

from beyondscale.errors import UserError


def logs_root(store_path: str | Path) -> Path:
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".logs")


def unit_log_path(store_path: str | Path, run_id: str, model_name: str, model_key: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name)[:60] or "model"
    return logs_root(store_path) / run_id / f"{safe}-{model_key[:12]}.log"


def append_log(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")


def run_logs(store_path: str | Path, run_id: str) -> list[Path]:
    """The unit logs of a run ('latest' = the newest run that has logs); one line if there are none."""
    root = logs_root(store_path)
    runs = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if run_id == "latest":
        if not runs:
            raise UserError(f"--store {store_path}: no unit logs yet (they are written under {root})")
        run_id = runs[-1].name
    folder = root / run_id
    if not folder.is_dir():
        close = [p.name for p in runs if p.name.startswith(run_id[:8])][:5]
        raise UserError(
            f"run {run_id}: no unit logs under {root}"
            + (f" (runs with logs: {', '.join(close)})" if close else "")
        )
    return sorted(folder.glob("*.log"))
