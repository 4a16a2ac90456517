"""CrowS-Pairs rows through an lm-evaluation-harness `crows_pairs*` task file, as lm-eval loads them.

lm-eval builds the task (its `include:`s, its data set, local `data_files` or the hub) and applies the task's
own `process_docs` (the per-bias-type filters of lm-eval's `crows_pairs/utils.py` are lm-eval's installed code;
a `!function` of the user's own needs `--allow-task-code`); the documents it would evaluate are the rows.
A task whose choices and scoring are not lm-eval's crows_pairs ones is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from beyondscale.errors import UserError

CROWS_FUNCTIONS = ("doc_to_choice", "process_results")  # what makes a task file a crows_pairs one


def _is_crows(task: Any) -> bool:
    """doc_to_choice and process_results are the functions of lm-eval's crows_pairs/utils.py."""
    for name in CROWS_FUNCTIONS:
        fn = getattr(task.config, name, None)
        if not callable(fn) or getattr(fn, "__name__", "") != name \
                or not str(getattr(fn, "__module__", "")).endswith("utils"):
            return False
    return True


def _pair_id(row: dict[str, Any], number: int) -> Any:
    """The authors' CSV keeps the pair id in an unnamed first column (`Unnamed: 0` once read by `datasets`)."""
    for column in ("", "Unnamed: 0", "id"):
        if row.get(column) not in (None, ""):
            return row[column]
    return number


def task_rows(path: str | Path, required: tuple[str, ...]) -> tuple[list[tuple[int, dict[str, Any]]], str]:
    """(row number, row) pairs of the documents lm-eval evaluates for the task (its filter applied), each with
    its pair id under "" and the `required` fields checked; and a label for messages."""
    from beyondscale.tasks.harness import load_tasks, task_manager

    path = Path(path)
    loaded = load_tasks([str(path)], manager=task_manager(include_defaults=False))
    if len(loaded.tasks) != 1:
        raise UserError(f"{path}: expected one lm-eval crows_pairs task, found {len(loaded.tasks)}")
    (task,) = loaded.tasks.values()
    if not _is_crows(task):
        raise UserError(f"{path}: not an lm-eval crows_pairs task (doc_to_choice / process_results differ)")
    rows = []
    for number, doc in enumerate(task.eval_docs, 1):
        row = dict(doc)
        missing = [f for f in required if f not in row]
        if missing:
            raise UserError(f"{path}: document {number} lacks {', '.join(missing)}")
        rows.append((number, {**row, "": _pair_id(row, number)}))
    config = task.config
    where = f"{config.dataset_path}:{config.dataset_name or ''}".rstrip(":")
    return rows, f"{path} ({where})"
