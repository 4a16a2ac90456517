"""Schema migrations, run one after another inside the transaction that opens the store.

Version 1 keyed scores by run: every re-run added a copy. Version 2 keeps one score set per
(model_key, task_key): the newest run's (by the run's start time, as version 1 read them).
Version 3 drops `training_runs` (written by `eval` for a lab folder and never read; the same record is in
the folder's `beyondscale_lab.json`, and a run trained with a store in `lab_training_runs`) and makes the lab
and probe tables part of the schema.
"""

from __future__ import annotations

import sqlite3

from beyondscale.store.schema import statements

_SCORED_BY_RUN = ("item_scores", "metrics", "efficiency")

# For each (model_key, task_key) of version 1, the run whose scores were current: the newest scored run.
_NEWEST = """
CREATE TEMP TABLE newest AS
SELECT m.model_key, m.task_key, m.run_id, r.created FROM (SELECT DISTINCT run_id, model_key, task_key FROM v1_metrics) m
JOIN runs r USING(run_id)
WHERE r.created = (SELECT MAX(r2.created) FROM runs r2 JOIN v1_metrics m2 USING(run_id)
                   WHERE m2.model_key = m.model_key AND m2.task_key = m.task_key)
"""


def migrate_v1(conn: sqlite3.Connection) -> None:
    """Version 1 -> 2: the newest run's scores per (model, task); run_pairs becomes run_units."""
    for table in (*_SCORED_BY_RUN, "run_pairs"):
        conn.execute(f"ALTER TABLE {table} RENAME TO v1_{table}")
    for statement in statements():
        conn.execute(statement)
    conn.execute(_NEWEST)
    conn.execute(
        'INSERT OR IGNORE INTO item_scores SELECT s.model_key, s.task_key, s.doc_id, s.pred, s.gold, s.correct, s."values" '
        "FROM v1_item_scores s JOIN newest n USING(run_id, model_key, task_key)"
    )
    conn.execute(
        "INSERT OR IGNORE INTO metrics SELECT s.model_key, s.task_key, s.metric, s.value, s.stderr, s.n_items "
        "FROM v1_metrics s JOIN newest n USING(run_id, model_key, task_key)"
    )
    conn.execute(
        "INSERT OR IGNORE INTO efficiency SELECT s.model_key, s.task_key, s.figures, n.created "
        "FROM v1_efficiency s JOIN newest n USING(run_id, model_key, task_key)"
    )
    conn.execute(
        "INSERT INTO run_units SELECT run_id, model_key, task_key, status, build, NULL FROM v1_run_pairs"
    )
    for table in (*_SCORED_BY_RUN, "run_pairs"):
        conn.execute(f"DROP TABLE v1_{table}")
    conn.execute("DROP TABLE temp.newest")


def migrate_v2(conn: sqlite3.Connection) -> None:
    """Version 2 -> 3: the unread `training_runs` table goes (the lab and probe tables are created after)."""
    conn.execute("DROP TABLE IF EXISTS training_runs")
