"""Two processes opening one new store at once: the second waits for the first, it is not 'not a database'."""

from __future__ import annotations

import sqlite3
import threading
import time

from beyondscale.store import Store


def test_open_waits_while_another_connection_holds_the_new_file(tmp_path):
    path = tmp_path / "s.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # the first opener, mid-setup of a file that has no tables yet
    threading.Timer(0.5, lambda: holder.execute("ROLLBACK")).start()
    start = time.monotonic()
    store = Store(path)  # must wait for the lock, then switch to WAL and create the schema
    assert time.monotonic() - start >= 0.4
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("SELECT value FROM meta WHERE key='app'").fetchone()[0] == "beyondscale"
    store.close()
    holder.close()


def test_an_immediate_locked_answer_is_retried_not_called_not_a_database(tmp_path, monkeypatch):
    """SQLite can answer 'database is locked' without waiting (WAL set-up by another process): retry."""
    Store(tmp_path / "s.db").close()
    real_connect = sqlite3.connect
    refusals = {"left": 3}

    def flaky_connect(*args, **kwargs):
        if refusals["left"]:
            refusals["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", flaky_connect)
    store = Store(tmp_path / "s.db")
    assert refusals["left"] == 0
    assert store.conn.execute("SELECT value FROM meta WHERE key='app'").fetchone()[0] == "beyondscale"
    store.close()
