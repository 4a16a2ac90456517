"""lm-eval requests answered for a model, and the rows an lm-eval evaluation leaves in the store.

`lm_requests` keeps each answer of the engine under (model_key, request_key): `request_key` covers the
model and the request's content (engine.lm_eval_model.request_key), so a re-run, or a run resumed after
kill -9, asks the engine only for what is missing. Each `put_many` is one transaction (one engine batch).
The per-document rows (`items`, keyed by lm-eval's doc_hash), the per-task measurement and the score set
go into the tables the built-in path fills, so analysis reads them the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from beyondscale.store.db import MEASUREMENT_FIELDS, Store


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


class RequestCache:
    """The store's answers for one model, as BeyondscaleLM's `request_cache` (get_many / put_many)."""

    CHUNK = 500  # SQLite's bound on parameters per statement

    def __init__(self, store: Store, model_key: str, run_id: str | None = None):
        self.store, self.model_key, self.run_id = store, model_key, run_id
        self.written: set[str] = set()  # keys this process computed and stored

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        keys = list(keys)
        for start in range(0, len(keys), self.CHUNK):
            chunk = keys[start:start + self.CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.store.conn.execute(
                f"SELECT request_key, answer FROM lm_requests WHERE model_key=? AND request_key IN ({marks})",
                (self.model_key, *chunk))
            found.update({k: json.loads(a) for k, a in rows})
        return found

    def put_many(self, pairs: Iterable[tuple[str, Any]]) -> None:
        now = time.time()
        rows = [(self.model_key, k, _dumps(v), self.run_id, now) for k, v in pairs]
        with self.store.transaction():
            self.store.conn.executemany("INSERT OR IGNORE INTO lm_requests VALUES(?,?,?,?,?)", rows)
        self.written.update(k for _, k, *_ in rows)


def count_requests(store: Store, model_key: str) -> int:
    return store.conn.execute("SELECT COUNT(*) FROM lm_requests WHERE model_key=?", (model_key,)).fetchone()[0]


def put_items(store: Store, model_key: str, task_key: str, rows: Sequence[tuple[str, int, Any, Any]],
              batch_key: str) -> int:
    """Per-document rows (doc_hash, doc_id, request, result); a document stored already is left as it is.
    Returns how many were new."""
    now = time.time()
    with store.transaction():
        before = store.conn.total_changes
        store.conn.executemany(
            "INSERT OR IGNORE INTO items VALUES(?,?,?,?,?,?,?,?)",
            [(model_key, task_key, k, d, _dumps(req), _dumps(res), batch_key, now) for k, d, req, res in rows])
        return store.conn.total_changes - before


def put_measurement(store: Store, run_id: str, model_key: str, task_key: str, batch_key: str, n_items: int,
                    measurement: dict, environment_key: str) -> None:
    """The cost of what this run computed for the task (a replay of the same batch key adds nothing)."""
    with store.transaction():
        store.conn.execute(
            "INSERT OR IGNORE INTO measurements VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (model_key, task_key, batch_key, run_id, n_items, *(measurement.get(f) for f in MEASUREMENT_FIELDS),
             environment_key, _dumps(measurement), time.time()))


def put_group_scores(store: Store, model_key: str, task_key: str, aggregates: dict[str, tuple[Any, Any]],
                     n_items: int) -> None:
    """An lm-eval group's aggregate metrics over its members' `n_items` documents (its per-document rows are
    its members'); replaces any earlier set, as `write_scores` does."""
    key = (model_key, task_key)
    with store.transaction():
        for table in ("metrics", "item_scores", "efficiency"):
            store.conn.execute(f"DELETE FROM {table} WHERE model_key=? AND task_key=?", key)
        store.conn.executemany("INSERT INTO metrics VALUES(?,?,?,?,?,?)",
                               [(*key, m, v, s, n_items) for m, (v, s) in aggregates.items()])
