"""Shared pieces of the bias probes: log-likelihoods through the engine, bootstrap intervals, file rows."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from beyondscale.errors import UserError

N_RESAMPLES = 2000


def loglikelihoods(model: Any, tokenizer: Any, items: Sequence[Any]) -> list[list[float]]:
    """Each item's per-continuation log-likelihoods, scored as lm-eval's HF backend scores them."""
    from beyondscale.engine import Engine

    engine = Engine(model, tokenizer, batch_size="auto")
    by_doc: dict[int, list[float]] = {}
    for batch in engine.plan(list(items)):
        for item, result in zip(batch, engine.run_batch(batch), strict=True):
            by_doc[item.doc_id] = result.logprobs
    return [by_doc[item.doc_id] for item in items]


def bootstrap_ci(values: Sequence[float], stat: Callable[[np.ndarray], float] = np.mean, seed: int = 1234,
                 level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of `stat` over items (None for fewer than two items)."""
    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(data), size=(N_RESAMPLES, len(data)))
    stats = data[idx].mean(1) if stat is np.mean else np.array([stat(data[row]) for row in idx])
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def read_rows(path: str | Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) from a CSV or JSONL file; one-line UserError naming the file and row.

    Row numbers count data rows from 1 (the CSV header is not a row).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--data {path}: no such file")
    if path.suffix.lower() in (".jsonl", ".json"):
        yield from _jsonl_rows(path, required)
        return
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: header lacks column(s) {', '.join(missing)}")
        try:
            for number, row in enumerate(reader, 1):
                if None in row or any(v is None for v in row.values()):
                    raise UserError(f"{path}: row {number}: wrong number of fields")
                yield number, row
        except csv.Error as err:
            raise UserError(f"{path}: row {reader.line_num}: malformed CSV ({err})") from None


def _jsonl_rows(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as err:
                raise UserError(f"{path}: row {number}: not valid JSON ({err.args[0][:80]})") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}: row {number}: expected a JSON object")
            missing = [c for c in required if c not in row]
            if missing:
                raise UserError(f"{path}: row {number}: missing field(s) {', '.join(missing)}")
            yield number, row


def text_field(path: str | Path, number: int, row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{path}: row {number}: field {name!r} is empty or not text")
    return value


def hub_rows(name: str) -> list[dict[str, Any]]:
    """The test split of a hub data set ("repo" or "repo:config"); offline or missing is one line."""
    import datasets

    repo, _, config = name.partition(":")
    try:
        ds = datasets.load_dataset(repo, config or None, split="test")
    except Exception as err:  # noqa: BLE001 - offline, missing repo, ...
        raise UserError(f"--data hub:{name}: cannot load ({str(err).splitlines()[0][:160]})") from None
    return [dict(r) for r in ds]
