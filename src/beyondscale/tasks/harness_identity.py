"""Content keys of lm-evaluation-harness tasks and documents.

An item is keyed by its document's content: `doc_key` is exactly the `doc_hash` lm-eval writes into
its `samples_*.jsonl` (sha256 of the document as JSON, indent 2), so an imported lm-eval run and a run
made here join on the same keys. A task is keyed by lm-eval's resolved config (`dump_config()`, with
the source of every function it names), the fingerprint of the documents actually loaded (evaluation
and few-shot), the few-shot seed and lm-eval's version: a changed prompt, function, data file or
library version is a new task, never mixed silently with the old one. Where the config was read from
(`metadata.config_source`) and where its data files lie (`dataset_kwargs.data_files`) are left out:
the same content found at another path is the same task.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

HASH_VERSION = "1"


@dataclass(frozen=True)
class TaskIdentity:
    """What a task's results are keyed by; `key` covers every other field."""

    name: str
    key: str
    config_key: str
    docs_fingerprint: str
    n_docs: int
    n_fewshot_docs: int
    task_version: Any
    lm_eval_version: str
    fewshot_seed: int | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def doc_key(doc: Any) -> str:
    """lm-eval's `doc_hash` of one document (lm_eval.evaluator.evaluate, 0.4.13)."""
    from lm_eval.utils import handle_non_serializable, hash_string

    return hash_string(json.dumps(doc, indent=2, default=handle_non_serializable, ensure_ascii=False))


def _fingerprint(docs: Iterable[Any] | None) -> tuple[str, int]:
    digest, n = hashlib.sha256(), 0
    for doc in docs or ():
        digest.update(doc_key(doc).encode())
        n += 1
    return digest.hexdigest(), n


def _stable(value: Any) -> Any:
    """A JSON-able form of a dumped config: functions by their source, no memory addresses."""
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_stable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if callable(value):
        try:
            return inspect.getsource(value)
        except (TypeError, OSError):
            return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__name__)}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def config_for_key(task: Any) -> dict[str, Any]:
    """lm-eval's dumped config of `task`, without where it was read from."""
    cfg = _stable(task.dump_config())
    meta = cfg.get("metadata")
    if isinstance(meta, dict):
        meta.pop("config_source", None)
    kwargs = cfg.get("dataset_kwargs")
    if isinstance(kwargs, dict):
        kwargs.pop("data_files", None)
    return cfg


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def task_identity(task: Any, fewshot_seed: int | None = None) -> TaskIdentity:
    """The content identity of a loaded lm-eval task (its overrides, e.g. num_fewshot, applied)."""
    config = config_for_key(task)
    docs_fp, n_docs = _fingerprint(task.eval_docs)
    fewshot = task.fewshot_docs() if hasattr(task, "fewshot_docs") else None
    shots_fp, n_shots = _fingerprint(fewshot)
    config_key = _sha(config)
    lm_eval_version = version("lm_eval")
    key = _sha({"hash_version": HASH_VERSION, "config": config_key, "docs": docs_fp, "fewshot_docs": shots_fp,
                "fewshot_seed": fewshot_seed, "lm_eval": lm_eval_version})
    meta = getattr(task.config, "metadata", None) or {}
    return TaskIdentity(task.task_name if hasattr(task, "task_name") else str(task), key, config_key,
                        docs_fp, n_docs, n_shots, meta.get("version") if isinstance(meta, dict) else None,
                        lm_eval_version, fewshot_seed)
