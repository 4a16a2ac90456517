"""`schema_version` is checked on open: an old store is migrated, a newer or unknown one refused in one line."""

from __future__ import annotations

import json
import sqlite3

import pytest

from beyondscale.errors import UserError
from beyondscale.store import SCHEMA_VERSION, Store, load_frames

# The schema of version 1 as it shipped (scores keyed by run), written out here so the test does not
# depend on the code under test to build the old store.
V1 = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE models(model_key TEXT PRIMARY KEY, name TEXT NOT NULL, family TEXT, ref TEXT NOT NULL,
  identity TEXT NOT NULL, facts TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE tasks(task_key TEXT PRIMARY KEY, name TEXT NOT NULL, output_type TEXT NOT NULL,
  spec_hash TEXT NOT NULL, spec TEXT NOT NULL, eval_config TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE runs(run_id TEXT PRIMARY KEY, created REAL NOT NULL, finished REAL, status TEXT NOT NULL,
  command TEXT NOT NULL, args TEXT NOT NULL, environment TEXT NOT NULL);
CREATE TABLE run_pairs(run_id TEXT NOT NULL, model_key TEXT NOT NULL, task_key TEXT NOT NULL,
  status TEXT NOT NULL, build TEXT, PRIMARY KEY(run_id, model_key, task_key));
CREATE TABLE items(model_key TEXT NOT NULL, task_key TEXT NOT NULL, item_key TEXT NOT NULL,
  doc_id INTEGER NOT NULL, request TEXT NOT NULL, result TEXT NOT NULL, batch_key TEXT NOT NULL,
  created REAL NOT NULL, PRIMARY KEY(model_key, task_key, item_key));
CREATE TABLE measurements(model_key TEXT NOT NULL, task_key TEXT NOT NULL, batch_key TEXT NOT NULL,
  run_id TEXT NOT NULL, n_items INTEGER NOT NULL, wall_s REAL, cpu_s REAL, tokens_in INTEGER,
  tokens_out INTEGER, peak_rss_bytes INTEGER, peak_gpu_bytes INTEGER, energy_j REAL, energy_source TEXT,
  environment_key TEXT, measurement TEXT NOT NULL, created REAL NOT NULL,
  PRIMARY KEY(model_key, task_key, batch_key));
CREATE TABLE item_scores(run_id TEXT NOT NULL, model_key TEXT NOT NULL, task_key TEXT NOT NULL,
  doc_id INTEGER NOT NULL, pred TEXT, gold TEXT, correct REAL, "values" TEXT NOT NULL,
  PRIMARY KEY(run_id, model_key, task_key, doc_id));
CREATE TABLE metrics(run_id TEXT NOT NULL, model_key TEXT NOT NULL, task_key TEXT NOT NULL,
  metric TEXT NOT NULL, value REAL, stderr REAL, n_items INTEGER NOT NULL,
  PRIMARY KEY(run_id, model_key, task_key, metric));
CREATE TABLE efficiency(run_id TEXT NOT NULL, model_key TEXT NOT NULL, task_key TEXT NOT NULL,
  figures TEXT NOT NULL, PRIMARY KEY(run_id, model_key, task_key));
CREATE TABLE training_runs(model_key TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE benchmarks(run_id TEXT NOT NULL, model_key TEXT NOT NULL, prompt_tokens INTEGER NOT NULL,
  new_tokens INTEGER NOT NULL, figures TEXT NOT NULL, environment_key TEXT,
  PRIMARY KEY(run_id, model_key, prompt_tokens, new_tokens));
INSERT INTO meta VALUES('app', 'beyondscale'), ('schema_version', '1');
"""


def _v1_store(path):
    """Two runs scored the pair (m, t) with different results (the newer one must win); only the older
    run scored (m, t2)."""
    conn = sqlite3.connect(path)
    conn.executescript(V1)
    facts = json.dumps({"params_total": 1000, "dtype": "float32"})
    conn.execute("INSERT INTO models VALUES('m','M',NULL,'{\"spec\": \"m\"}','id',?,1)", (facts,))
    for key, name in (("t", "task_one"), ("t2", "task_two")):
        conn.execute("INSERT INTO tasks VALUES(?,?,'multiple_choice','h','{}','{}',1)", (key, name))
    for run, created in (("r_old", 100.0), ("r_new", 200.0)):
        conn.execute("INSERT INTO runs VALUES(?,?,?,'done','eval','{}','{}')", (run, created, created + 1))
        conn.execute("INSERT INTO run_pairs VALUES(?,'m','t','done','{}')", (run,))
    conn.execute("INSERT INTO run_pairs VALUES('r_old','m','t2','done','{}')")
    for run, acc, docs in (("r_old", 0.25, 2), ("r_new", 0.75, 3)):
        conn.execute("INSERT INTO metrics VALUES(?,'m','t','acc',?,0.1,?)", (run, acc, docs))
        conn.execute("INSERT INTO efficiency VALUES(?,'m','t',?)", (run, json.dumps({"seconds": acc})))
        for doc in range(docs):
            conn.execute("INSERT INTO item_scores VALUES(?,'m','t',?,'0','0',1.0,?)",
                         (run, doc, json.dumps({"acc": acc})))
    conn.execute("INSERT INTO metrics VALUES('r_old','m','t2','acc',0.5,0.1,1)")
    conn.execute("INSERT INTO item_scores VALUES('r_old','m','t2',0,'0','0',1.0,'{\"acc\": 0.5}')")
    conn.execute("INSERT INTO efficiency VALUES('r_old','m','t2','{}')")
    conn.execute("INSERT INTO items VALUES('m','t','k0',0,'{}','{}','b',1)")
    conn.execute("INSERT INTO measurements VALUES('m','t','b','r_old',1,1.0,1.0,5,0,0,NULL,NULL,'none','e','{}',1)")
    conn.commit()
    conn.close()


def _one(conn, sql):
    return conn.execute(sql).fetchall()


def test_version_1_store_is_migrated_keeping_the_newest_scores(tmp_path):
    path = tmp_path / "old.db"
    _v1_store(path)
    store = Store(path)
    conn = store.conn
    assert _one(conn, "SELECT value FROM meta WHERE key='schema_version'") == [(str(SCHEMA_VERSION),)]
    assert sorted(_one(conn, "SELECT model_key, task_key, metric, value FROM metrics")) == [
        ("m", "t", "acc", 0.75), ("m", "t2", "acc", 0.5)]
    assert _one(conn, "SELECT COUNT(*) FROM item_scores WHERE task_key='t'") == [(3,)]
    assert _one(conn, "SELECT COUNT(*) FROM item_scores WHERE task_key='t2'") == [(1,)]
    assert [json.loads(f) for (f,) in _one(conn, "SELECT figures FROM efficiency WHERE task_key='t'")] == [
        {"seconds": 0.75}]
    # What each run touched survives; items and measurements are untouched.
    assert sorted(_one(conn, "SELECT run_id, task_key FROM run_units")) == [
        ("r_new", "t"), ("r_old", "t"), ("r_old", "t2")]
    assert _one(conn, "SELECT COUNT(*) FROM items") == [(1,)]
    assert _one(conn, "SELECT COUNT(*) FROM measurements") == [(1,)]
    assert _one(conn, "SELECT name FROM sqlite_master WHERE name='training_runs'") == []  # version 3 dropped it
    frames = load_frames(store)
    assert sorted(frames.scores["value"]) == [0.5, 0.75]
    store.close()
    Store(path).close()  # reopening a migrated store changes nothing
    conn = sqlite3.connect(path)
    assert _one(conn, "SELECT COUNT(*) FROM item_scores") == [(4,)]


@pytest.mark.parametrize("version", ["99", "two", None])
def test_newer_or_unknown_version_is_refused_in_one_line(tmp_path, version):
    path = tmp_path / "future.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    if version is None:
        conn.execute("DELETE FROM meta WHERE key='schema_version'")
    else:
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (version,))
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(UserError) as info:
        Store(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "schema_version" in message
    if version == "99":
        assert "newer" in message
    assert path.read_bytes() == before
