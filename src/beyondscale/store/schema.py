"""The store's tables (schema version 3), every one of them. Documented in the README's store table.

Identity is content: a score belongs to (model_key, task_key[, doc_id]), never to a run. A run only
records which units it touched (`run_units`). `claims` lets several `eval` processes share one store:
a (model, task) unit is computed by the process that holds its claim. The lab's training records
(`lab_training_runs`, `training_curve`, `lab_expert_load`: `store.training`) and the probes' results
(`probe_results`: `store.probes`) live here too; stores of version 2 created them on first use, with the
same definitions. `lm_requests` (`store.requests`) keeps the engine's answers to lm-eval's requests per model;
a version-3 store made before it gains it when opened (CREATE IF NOT EXISTS, no data to move).
"""

from __future__ import annotations

SCHEMA_VERSION = 3
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
CREATE TABLE IF NOT EXISTS run_units(
  run_id TEXT NOT NULL, model_key TEXT NOT NULL, task_key TEXT NOT NULL, status TEXT NOT NULL, build TEXT,
  items_computed INTEGER, PRIMARY KEY(run_id, model_key, task_key));
CREATE TABLE IF NOT EXISTS claims(
  model_key TEXT NOT NULL, task_key TEXT NOT NULL, owner TEXT NOT NULL, heartbeat REAL NOT NULL,
  PRIMARY KEY(model_key, task_key));
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
  model_key TEXT NOT NULL, task_key TEXT NOT NULL, doc_id INTEGER NOT NULL,
  pred TEXT, gold TEXT, correct REAL, "values" TEXT NOT NULL, PRIMARY KEY(model_key, task_key, doc_id));
CREATE TABLE IF NOT EXISTS metrics(
  model_key TEXT NOT NULL, task_key TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
  stderr REAL, n_items INTEGER NOT NULL, PRIMARY KEY(model_key, task_key, metric));
CREATE TABLE IF NOT EXISTS efficiency(
  model_key TEXT NOT NULL, task_key TEXT NOT NULL, figures TEXT NOT NULL, scored REAL NOT NULL,
  PRIMARY KEY(model_key, task_key));
CREATE TABLE IF NOT EXISTS benchmarks(
  run_id TEXT NOT NULL, model_key TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, new_tokens INTEGER NOT NULL,
  figures TEXT NOT NULL, environment_key TEXT, PRIMARY KEY(run_id, model_key, prompt_tokens, new_tokens));
CREATE TABLE IF NOT EXISTS lab_training_runs(
  model_key TEXT PRIMARY KEY, identity TEXT NOT NULL, out TEXT, arch TEXT, params_total INTEGER,
  params_active INTEGER, tokens INTEGER, train_flops REAL, context_length INTEGER, val_loss REAL,
  train_loss REAL, wall_s REAL, energy_j REAL, energy_source TEXT, data_hash TEXT, data_variant TEXT,
  recipe TEXT, teacher TEXT, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS training_curve(
  model_key TEXT NOT NULL, kind TEXT NOT NULL, step INTEGER NOT NULL, tokens INTEGER, flops REAL,
  loss REAL, lr REAL, PRIMARY KEY(model_key, kind, step));
CREATE TABLE IF NOT EXISTS lab_expert_load(
  model_key TEXT NOT NULL, layer INTEGER NOT NULL, expert INTEGER NOT NULL, load REAL,
  PRIMARY KEY(model_key, layer, expert));
CREATE TABLE IF NOT EXISTS probe_results (
    model_key TEXT NOT NULL, probe TEXT NOT NULL, probe_version TEXT NOT NULL, data_key TEXT NOT NULL,
    model_name TEXT, summary_json TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (model_key, probe, probe_version, data_key));
CREATE TABLE IF NOT EXISTS lm_requests(
  model_key TEXT NOT NULL, request_key TEXT NOT NULL, answer TEXT NOT NULL, run_id TEXT, created REAL NOT NULL,
  PRIMARY KEY(model_key, request_key));
"""


def statements(schema: str = SCHEMA) -> list[str]:
    return [s for s in schema.split(";") if s.strip()]
