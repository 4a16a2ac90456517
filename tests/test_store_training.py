"""Store owns the training tables: schema 3 drops the unread `training_runs`; old records load into one typed record.

The version-2 store is written out here as it shipped (core schema, plus the lab and probe tables that
`lab/record.py` and `interpret/results.py` created on first use), so the test does not use the code under
test to build it.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from beyondscale.errors import UserError
from beyondscale.store import SCHEMA_VERSION, Store
from beyondscale.store.probes import probe_results
from beyondscale.store.training import TrainingRecord, stored_training_record, training_tables
from beyondscale.work import with_lab_record

V2 = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE models(
  model_key TEXT PRIMARY KEY, name TEXT NOT NULL, family TEXT, ref TEXT NOT NULL, identity TEXT NOT NULL,
  facts TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE tasks(
  task_key TEXT PRIMARY KEY, name TEXT NOT NULL, output_type TEXT NOT NULL, spec_hash TEXT NOT NULL,
  spec TEXT NOT NULL, eval_config TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE runs(
  run_id TEXT PRIMARY KEY, created REAL NOT NULL, finished REAL, status TEXT NOT NULL, command TEXT NOT NULL,
  args TEXT NOT NULL, environment TEXT NOT NULL);
CREATE TABLE run_units(
  run_id TEXT NOT NULL, model_key TEXT NOT NULL, task_key TEXT NOT NULL, status TEXT NOT NULL, build TEXT,
  items_computed INTEGER, PRIMARY KEY(run_id, model_key, task_key));
CREATE TABLE claims(
  model_key TEXT NOT NULL, task_key TEXT NOT NULL, owner TEXT NOT NULL, heartbeat REAL NOT NULL,
  PRIMARY KEY(model_key, task_key));
CREATE TABLE items(
  model_key TEXT NOT NULL, task_key TEXT NOT NULL, item_key TEXT NOT NULL, doc_id INTEGER NOT NULL,
  request TEXT NOT NULL, result TEXT NOT NULL, batch_key TEXT NOT NULL, created REAL NOT NULL,
  PRIMARY KEY(model_key, task_key, item_key));
CREATE TABLE measurements(
  model_key TEXT NOT NULL, task_key TEXT NOT NULL, batch_key TEXT NOT NULL, run_id TEXT NOT NULL,
  n_items INTEGER NOT NULL, wall_s REAL, cpu_s REAL, tokens_in INTEGER, tokens_out INTEGER,
  peak_rss_bytes INTEGER, peak_gpu_bytes INTEGER, energy_j REAL, energy_source TEXT, environment_key TEXT,
  measurement TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY(model_key, task_key, batch_key));
CREATE TABLE item_scores(
  model_key TEXT NOT NULL, task_key TEXT NOT NULL, doc_id INTEGER NOT NULL,
  pred TEXT, gold TEXT, correct REAL, "values" TEXT NOT NULL, PRIMARY KEY(model_key, task_key, doc_id));
CREATE TABLE metrics(
  model_key TEXT NOT NULL, task_key TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
  stderr REAL, n_items INTEGER NOT NULL, PRIMARY KEY(model_key, task_key, metric));
CREATE TABLE efficiency(
  model_key TEXT NOT NULL, task_key TEXT NOT NULL, figures TEXT NOT NULL, scored REAL NOT NULL,
  PRIMARY KEY(model_key, task_key));
CREATE TABLE training_runs(model_key TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE benchmarks(
  run_id TEXT NOT NULL, model_key TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, new_tokens INTEGER NOT NULL,
  figures TEXT NOT NULL, environment_key TEXT, PRIMARY KEY(run_id, model_key, prompt_tokens, new_tokens));
CREATE TABLE lab_training_runs(
  model_key TEXT PRIMARY KEY, identity TEXT NOT NULL, out TEXT, arch TEXT, params_total INTEGER,
  params_active INTEGER, tokens INTEGER, train_flops REAL, context_length INTEGER, val_loss REAL,
  train_loss REAL, wall_s REAL, energy_j REAL, energy_source TEXT, data_hash TEXT, data_variant TEXT,
  recipe TEXT, teacher TEXT, record TEXT NOT NULL);
CREATE TABLE training_curve(
  model_key TEXT NOT NULL, kind TEXT NOT NULL, step INTEGER NOT NULL, tokens INTEGER, flops REAL,
  loss REAL, lr REAL, PRIMARY KEY(model_key, kind, step));
CREATE TABLE lab_expert_load(
  model_key TEXT NOT NULL, layer INTEGER NOT NULL, expert INTEGER NOT NULL, load REAL,
  PRIMARY KEY(model_key, layer, expert));
CREATE TABLE probe_results (
    model_key TEXT NOT NULL, probe TEXT NOT NULL, probe_version TEXT NOT NULL, data_key TEXT NOT NULL,
    model_name TEXT, summary_json TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (model_key, probe, probe_version, data_key));
INSERT INTO meta VALUES('app', 'beyondscale'), ('schema_version', '2');
"""

# A record as the lab wrote it in schema 1: the twin names beside the one kept, curves stripped for the store.
OLD_RECORD = {
    "schema": 1, "out": "/runs/dense-1", "arch": "dense", "architecture": "LlamaForCausalLM", "params_total": 1000,
    "params_embedding": 200, "params_active": 1000, "tokens": 8192, "steps": 64, "training_tokens": 8192,
    "train_flops": 4.9e10, "training_flops": 4.9e10, "context_length": 32, "val_loss": 3.25, "train_loss": 3.0,
    "wall_s": 12.5, "energy_j": 40.0, "energy_source": "estimate:tdp", "data": {"data_hash": "h", "variant": "raw"},
    "val_tokens_sha256": "abc", "a_field_from_elsewhere": [1, 2],
}


def _v2_store(path):
    conn = sqlite3.connect(path)
    conn.executescript(V2)
    conn.execute("INSERT INTO training_runs VALUES('evalkey', ?)", (json.dumps(OLD_RECORD),))
    conn.execute("INSERT INTO lab_training_runs VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                 ("labkey", "id", "/runs/dense-1", "dense", 1000, 1000, 8192, 4.9e10, 32, 3.25, 3.0, 12.5, 40.0,
                  "estimate:tdp", "h", "raw", "null", None, json.dumps(OLD_RECORD)))
    conn.executemany("INSERT INTO training_curve VALUES('labkey',?,?,?,?,?,?)",
                     [("train", 1, 128, 1e9, 5.0, 1e-3), ("train", 2, 256, 2e9, 4.0, 1e-3), ("val", 2, 256, 2e9, 4.1,
                                                                                                   None)])
    conn.execute("INSERT INTO probe_results VALUES('labkey','logit_lens','1','d','dense-1','{\"n_layers\": 2}',1)")
    conn.commit()
    conn.close()


def _tables(path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


def test_a_version_2_store_opens_without_training_runs_and_keeps_its_lab_rows(tmp_path):
    path = tmp_path / "v2.db"
    _v2_store(path)
    assert "training_runs" in _tables(path)
    with Store(path) as store:
        version = store.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        tables = training_tables(store)
        record = stored_training_record(store, "labkey")
        probes = probe_results(store)
    assert SCHEMA_VERSION == 3 and version == ("3",)
    assert "training_runs" not in _tables(path)
    assert (len(tables.runs), len(tables.curve), len(tables.expert_load)) == (1, 3, 0)
    assert list(probes["summary"]) == [{"n_layers": 2}]
    # The old record, twin names and all, reads into the typed record under one name per field.
    assert (record.tokens, record.train_flops, record.val_loss) == (8192, 4.9e10, 3.25)
    assert [p["loss"] for p in record.loss_curve] == [5.0, 4.0] and [p["step"] for p in record.val_curve] == [2]
    assert record.extra == {"a_field_from_elsewhere": [1, 2]}
    Store(path).close()  # reopening a migrated store changes nothing
    assert "training_runs" not in _tables(path)


def test_a_new_store_has_every_table_and_no_training_runs(tmp_path):
    Store(tmp_path / "s.db").close()
    assert {"lab_training_runs", "training_curve", "lab_expert_load", "probe_results"} <= _tables(tmp_path / "s.db")
    assert "training_runs" not in _tables(tmp_path / "s.db")


def test_the_record_has_one_name_per_field_and_reads_old_names():
    only_old = {k: v for k, v in OLD_RECORD.items() if k not in ("tokens", "train_flops")}
    record = TrainingRecord.from_dict(only_old)
    assert (record.tokens, record.train_flops) == (8192, 4.9e10)
    doc = json.loads(json.dumps(record.to_dict()))
    assert doc["schema"] == 2 and doc["tokens"] == 8192 and doc["train_flops"] == 4.9e10
    assert "training_tokens" not in doc and "training_flops" not in doc
    assert TrainingRecord.from_dict(doc) == record  # the JSON form reads back to the same record
    # It reads as the dict it replaced, without the twins.
    assert record["val_loss"] == 3.25 and record.get("checks") is None and "training_tokens" not in record
    assert {**record}["a_field_from_elsewhere"] == [1, 2] and set(record) == set(doc)
    with pytest.raises(UserError, match="^beyondscale_lab.json: not a training record \\(no val_loss\\)$"):
        TrainingRecord.from_dict({k: v for k, v in OLD_RECORD.items() if k != "val_loss"},
                                 source="beyondscale_lab.json")


def test_stored_facts_read_a_hand_written_record_under_either_name():
    assert with_lab_record({"params_total": 5}, {"training_tokens": 7, "training_flops": 9.0}) == {
        "params_total": 5, "training_tokens": 7, "training_flops": 9.0}
    assert with_lab_record({}, {"tokens": 7, "train_flops": 9.0}) == {"training_tokens": 7, "training_flops": 9.0}
