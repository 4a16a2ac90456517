"""Claims: two `eval` processes on one store compute each (model, task) unit once.

A process claims a unit before computing it and keeps the claim alive with a heartbeat (a thread
with its own connection). A claim is taken over when its heartbeat is older than the timeout, or at
once when its owner is a process of this machine that no longer exists (a killed eval, re-run).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

DEFAULT_TIMEOUT_S = 60.0
HEARTBEAT_S = 5.0


def new_owner() -> str:
    """This process's claim owner: host, pid and a random tag (two evaluations in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_alive(owner: str) -> bool:
    parts = owner.rsplit(":", 2)
    host, pid = (parts[0], parts[1]) if len(parts) == 3 else ("", "")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine: only its heartbeat can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def try_claim(conn: sqlite3.Connection, model_key: str, task_key: str, owner: str, timeout_s: float) -> bool:
    """Take the unit's claim unless another live owner holds it. Call inside a write transaction."""
    row = conn.execute("SELECT owner, heartbeat FROM claims WHERE model_key=? AND task_key=?",
                       (model_key, task_key)).fetchone()
    now = time.time()
    if row is not None and row[0] != owner and now - row[1] <= timeout_s and _owner_alive(row[0]):
        return False
    conn.execute("INSERT OR REPLACE INTO claims VALUES(?,?,?,?)", (model_key, task_key, owner, now))
    return True


def release(conn: sqlite3.Connection, owner: str, units: Iterable[tuple[str, str]]) -> None:
    conn.executemany("DELETE FROM claims WHERE model_key=? AND task_key=? AND owner=?",
                     [(m, t, owner) for m, t in units])


class Heartbeat:
    """Refreshes every claim of `owner` every `interval_s` seconds until stopped (a daemon thread)."""

    def __init__(self, path: Path, owner: str, interval_s: float = HEARTBEAT_S):
        self.path, self.owner, self.interval_s = path, owner, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="beyondscale-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            while not self._stop.wait(self.interval_s):
                conn.execute("UPDATE claims SET heartbeat=? WHERE owner=?", (time.time(), self.owner))
        except sqlite3.Error:
            pass  # the claim goes stale and another process may take the unit over: nothing is lost
        finally:
            conn.close()
