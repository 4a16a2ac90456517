"""The run summary, `DIR/summary.json`: what a curated data set is and how it was made.

The training lab reads this file to carry a model's data recipe. Fields:

- `format`: "beyondscale-curate/1".
- `kept`, `dropped`, `total`: document counts; `kept_fraction` = kept / total.
- `reasons`: rule -> documents it removed, for every rule in the recipe plus `dedup` and
  `scorer` when they ran (rules named as in `--rules`; the files `removed/RULE.jsonl`).
- `reason_details`: rule -> {datatrove's drop reason (e.g. `gopher_short_doc`) -> count}.
- `out`: the output folder (absolute); `kept_files`: the shards under `kept/`, in order.
- `data_hash`: sha256 over the bytes of the kept shards, in order (the data's identity).
- `input_hash`: sha256 over every input document's id and text; `input_documents`, `input_bytes`.
- `recipe`: the full recipe (rules in order with every threshold, dedup settings, scorer file hash
  and keep rule, datatrove and spaCy versions); `recipe_hash`: sha256 of its canonical JSON.
- `score_histogram`: {"edges": 11 bin edges over [0, 1], "counts": documents per bin} of the
  documents the scorer saw (those left after filters and dedup), or null; `score_threshold_used`.
- `seconds`, `docs_per_s`, `mb_per_s`, `workers`: measured throughput of the run.
- `reused`: true when this summary was returned from an earlier identical run (same input and
  recipe hashes), in which case nothing was recomputed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "beyondscale-curate/1"
SUMMARY_FILE = "summary.json"


def canonical_hash(obj: Any) -> str:
    """sha256 of the canonical JSON of `obj` (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def histogram(scores: np.ndarray, bins: int = 10) -> dict[str, list[float]] | None:
    """Counts of scores in equal bins over [0, 1]; None when nothing was scored."""
    if scores.size == 0:
        return None
    counts, edges = np.histogram(scores, bins=bins, range=(0.0, 1.0))
    return {"edges": [round(float(e), 6) for e in edges], "counts": [int(c) for c in counts]}


def read_summary(folder: Path) -> dict[str, Any] | None:
    """The summary stored in `folder`, or None when there is none (or it is not ours)."""
    path = folder / SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None


def reusable(folder: Path, input_hash: str, recipe_hash: str) -> dict[str, Any] | None:
    """A stored summary of this exact input and recipe whose kept shards are all present."""
    doc = read_summary(folder)
    if not doc or doc.get("input_hash") != input_hash or doc.get("recipe_hash") != recipe_hash:
        return None
    if not all((folder / "kept" / name).is_file() for name in doc.get("kept_files", [])):
        return None
    return doc


def write_summary(folder: Path, doc: dict[str, Any]) -> None:
    """Write `summary.json` (after everything else, so its presence means a finished run)."""
    (folder / SUMMARY_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
