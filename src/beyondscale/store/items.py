"""The per-item rows of the store's current scores: one per (model, task version, document).

The score of a document lives in `item_scores` (prediction, target, correct, every per-item number);
its content key in `items` (the request's `Item.key()`, one request per document). A task name may have
several keys (versions); `current` marks the newest scored one, as analysis orders them (store `created`).
Values stay as stored (JSON text); `results_export` shapes them into a file.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from beyondscale.store.db import Store

#: The columns `item_rows` returns, in order.
ITEM_ROW_COLUMNS = (
    "model_key", "model", "model_identity", "task_key", "task", "output_type", "task_version", "task_spec_hash",
    "task_current", "doc_id", "doc_key", "pred", "gold", "correct", "values",
)

_SQL = """
WITH scored AS (SELECT DISTINCT task_key FROM metrics),
newest AS (
  SELECT t.name, MAX(t.created) AS created FROM tasks t JOIN scored USING(task_key) GROUP BY t.name),
docs AS (
  SELECT model_key, task_key, doc_id, MIN(item_key) AS doc_key FROM items GROUP BY model_key, task_key, doc_id)
SELECT s.model_key, m.name AS model, m.identity AS model_identity, s.task_key, t.name AS task, t.output_type,
  CAST(json_extract(t.spec, '$.metadata.version') AS TEXT) AS task_version, t.spec_hash AS task_spec_hash,
  t.created = n.created AS task_current, s.doc_id, d.doc_key, s.pred, s.gold, s.correct, s."values"
FROM item_scores s
JOIN models m ON m.model_key = s.model_key
JOIN tasks t ON t.task_key = s.task_key
JOIN newest n ON n.name = t.name
LEFT JOIN docs d ON d.model_key = s.model_key AND d.task_key = s.task_key AND d.doc_id = s.doc_id
WHERE {where}
ORDER BY t.name, t.created, m.name, s.model_key, s.doc_id
"""


def _either(columns: tuple[str, str], wanted: Sequence[str] | None) -> tuple[str, list[str]]:
    """A WHERE clause matching a name or a key in `wanted` (no filter when None or empty)."""
    if not wanted:
        return "1", []
    marks = ",".join("?" * len(wanted))
    return f"({columns[0]} IN ({marks}) OR {columns[1]} IN ({marks}))", [*wanted, *wanted]


def item_rows(store: Store, models: Sequence[str] | None = None, tasks: Sequence[str] | None = None) -> pd.DataFrame:
    """Every stored per-item score, filtered by model name/key and task name/key (as `load_frames` filters)."""
    model_sql, model_args = _either(("m.name", "s.model_key"), models)
    task_sql, task_args = _either(("t.name", "s.task_key"), tasks)
    frame = store.query(_SQL.format(where=f"{model_sql} AND {task_sql}"), [*model_args, *task_args])
    frame["task_current"] = frame["task_current"].astype(bool)
    return frame[list(ITEM_ROW_COLUMNS)]
