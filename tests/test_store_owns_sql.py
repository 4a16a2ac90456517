"""`store/` owns every table and every SQL statement; one default store name.

A grep over the package's sources: a module outside `store/` that reaches for a connection (`.conn`),
reads SQL into pandas (`read_sql`), or writes an SQL statement fails this test, naming the line.
"""

from __future__ import annotations

import re
from pathlib import Path

import beyondscale

SRC = Path(beyondscale.__file__).parent
STORE = SRC / "store"
DEFAULT_NOT_YET_WIRED: set[str] = set()  # every place now takes store.DEFAULT_STORE

CONNECTION = re.compile(r"\.conn\b|read_sql")
SQL = re.compile(
    r"""["'](?:\s*)(?:CREATE\s+(?:TEMP\s+)?(?:TABLE|INDEX|VIEW)|INSERT\s+(?:OR\s+\w+\s+)?INTO|DELETE\s+FROM|"""
    r"""UPDATE\s+\w+\s+SET|SELECT\s+[^"']*\bFROM\b|DROP\s+TABLE|ALTER\s+TABLE|PRAGMA\s)"""
)  # SQL keywords as this code writes them (upper case), at the start of a string
EXECUTE = re.compile(r"\.execute(?:many|script)?\(")


def _modules_outside_store() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if STORE not in p.parents]


def _hits(pattern: re.Pattern[str]) -> list[str]:
    return [f"{path.relative_to(SRC)}:{n}: {line.strip()}"
            for path in _modules_outside_store()
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]


def test_the_patterns_find_what_they_look_for():
    assert CONNECTION.search("rows = db.conn.execute(sql)") and CONNECTION.search("pd.read_sql_query(q, c)")
    assert SQL.search('conn.execute("SELECT a FROM t")') and SQL.search("x = '''CREATE TABLE IF NOT EXISTS t(")
    assert SQL.search('db.execute("INSERT OR REPLACE INTO t VALUES (?)")')
    assert not SQL.search('print("select the model from the list")') and not CONNECTION.search("self.connected")
    assert EXECUTE.search("cur.executemany(sql, rows)") and not EXECUTE.search("_execute(executor, units)")


def test_no_module_outside_store_touches_a_connection_or_writes_sql():
    assert _modules_outside_store() and len(_modules_outside_store()) > 50  # the grep sees the package
    assert _hits(CONNECTION) == []
    assert _hits(SQL) == []
    assert _hits(EXECUTE) == []


def test_the_default_store_name_is_written_once():
    from beyondscale.store import DEFAULT_STORE

    found = [str(p.relative_to(SRC)) for p in sorted(SRC.rglob("*.py")) if f'"{DEFAULT_STORE}"' in p.read_text()]
    assert [f for f in found if f not in DEFAULT_NOT_YET_WIRED] == ["store/db.py"]
