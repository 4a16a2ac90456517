"""SQL of imported runs (lm-eval output folders): what a unit already holds, and its one score set.

An import writes models, tasks, runs, run_units, items (keyed by lm-eval's `doc_hash`) and the unit's
metrics and item_scores, all inside the caller's one transaction (`store.transaction()`), so a refused
input leaves the store as it was. A run's id is derived from its results file's content, so importing
the same file again adds no run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from beyondscale.store.db import Store, _dumps


def put_import_run(store: Store, run_id: str, args: dict, environment: dict) -> bool:
    """Record the import as a finished run; False when this run (same results file) is stored already."""
    now = time.time()
    before = store.conn.total_changes
    store.conn.execute("INSERT OR IGNORE INTO runs VALUES(?,?,?,?,?,?,?)",
                       (run_id, now, now, "done", "import lm-eval", _dumps(args), _dumps(environment)))
    return store.conn.total_changes > before


def put_import_model(store: Store, model_key: str, name: str, ref: dict, identity: str, facts: dict) -> None:
    """The model row; an existing one keeps its facts and takes the new name (a label)."""
    store.conn.execute(
        "INSERT INTO models VALUES(?,?,?,?,?,?,?) ON CONFLICT(model_key) DO UPDATE SET name=excluded.name",
        (model_key, name, None, _dumps(ref), identity, _dumps(facts), time.time()))


def put_import_task(store: Store, task_key: str, name: str, output_type: str, spec: dict, eval_config: dict) -> None:
    store.conn.execute("INSERT OR IGNORE INTO tasks VALUES(?,?,?,?,?,?,?)",
                       (task_key, name, output_type, task_key, _dumps(spec), _dumps(eval_config), time.time()))


def doc_hashes_by_id(store: Store, task_key: str) -> dict[int, str]:
    """doc_id -> document key of every item stored for the task (any model)."""
    rows = store.conn.execute("SELECT doc_id, item_key FROM items WHERE task_key=?", (task_key,))
    return {int(d): k for d, k in rows}


def put_import_items(store: Store, run_id: str, model_key: str, task_key: str,
                     rows: Sequence[tuple[str, int, dict, dict]]) -> int:
    """Items (doc_hash, doc_id, request, result); returns how many were new."""
    now = time.time()
    before = store.conn.total_changes
    store.conn.executemany("INSERT OR IGNORE INTO items VALUES(?,?,?,?,?,?,?,?)",
                           [(model_key, task_key, k, d, _dumps(req), _dumps(res), run_id, now)
                            for k, d, req, res in rows])
    return store.conn.total_changes - before


def unit_scores(store: Store, model_key: str, task_key: str) -> tuple[dict[int, dict], dict[str, tuple]]:
    """The unit's stored per-item rows {doc_id: row} and metrics {metric: (value, stderr, n_items)}."""
    key = (model_key, task_key)
    items = {
        int(d): {"doc_id": int(d), "pred": json.loads(p) if p is not None else None,
                 "gold": json.loads(g) if g is not None else None, "correct": c, "values": json.loads(v)}
        for d, p, g, c, v in store.conn.execute(
            'SELECT doc_id, pred, gold, correct, "values" FROM item_scores WHERE model_key=? AND task_key=?', key)
    }
    metrics = {m: (v, s, n) for m, v, s, n in store.conn.execute(
        "SELECT metric, value, stderr, n_items FROM metrics WHERE model_key=? AND task_key=?", key)}
    return items, metrics


def replace_unit_scores(store: Store, model_key: str, task_key: str, aggregates: dict[str, tuple],
                        rows: Sequence[dict]) -> None:
    """The unit's one score set: aggregates {metric: (value, stderr, n_items)} and per-item rows."""
    key = (model_key, task_key)
    for table in ("metrics", "item_scores"):
        store.conn.execute(f"DELETE FROM {table} WHERE model_key=? AND task_key=?", key)
    store.conn.executemany("INSERT INTO metrics VALUES(?,?,?,?,?,?)",
                           [(*key, m, v, s, n) for m, (v, s, n) in aggregates.items()])
    store.conn.executemany(
        "INSERT INTO item_scores VALUES(?,?,?,?,?,?,?)",
        [(*key, r["doc_id"], _dumps(r.get("pred")), _dumps(r.get("gold")),
          None if r.get("correct") is None else float(r["correct"]), _dumps(r.get("values", {}))) for r in rows])


def put_import_unit(store: Store, run_id: str, model_key: str, task_key: str, build: dict, new_items: int) -> None:
    store.conn.execute("INSERT OR IGNORE INTO run_units VALUES(?,?,?,?,?,?)",
                       (run_id, model_key, task_key, "imported", _dumps(build), new_items))
