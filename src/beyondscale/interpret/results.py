"""Probe results in the store: one row per (model_key, probe, probe_version, data_key).

The table and its SQL belong to `beyondscale.store.probes`; this module keys a probe's input by content
and opens the store. A re-run of the same probe on the same model and data replaces its row
(idempotent), so nothing is duplicated.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from beyondscale.keys import content_key
from beyondscale.store import Store
from beyondscale.store.probes import (
    probe_frame as probe_frame,  # re-exported: interpret's callers read it here
)
from beyondscale.store.probes import put_probe_result


def nan_to_none(obj: Any) -> Any:
    """NaN -> None, so a probe's stored and printed JSON is standard."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [nan_to_none(v) for v in obj]
    return obj


def data_key(obj: Any) -> str:
    """Content hash of a probe's input (texts, file bytes, settings)."""
    return content_key(obj, ensure_ascii=False)  # probe keys were written with UTF-8 text


def file_key(path: str | Path, **settings: Any) -> str:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return data_key({"file_sha256": digest, **settings})


def put_probe(store: str | Path, *, model_key: str, probe: str, probe_version: str, data: str,
              model_name: str, summary: dict[str, Any], model_record: dict[str, Any] | None = None) -> None:
    """Store one probe result; `model_record` registers the model (with its size facts) if the store lacks it."""
    with Store(store) as db:
        if model_record is not None and db.model_facts(model_key) is None:
            r = model_record
            db.put_model(model_key, r["name"], None, r["ref"], r["identity"], r["facts"])
        put_probe_result(db, model_key=model_key, probe=probe, probe_version=probe_version, data_key=data,
                         model_name=model_name, summary=summary)


