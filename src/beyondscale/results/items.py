"""Per-item export across runs: one row per (model, task version, document) of the store's current scores.

For pandas, polars and DuckDB users who analyse per-item results themselves. No run id is needed: a score
belongs to (model_key, task_key, document), whichever run computed it. Formats: parquet (pyarrow, the schema
below, with each column's description in the file's field metadata), csv and jsonl (same columns).
The file is written to a temporary name beside `out` and renamed, so a failure leaves nothing half-written.

Schema (items schema version 1; docs/per_item_export.md shows queries):

    model           string  display name of the model (a label, not its identity)
    model_key       string  content key: weights, config, tokenizer, dtype, quantisation
    model_identity  string  content fingerprint of the weights/config/tokenizer (same across dtypes)
    task            string  task name (a label)
    task_key        string  content key of this task version: spec, data, scoring settings
    task_version    string  version the task file declares (lm-eval `metadata.version`); null if none
    task_spec_hash  string  hash of the resolved spec and its data (without scoring settings)
    task_current    bool    this is the newest scored version of the task name (what the leaderboard shows)
    output_type     string  multiple_choice | loglikelihood | loglikelihood_rolling | generate_until
    doc_id          int64   position of the document in the task's evaluation split
    doc_key         string  content hash of the document's request (equal for every model of a task version)
    prediction      string  the model's answer: choice index (multiple_choice), greedy or not (loglikelihood),
                            generated text (generate_until); JSON text unless a string; null when none
    target          string  the reference, written as `prediction` is; null when none
    correct         bool    prediction == target, where the task has a right answer; else null
    <metric>        double  one column per per-item metric (acc, acc_norm, brier, logprob, exact_match, ...),
                            sorted by name; null where that task has no such metric
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from beyondscale.errors import UserError

FORMATS = ("parquet", "csv", "jsonl")
ITEMS_SCHEMA_VERSION = "1"

#: (column, arrow type name, description): the fixed columns, in file order.
FIXED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("model", "string", "display name of the model (a label, not its identity)"),
    ("model_key", "string", "content key: weights, config, tokenizer, dtype, quantisation"),
    ("model_identity", "string", "content fingerprint of the weights/config/tokenizer (same across dtypes)"),
    ("task", "string", "task name (a label)"),
    ("task_key", "string", "content key of this task version: spec, data, scoring settings"),
    ("task_version", "string", "version the task file declares (lm-eval metadata.version); null if none"),
    ("task_spec_hash", "string", "hash of the resolved spec and its data (without scoring settings)"),
    ("task_current", "bool", "the newest scored version of the task name (what the leaderboard shows)"),
    ("output_type", "string", "multiple_choice | loglikelihood | loglikelihood_rolling | generate_until"),
    ("doc_id", "int64", "position of the document in the task's evaluation split"),
    ("doc_key", "string", "content hash of the document's request (equal for every model of a task version)"),
    ("prediction", "string", "the model's answer; JSON text unless a string; null when none"),
    ("target", "string", "the reference, written as prediction is; null when none"),
    ("correct", "bool", "prediction matches target, where the task has a right answer; else null"),
)
FIXED_NAMES = tuple(name for name, _, _ in FIXED_COLUMNS)
METRIC_PREFIX = "metric_"  # only for a per-item metric whose name is a fixed column's


def export_items(store: Any, out: str | Path, fmt: str = "parquet", models: Sequence[str] | None = None,
                 tasks: Sequence[str] | None = None) -> Path:
    """Write every per-item score of the store's current results (filtered by model/task name or key) to `out`."""
    from beyondscale.store import Store
    from beyondscale.store.items import item_rows

    out = _check_out(Path(out), fmt)
    db = store if isinstance(store, Store) else Store(store, create=False)
    try:
        rows = item_rows(db, models, tasks)
    finally:
        if db is not store:
            db.close()
    if rows.empty:
        raise UserError(f"--store {db.path}: no per-item scores match (models={list(models or []) or 'all'}, "
                        f"tasks={list(tasks or []) or 'all'})")
    table = items_frame(rows)
    _write_atomically(table, out, fmt)
    return out


def _check_out(out: Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give a file name, e.g. {out / ('items.' + fmt)}")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")
    return out


def _as_text(stored: str | None) -> str | None:
    """A stored JSON value as text: strings as themselves, numbers/lists/booleans as JSON, null as None."""
    if stored is None:
        return None
    value = json.loads(stored)
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def items_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The export's columns from `store.items.item_rows`: fixed columns, then one float column per metric."""
    values = [json.loads(v) for v in rows["values"]]
    names = sorted({k for v in values for k in v})
    fixed = pd.DataFrame({
        **{c: rows[c] for c in FIXED_NAMES if c in rows},
        "prediction": [_as_text(p) for p in rows["pred"]],
        "target": [_as_text(g) for g in rows["gold"]],
        "correct": pd.array([None if pd.isna(c) else bool(c) for c in rows["correct"]], dtype="boolean"),
    })[list(FIXED_NAMES)]
    metrics = pd.DataFrame(
        {(METRIC_PREFIX + n if n in FIXED_NAMES else n): pd.to_numeric(pd.Series([v.get(n) for v in values]),
                                                                       errors="coerce").astype(float)
         for n in names},
        index=fixed.index,
    )
    frame = pd.concat([fixed, metrics], axis=1)
    frame["doc_id"] = frame["doc_id"].astype("int64")
    frame["task_current"] = frame["task_current"].astype(bool)
    return frame


def arrow_schema(frame: pd.DataFrame) -> Any:
    """The parquet schema: fixed columns typed as documented, metrics as float64, descriptions as metadata."""
    import pyarrow as pa

    kinds = {"string": pa.string(), "bool": pa.bool_(), "int64": pa.int64()}
    fields = [pa.field(name, kinds[kind], metadata={"description": doc}) for name, kind, doc in FIXED_COLUMNS]
    fields += [pa.field(c, pa.float64(), metadata={"description": "per-item metric"})
               for c in frame.columns if c not in FIXED_NAMES]
    meta = {"beyondscale.items_schema_version": ITEMS_SCHEMA_VERSION,
            "beyondscale.doc": "one row per (model, task version, document); see beyondscale.results.items"}
    return pa.schema(fields, metadata=meta)


def _write_atomically(frame: pd.DataFrame, out: Path, fmt: str) -> None:
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pandas(frame, schema=arrow_schema(frame), preserve_index=False), tmp)
        elif fmt == "csv":
            frame.to_csv(tmp, index=False)
        else:
            with tmp.open("w", encoding="utf-8") as fh:
                for record in frame.astype(object).where(frame.notna(), None).to_dict(orient="records"):
                    fh.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
