"""Read CrowS-Pairs rows through an lm-evaluation-harness `crows_pairs*` task file.

The YAML is read as data only: `!function` tags become plain strings and nothing in the task
file is executed. `include:` is followed (relative to the file). The rows come from the task's
dataset: a local csv/json `data_files` entry, or the hub (`dataset_path`, `dataset_name`,
`test_split`). lm-eval's per-bias-type tasks filter with `utils.filter_<name>` (bias_type
prefix), which is mirrored here by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from beyondscale.errors import UserError

FILTERS = {  # lm-eval crows_pairs/utils.py: filter function -> bias_type prefix
    "filter_race_color": "race-color", "filter_socio": "socioeconomic", "filter_gender": "gender",
    "filter_age": "age", "filter_religion": "religion", "filter_disability": "disability",
    "filter_orientation": "sexual-orientation", "filter_nationality": "nationality",
    "filter_appearance": "physical-appearance", "filter_autre": "autre",
}


class _DataLoader(yaml.SafeLoader):
    """SafeLoader that keeps `!function x.y` as the string 'x.y'."""


_DataLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def load_task(path: Path, depth: int = 0) -> dict[str, Any]:
    if depth > 8:
        raise UserError(f"{path}: include chain too deep")
    try:
        spec = yaml.load(path.read_text(encoding="utf-8"), Loader=_DataLoader) or {}
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"{path}: not a readable task YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(spec, dict):
        raise UserError(f"{path}: a task YAML must be a mapping")
    if "include" in spec:
        base = load_task((path.parent / spec.pop("include")).resolve(), depth + 1)
        spec = {**base, **spec}
    return spec


def _local_file(spec: dict[str, Any], folder: Path) -> Path | None:
    files = (spec.get("dataset_kwargs") or {}).get("data_files")
    split = spec.get("test_split", "test")
    if isinstance(files, dict):
        files = files.get(split)
    if isinstance(files, list):
        files = files[0] if len(files) == 1 else None
    return (folder / files).resolve() if isinstance(files, str) else None


def task_rows(path: str | Path, required: tuple[str, ...]) -> tuple[list[tuple[int, dict[str, Any]]], str]:
    """(row number, row) pairs of the task's test split (with the `required` fields), already filtered; and a
    label for messages."""
    from beyondscale.bias.scoring import hub_rows, read_rows

    path = Path(path)
    spec = load_task(path)
    if (spec.get("doc_to_choice"), spec.get("process_results")) != ("utils.doc_to_choice", "utils.process_results"):
        raise UserError(f"{path}: not an lm-eval crows_pairs task (doc_to_choice / process_results differ)")
    local = _local_file(spec, path.parent) if spec.get("dataset_path") in ("csv", "json") else None
    if local is not None:
        rows = list(read_rows(local, required))
        where = str(local)
    else:
        name = f"{spec.get('dataset_path')}:{spec.get('dataset_name') or ''}".rstrip(":")
        rows = list(enumerate(hub_rows(name), 1))
        where = f"hub:{name}"
    process = str(spec.get("process_docs", ""))
    if process:
        prefix = FILTERS.get(process.rsplit(".", 1)[-1])
        if prefix is None:
            raise UserError(f"{path}: process_docs {process!r} is not one of lm-eval's crows_pairs filters")
        rows = [(n, r) for n, r in rows if str(r.get("bias_type", "")).startswith(prefix)]
    return rows, where
