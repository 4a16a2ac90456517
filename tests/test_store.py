"""The store refuses foreign files, writes batches atomically and never duplicates rows."""

from __future__ import annotations

import sqlite3

import pytest

from beyondscale.errors import UserError
from beyondscale.store import Store


def test_refuses_non_sqlite_file(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("hello, I am not a database\n" * 10)
    with pytest.raises(UserError, match="not a beyondscale database"):
        Store(path)
    assert path.read_text().startswith("hello")  # untouched


def test_refuses_foreign_sqlite_database(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users(id INTEGER)")
    conn.execute("INSERT INTO users VALUES (1)")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="not a beyondscale database"):
        Store(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 1
    assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master")} == {"users"}


def test_wal_and_reopen(tmp_path):
    path = tmp_path / "s.db"
    store = Store(path)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    Store(path).close()  # our own file reopens


def _rows(keys):
    return [(k, i, {"doc_id": i}, {"doc_id": i, "logprobs": [-1.0]}) for i, k in enumerate(keys)]


def test_batches_are_atomic_and_idempotent(tmp_path):
    store = Store(tmp_path / "s.db")
    run = store.start_run("eval", {}, {})
    meas = {"wall_s": 1.0, "tokens_in": 10}
    store.write_batch(run, "m", "t", "b1", _rows(["a", "b"]), meas, "env")
    store.write_batch(run, "m", "t", "b1", _rows(["a", "b"]), meas, "env")  # replayed after a crash
    assert store.done_item_keys("m", "t") == {"a", "b"}
    assert store.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 2
    assert store.conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 1

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction():
        store.conn.execute("INSERT INTO items VALUES('m','t','c',2,'{}','{}','b2',0)")
        raise Boom
    assert store.done_item_keys("m", "t") == {"a", "b"}  # rolled back
