"""The results store: one SQLite file (WAL mode), committed once per engine batch.

Schema (documented in the README; `schema_version` in `meta`):

    meta(key PK, value)                          app = "beyondscale", schema_version
    models(model_key PK, name, family, ref, identity, facts, created)
    tasks(task_key PK, name, output_type, spec_hash, spec, eval_config, created)
    runs(run_id PK, created, finished, status, command, args, environment)
    run_pairs(run_id, model_key, task_key, status, build, PK(run_id, model_key, task_key))
                                                 -- build: seed, split, doc ids and few-shot doc ids used
    items(model_key, task_key, item_key, doc_id, request, result, batch_key, created,
          PK(model_key, task_key, item_key))         -- the engine's raw answers
    measurements(model_key, task_key, batch_key, run_id, n_items, wall_s, cpu_s, tokens_in,
          tokens_out, peak_rss_bytes, peak_gpu_bytes, energy_j, energy_source, environment_key,
          measurement (the full Measurement as JSON), created, PK(model_key, task_key, batch_key))
    item_scores(run_id, model_key, task_key, doc_id, pred, gold, correct, "values",
          PK(run_id, model_key, task_key, doc_id))   -- per-item metric values, for pairing
    metrics(run_id, model_key, task_key, metric, value, stderr, n_items,
          PK(run_id, model_key, task_key, metric))
    efficiency(run_id, model_key, task_key, figures, PK(run_id, model_key, task_key))
    training_runs(model_key PK, record)          -- the lab's records (N, D, FLOPs, loss curve)
    benchmarks(run_id, model_key, prompt_tokens, new_tokens, figures, environment_key)
                                                 -- `beyondscale bench` generation figures

The resume key of an item is (model_key, task_key, item_key): model_key fingerprints the weights
and dtype, task_key the task spec, its data and the engine settings, item_key the request itself.
A batch's items and its measurement are written in one transaction, so a crash loses at most
the batch in flight and a re-run never duplicates rows.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from beyondscale.errors import UserError

SCHEMA_VERSION = 1
APP = "beyondscale"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS models(
  model_key TEXT PRIMARY KEY, name TEXT NOT NULL, family TEXT, ref TEXT NOT NULL, identity TEXT NOT NULL,
  facts TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tasks(
  task_key TEXT PRIMARY KEY, name TEXT NOT NULL, output_type TEXT NOT NULL, spec_hash TEXT NOT NULL,
  spec TEXT NOT NULL, eval_config TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs(
  run_id TEXT PRIMARY KEY, created REAL NOT NULL, finished REAL, status TEXT NOT NULL, command TEXT NOT NULL,
  args TEXT NOT NULL, environment TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS run_pairs(
  run_id TEXT NOT NULL, model_key TEXT NOT NULL, task_key TEXT NOT NULL, status TEXT NOT NULL, build TEXT,
  PRIMARY KEY(run_id, model_key, task_key));
CREATE TABLE IF NOT EXISTS items(
  model_key TEXT NOT NULL, task_key TEXT NOT NULL, item_key TEXT NOT NULL, doc_id INTEGER NOT NULL,
  request TEXT NOT NULL, result TEXT NOT NULL, batch_key TEXT NOT NULL, created REAL NOT NULL,
  PRIMARY KEY(model_key, task_key, item_key));
CREATE TABLE IF NOT EXISTS measurements(
  model_key TEXT NOT NULL, task_key TEXT NOT NULL, batch_key TEXT NOT NULL, run_id TEXT NOT NULL,
  n_items INTEGER NOT NULL, wall_s REAL, cpu_s REAL, tokens_in INTEGER, tokens_out INTEGER,
  peak_rss_bytes INTEGER, peak_gpu_bytes INTEGER, energy_j REAL, energy_source TEXT, environment_key TEXT,
  measurement TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY(model_key, task_key, batch_key));
CREATE TABLE IF NOT EXISTS item_scores(
  run_id TEXT NOT NULL, model_key TEXT NOT NULL, task_key TEXT NOT NULL, doc_id INTEGER NOT NULL,
  pred TEXT, gold TEXT, correct REAL, "values" TEXT NOT NULL, PRIMARY KEY(run_id, model_key, task_key, doc_id));
CREATE TABLE IF NOT EXISTS metrics(
  run_id TEXT NOT NULL, model_key TEXT NOT NULL, task_key TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
  stderr REAL, n_items INTEGER NOT NULL, PRIMARY KEY(run_id, model_key, task_key, metric));
CREATE TABLE IF NOT EXISTS efficiency(
  run_id TEXT NOT NULL, model_key TEXT NOT NULL, task_key TEXT NOT NULL, figures TEXT NOT NULL,
  PRIMARY KEY(run_id, model_key, task_key));
CREATE TABLE IF NOT EXISTS training_runs(model_key TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS benchmarks(
  run_id TEXT NOT NULL, model_key TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, new_tokens INTEGER NOT NULL,
  figures TEXT NOT NULL, environment_key TEXT, PRIMARY KEY(run_id, model_key, prompt_tokens, new_tokens));
"""

MEASUREMENT_FIELDS = (
    "wall_s", "cpu_s", "tokens_in", "tokens_out", "peak_rss_bytes", "peak_gpu_bytes", "energy_j", "energy_source",
)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


class Store:
    """A beyondscale results database. Opening a file that is something else is refused."""

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise UserError(f"--store {self.path}: no such store")
        if self.path.exists():
            self._check_header()
        try:
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._init_schema()
        except sqlite3.DatabaseError as err:
            raise UserError(f"--store {self.path}: not a beyondscale database ({err})") from None

    def _check_header(self) -> None:
        if self.path.is_dir():
            raise UserError(f"--store {self.path}: is a folder, expected a database file")
        if self.path.stat().st_size == 0:
            return
        with open(self.path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise UserError(f"--store {self.path}: not a beyondscale database (not an SQLite file)")
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            app = None
            if "meta" in tables:
                row = conn.execute("SELECT value FROM meta WHERE key='app'").fetchone()
                app = row[0] if row else None
        except sqlite3.DatabaseError as err:
            raise UserError(f"--store {self.path}: not a beyondscale database ({err})") from None
        finally:
            conn.close()
        if tables and app != APP:
            raise UserError(f"--store {self.path}: an SQLite file, but not a beyondscale database")

    def _init_schema(self) -> None:
        with self.transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES('app', ?)", (APP,))
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def close(self) -> None:
        self.conn.close()

    # ---- writes -------------------------------------------------------------------------------
    def start_run(self, command: str, args: dict, environment: dict) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        with self.transaction():
            self.conn.execute(
                "INSERT INTO runs VALUES(?,?,?,?,?,?,?)",
                (run_id, time.time(), None, "running", command, _dumps(args), _dumps(environment)),
            )
        return run_id

    def finish_run(self, run_id: str, status: str = "done") -> None:
        with self.transaction():
            self.conn.execute("UPDATE runs SET finished=?, status=? WHERE run_id=?", (time.time(), status, run_id))

    def put_model(self, model_key: str, name: str, family: str | None, ref: dict, identity: str, facts: dict) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO models VALUES(?,?,?,?,?,?,?) ON CONFLICT(model_key) DO UPDATE SET "
                "name=excluded.name, family=COALESCE(excluded.family, models.family), ref=excluded.ref, "
                "facts=excluded.facts",
                (model_key, name, family, _dumps(ref), identity, _dumps(facts), time.time()),
            )

    def put_task(self, task_key: str, name: str, output_type: str, spec_hash: str, spec: dict, eval_config: dict) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT OR IGNORE INTO tasks VALUES(?,?,?,?,?,?,?)",
                (task_key, name, output_type, spec_hash, _dumps(spec), _dumps(eval_config), time.time()),
            )

    def put_run_pair(self, run_id: str, model_key: str, task_key: str, status: str, build: dict | None = None) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO run_pairs VALUES(?,?,?,?,?) ON CONFLICT DO UPDATE SET status=excluded.status, "
                "build=COALESCE(excluded.build, run_pairs.build)",
                (run_id, model_key, task_key, status, None if build is None else _dumps(build)),
            )

    def model_facts(self, model_key: str) -> dict | None:
        row = self.conn.execute("SELECT facts FROM models WHERE model_key=?", (model_key,)).fetchone()
        return json.loads(row[0]) if row else None

    def done_item_keys(self, model_key: str, task_key: str) -> set[str]:
        rows = self.conn.execute(
            "SELECT item_key FROM items WHERE model_key=? AND task_key=?", (model_key, task_key)
        )
        return {r[0] for r in rows}

    def write_batch(
        self,
        run_id: str,
        model_key: str,
        task_key: str,
        batch_key: str,
        rows: Sequence[tuple[str, int, dict, dict]],
        measurement: dict,
        environment_key: str,
    ) -> None:
        """One engine batch: its items (item_key, doc_id, request, result) and its measurement, atomically."""
        now = time.time()
        with self.transaction():
            self.conn.executemany(
                "INSERT OR IGNORE INTO items VALUES(?,?,?,?,?,?,?,?)",
                [(model_key, task_key, k, d, _dumps(req), _dumps(res), batch_key, now) for k, d, req, res in rows],
            )
            self.conn.execute(
                "INSERT OR REPLACE INTO measurements VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (model_key, task_key, batch_key, run_id, len(rows), *(measurement.get(f) for f in MEASUREMENT_FIELDS),
                 environment_key, _dumps(measurement), now),
            )

    def item_results(self, model_key: str, task_key: str, item_keys: Iterable[str]) -> dict[str, dict]:
        wanted = set(item_keys)
        rows = self.conn.execute(
            "SELECT item_key, result FROM items WHERE model_key=? AND task_key=?", (model_key, task_key)
        )
        return {k: json.loads(r) for k, r in rows if k in wanted}

    def measurement_rows(self, model_key: str, task_key: str) -> list[dict]:
        """Each stored batch's full measurement, plus its n_items and environment_key."""
        cur = self.conn.execute(
            "SELECT measurement, n_items, environment_key FROM measurements WHERE model_key=? AND task_key=? "
            "ORDER BY created", (model_key, task_key),
        )
        return [{**json.loads(m), "n_items": n, "environment_key": e} for m, n, e in cur]

    def write_scores(
        self,
        run_id: str,
        model_key: str,
        task_key: str,
        aggregates: dict[str, tuple[float, float | None]],
        rows: Sequence[dict],
        efficiency: dict,
    ) -> None:
        n = len(rows)
        with self.transaction():
            for table in ("metrics", "item_scores", "efficiency"):
                self.conn.execute(
                    f"DELETE FROM {table} WHERE run_id=? AND model_key=? AND task_key=?", (run_id, model_key, task_key)
                )
            self.conn.executemany(
                "INSERT INTO metrics VALUES(?,?,?,?,?,?,?)",
                [(run_id, model_key, task_key, m, v, s, n) for m, (v, s) in aggregates.items()],
            )
            self.conn.executemany(
                "INSERT INTO item_scores VALUES(?,?,?,?,?,?,?,?)",
                [
                    (run_id, model_key, task_key, r["doc_id"], _dumps(r.get("pred")), _dumps(r.get("gold")),
                     None if r.get("correct") is None else float(r["correct"]), _dumps(r.get("values", {})))
                    for r in rows
                ],
            )
            self.conn.execute(
                "INSERT INTO efficiency VALUES(?,?,?,?)", (run_id, model_key, task_key, _dumps(efficiency))
            )

    def put_benchmark(self, run_id: str, model_key: str, row: dict, environment_key: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO benchmarks VALUES(?,?,?,?,?,?)",
                (run_id, model_key, row["prompt_tokens"], row["new_tokens"], _dumps(row), environment_key),
            )

    def put_training_record(self, model_key: str, record: dict) -> None:
        with self.transaction():
            self.conn.execute("INSERT OR REPLACE INTO training_runs VALUES(?,?)", (model_key, _dumps(record)))

    # ---- reads --------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return pd.read_sql_query(sql, self.conn, params=list(params))

    def runs(self) -> pd.DataFrame:
        return self.query(
            "SELECT r.run_id, r.status, r.command, datetime(r.created, 'unixepoch') AS created, "
            "COUNT(p.model_key) AS pairs FROM runs r LEFT JOIN run_pairs p USING(run_id) "
            "GROUP BY r.run_id ORDER BY r.created"
        )

    def run_exists(self, run_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is not None

    def latest_pairs(self, run_id: str | None = None) -> pd.DataFrame:
        """(run_id, model_key, task_key) whose scores to use: one run, or the latest scored run per pair."""
        if run_id is not None:
            return self.query("SELECT DISTINCT run_id, model_key, task_key FROM metrics WHERE run_id=?", (run_id,))
        return self.query(
            "SELECT m.run_id, m.model_key, m.task_key FROM (SELECT DISTINCT run_id, model_key, task_key FROM metrics) m "
            "JOIN runs r USING(run_id) WHERE r.created = (SELECT MAX(r2.created) FROM runs r2 JOIN metrics m2 "
            "USING(run_id) WHERE m2.model_key=m.model_key AND m2.task_key=m.task_key)"
        )


class _Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.depth = 0

    def __enter__(self) -> _Transaction:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
            self.depth = 1
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if self.depth:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
