"""The per-document work done in the worker processes: filters, MinHash signature, quality score.

Everything here is pure (no files written): a batch of (id, text) goes in, one `Outcome` per
document comes out, in order. Each process builds its filters and loads its scorer once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from beyondscale.lab.curate import dedup, rules


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs to build its state (picklable)."""

    table: dict[str, dict[str, Any]]
    dedup: str = "none"
    num_perm: int = 128
    ngram: int = 5
    scorer_path: str | None = None
    scorer_hash: str | None = None  # part of the identity: a new file at the same path is reloaded


@dataclass
class Outcome:
    """One document after the filters; `rule` is None when every filter kept it."""

    id: str
    text: str
    rule: str | None
    reason: str | None
    signature: Any = None
    score: float | None = None


class _State:
    config: WorkerConfig | None = None
    filters: list[tuple[str, Any]] = []
    scorer: Any = None


def init_worker(config: WorkerConfig) -> None:
    """Build this process's filters and scorer (also called in-process when workers == 1)."""
    import logging

    logging.getLogger("datatrove").setLevel(logging.ERROR)
    if _State.config == config:
        return  # same process, same recipe: the filters and scorer are already built
    _State.config = config
    _State.filters = rules.build_filters(config.table)
    if config.scorer_path:
        from beyondscale.lab.curate.scorer import load_scorer

        _State.scorer = load_scorer(config.scorer_path)
    else:
        _State.scorer = None


def init_pool_worker(config: WorkerConfig) -> None:
    """In a pool process: keep spaCy's thinc from importing torch, then build the state.

    thinc imports torch whenever it is installed; the filters never use it, and it would cost
    each worker about 300 MB and two seconds. torch is hidden only while thinc is imported, and
    only in pool processes, never in the caller's.
    """
    import sys

    if "torch" not in sys.modules:
        sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` fails while thinc looks
        try:
            import thinc.compat  # noqa: F401 - records has_torch = False
        finally:
            del sys.modules["torch"]  # scipy and others must see "not imported", not a broken module
    init_worker(config)


def process_batch(batch: list[tuple[str, str]]) -> list[Outcome]:
    """Filters every document, then signs and scores the survivors."""
    config = _State.config
    assert config is not None, "init_worker was not called"
    outcomes = []
    for doc_id, text in batch:
        after, rule, reason = rules.apply_filters(text, doc_id, _State.filters)
        outcomes.append(Outcome(doc_id, after, rule, reason))
    survivors = [o for o in outcomes if o.rule is None]
    if config.dedup == "minhash":
        for outcome in survivors:
            outcome.signature = dedup.signature(outcome.text, config.num_perm, config.ngram)
    if _State.scorer is not None and survivors:
        for outcome, score in zip(survivors, _State.scorer.score([o.text for o in survivors]), strict=True):
            outcome.score = float(score)
    return outcomes
