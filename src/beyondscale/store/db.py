"""The results store: one SQLite file (WAL mode), committed once per engine batch.

The tables are in `store/schema.py` and the README. The resume key of an item is (model_key,
task_key, item_key): model_key fingerprints the weights and dtype, task_key the task spec, its data
and the scoring settings, item_key the request itself. Scores belong to (model_key, task_key): one
score set each, replaced when scored again, so re-running an evaluation never adds score rows. A
batch's items and its measurement are written in one transaction, so a crash loses at most the
batch in flight and replaying a batch writes nothing.
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
from beyondscale.store import claims
from beyondscale.store.migrate import migrate_v1, migrate_v2
from beyondscale.store.schema import APP, SCHEMA_VERSION, statements

MEASUREMENT_FIELDS = (
    "wall_s", "cpu_s", "tokens_in", "tokens_out", "peak_rss_bytes", "peak_gpu_bytes", "energy_j", "energy_source",
)
MIGRATIONS = {1: migrate_v1, 2: migrate_v2}  # version -> its step to the next
DEFAULT_STORE = "beyondscale.db"  # the store every command uses unless told otherwise


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


LOCK_WAIT_S = 30.0


def _is_locked(err: sqlite3.Error) -> bool:
    return isinstance(err, sqlite3.OperationalError) and ("locked" in str(err) or "busy" in str(err))


def _when_unlocked(action: Any, path: Path) -> Any:
    """Run `action`, retrying while SQLite answers 'database is locked'.

    SQLite's busy timeout does not cover every WAL transition: a second process opening a new store while the
    first one sets it up can be told 'locked' at once. Wait for up to LOCK_WAIT_S, then say so in one line.
    """
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            return action()
        except sqlite3.OperationalError as err:
            if not _is_locked(err):
                raise
            if time.monotonic() > deadline:
                raise UserError(f"--store {path}: locked by another process for over {LOCK_WAIT_S:.0f} s") from None
            time.sleep(0.05)


def _read_header(path: Path) -> tuple[set[str], str | None, str | None]:
    """(tables, app, schema_version) of an existing SQLite file, read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        meta: dict[str, str] = {}
        if "meta" in tables:
            meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('app', 'schema_version')"))
        return tables, meta.get("app"), meta.get("schema_version")
    except sqlite3.DatabaseError as err:
        if _is_locked(err):
            raise
        raise UserError(f"--store {path}: not a beyondscale database ({err})") from None
    finally:
        conn.close()


def _check_version(path: Path, version: str | None) -> int:
    """The store's schema version if this code can open it (now or after a migration); else one line."""
    if version is None or not version.isdigit():
        raise UserError(f"--store {path}: unknown schema_version {version!r}; cannot tell how to read it")
    number = int(version)
    if number > SCHEMA_VERSION:
        raise UserError(f"--store {path}: schema_version {number} is newer than this beyondscale reads "
                        f"({SCHEMA_VERSION}); upgrade beyondscale")
    if any(step not in MIGRATIONS for step in range(number, SCHEMA_VERSION)):
        raise UserError(f"--store {path}: schema_version {number} has no migration to {SCHEMA_VERSION}")
    return number


class Store:
    """A beyondscale results database. Opening a file that is something else is refused."""

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise UserError(f"--store {self.path}: no such store")
        if self.path.exists():
            self._check_header()
        try:
            self.conn = _when_unlocked(self._connect, self.path)
        except sqlite3.DatabaseError as err:
            raise UserError(f"--store {self.path}: not a beyondscale database ({err})") from None

    def _connect(self) -> sqlite3.Connection:
        """Open in WAL mode and create or migrate the schema; a failed attempt leaves no connection open."""
        self.conn = sqlite3.connect(self.path, timeout=LOCK_WAIT_S, isolation_level=None)
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._init_schema()
        except BaseException:
            self.conn.close()
            raise
        return self.conn

    def _check_header(self) -> None:
        if self.path.is_dir():
            raise UserError(f"--store {self.path}: is a folder, expected a database file")
        if self.path.stat().st_size == 0:
            return
        with open(self.path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise UserError(f"--store {self.path}: not a beyondscale database (not an SQLite file)")
        tables, app, version = _when_unlocked(lambda: _read_header(self.path), self.path)
        if tables and app != APP:
            raise UserError(f"--store {self.path}: an SQLite file, but not a beyondscale database")
        if tables:
            _check_version(self.path, version)

    def _init_schema(self) -> None:
        """Create a new store, or migrate an old one, in one transaction (a concurrent opener waits)."""
        with self.transaction():
            row = None
            if self.conn.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone():
                row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = SCHEMA_VERSION if row is None else _check_version(self.path, row[0])
            for step in range(version, SCHEMA_VERSION):
                MIGRATIONS[step](self.conn)
            for statement in statements():
                self.conn.execute(statement)
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES('app', ?)", (APP,))
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- runs, models, tasks ----------------------------------------------------------------
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

    def discard_run(self, run_id: str) -> None:
        """A run that computed nothing because the user's input was refused: gone, as if never started."""
        with self.transaction():
            self.conn.execute("DELETE FROM run_units WHERE run_id=?", (run_id,))
            self.conn.execute("DELETE FROM runs WHERE run_id=?", (run_id,))

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

    def put_run_unit(self, run_id: str, model_key: str, task_key: str, status: str, build: dict | None = None,
                     items_computed: int | None = None) -> None:
        """Record that `run_id` touched the unit (model, task), and how many items it computed there."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO run_units VALUES(?,?,?,?,?,?) ON CONFLICT DO UPDATE SET status=excluded.status, "
                "build=COALESCE(excluded.build, run_units.build), "
                "items_computed=COALESCE(excluded.items_computed, run_units.items_computed)",
                (run_id, model_key, task_key, status, None if build is None else _dumps(build), items_computed),
            )

    def model_facts(self, model_key: str) -> dict | None:
        row = self.conn.execute("SELECT facts FROM models WHERE model_key=?", (model_key,)).fetchone()
        return json.loads(row[0]) if row else None

    # ---- claims -------------------------------------------------------------------------------
    def try_claim(self, model_key: str, task_keys: Iterable[str], owner: str, timeout_s: float) -> list[str]:
        """Claim the model's tasks that no live process holds, in one transaction; returns those claimed."""
        with self.transaction():
            return [t for t in task_keys if claims.try_claim(self.conn, model_key, t, owner, timeout_s)]

    def release_claims(self, owner: str, units: Iterable[tuple[str, str]]) -> None:
        with self.transaction():
            claims.release(self.conn, owner, units)

    # ---- items and measurements -----------------------------------------------------------------
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
    ) -> int:
        """One engine batch: its items (item_key, doc_id, request, result) and its measurement, atomically.

        Returns how many items were new. A batch whose items are all stored already (a replay) adds
        nothing, its measurement included, so no cost is counted twice.
        """
        now = time.time()
        with self.transaction():
            before = self.conn.total_changes
            self.conn.executemany(
                "INSERT OR IGNORE INTO items VALUES(?,?,?,?,?,?,?,?)",
                [(model_key, task_key, k, d, _dumps(req), _dumps(res), batch_key, now) for k, d, req, res in rows],
            )
            new = self.conn.total_changes - before
            if new:
                self.conn.execute(
                    "INSERT OR IGNORE INTO measurements VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (model_key, task_key, batch_key, run_id, len(rows),
                     *(measurement.get(f) for f in MEASUREMENT_FIELDS), environment_key, _dumps(measurement), now),
                )
        return new

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

    # ---- scores -----------------------------------------------------------------------------------
    def write_scores(
        self,
        model_key: str,
        task_key: str,
        aggregates: dict[str, tuple[float, float | None]],
        rows: Sequence[dict],
        efficiency: dict,
    ) -> None:
        """The unit's one score set (metrics, per-item scores, efficiency), replacing any earlier one."""
        n = len(rows)
        key = (model_key, task_key)
        with self.transaction():
            for table in ("metrics", "item_scores", "efficiency"):
                self.conn.execute(f"DELETE FROM {table} WHERE model_key=? AND task_key=?", key)
            self.conn.executemany(
                "INSERT INTO metrics VALUES(?,?,?,?,?,?)", [(*key, m, v, s, n) for m, (v, s) in aggregates.items()]
            )
            self.conn.executemany(
                "INSERT INTO item_scores VALUES(?,?,?,?,?,?,?)",
                [
                    (*key, r["doc_id"], _dumps(r.get("pred")), _dumps(r.get("gold")),
                     None if r.get("correct") is None else float(r["correct"]), _dumps(r.get("values", {})))
                    for r in rows
                ],
            )
            self.conn.execute("INSERT INTO efficiency VALUES(?,?,?,?)", (*key, _dumps(efficiency), time.time()))

    def put_benchmark(self, run_id: str, model_key: str, row: dict, environment_key: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO benchmarks VALUES(?,?,?,?,?,?)",
                (run_id, model_key, row["prompt_tokens"], row["new_tokens"], _dumps(row), environment_key),
            )

    # ---- reads --------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return pd.read_sql_query(sql, self.conn, params=list(params))

    def runs(self) -> pd.DataFrame:
        return self.query(
            "SELECT r.run_id, r.status, r.command, datetime(r.created, 'unixepoch') AS created, "
            "COUNT(u.model_key) AS units FROM runs r LEFT JOIN run_units u USING(run_id) "
            "GROUP BY r.run_id ORDER BY r.created"
        )

    def run_exists(self, run_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is not None

    def units_touched(self, run_id: str) -> set[tuple[str, str]]:
        """The (model_key, task_key) units a run touched."""
        rows = self.conn.execute("SELECT model_key, task_key FROM run_units WHERE run_id=?", (run_id,))
        return {(m, t) for m, t in rows}


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
