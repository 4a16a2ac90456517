"""`curate`: stream the inputs through filters, dedup and scorer into `DIR/kept` and `DIR/removed`.

Order of work: one validating pass hashes the input (a bad line stops everything before any
output is touched); an identical earlier run (same input and recipe hashes) is reused; otherwise
documents flow in bounded batches through worker processes (filters, MinHash signatures, scores)
and back, in input order, to the main process (dedup index, writers). Everything is written to a
staging folder next to `DIR` and moved into place only when finished, so a failed run leaves the
previous output as it was.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beyondscale.errors import UserError
from beyondscale.lab.curate import reader, rules
from beyondscale.lab.curate.sink import Sink
from beyondscale.lab.curate.summary import FORMAT, canonical_hash, reusable, write_summary
from beyondscale.lab.curate.worker import WorkerConfig, init_pool_worker, init_worker, process_batch

RECIPE_VERSION = 1
Progress = Callable[[int, int, int], None]  # (bytes read, documents read, documents kept so far)


@dataclass
class CurateSettings:
    """Every knob of a curate run; `recipe()` is the part that changes the output."""

    rules: list[str] = field(default_factory=lambda: list(rules.DEFAULT_RULES))
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    dedup: str = "minhash"
    minhash_threshold: float = 0.8
    num_perm: int = 128
    ngram: int = 5
    scorer: str | None = None
    score_threshold: float | None = None
    keep_fraction: float | None = None
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    batch_size: int = 64
    shard_bytes: int = 128 * 2**20
    hub: reader.HubOptions = field(default_factory=reader.HubOptions)
    overwrite: bool = False


def _in_range(flag: str, value: float | None, low: float, high: float, low_open: bool = False) -> None:
    if value is None:
        return
    if not (low < value <= high if low_open else low <= value <= high) or math.isnan(value):
        bracket = "(" if low_open else "["
        raise UserError(f"{flag} {value}: out of range, expected a value in {bracket}{low}, {high}]")


def validate(settings: CurateSettings) -> None:
    """Refuse impossible settings with one line naming the flag."""
    rules.check_rules(settings.rules)
    if settings.dedup not in ("none", "exact", "minhash"):
        raise UserError(f"--dedup {settings.dedup}: expected none, exact or minhash")
    _in_range("--minhash-threshold", settings.minhash_threshold, 0.0, 1.0, low_open=True)
    _in_range("--score-threshold", settings.score_threshold, 0.0, 1.0)
    _in_range("--keep-fraction", settings.keep_fraction, 0.0, 1.0, low_open=True)
    if settings.num_perm < 16 or settings.ngram < 1:
        raise UserError("--num-perm must be at least 16 and --ngram at least 1")
    if settings.workers < 1 or settings.batch_size < 1:
        raise UserError("--workers and --batch-size must be at least 1")
    if settings.score_threshold is not None and settings.keep_fraction is not None:
        raise UserError("--score-threshold and --keep-fraction: give one, not both")
    if settings.scorer is None and (settings.score_threshold is not None or settings.keep_fraction is not None):
        raise UserError("--score-threshold / --keep-fraction need --scorer PATH")


def recipe(settings: CurateSettings, scorer_hash: str | None) -> dict[str, Any]:
    """The recipe: everything that decides which documents are kept (hashed into `recipe_hash`)."""
    import datatrove
    import spacy

    threshold = settings.score_threshold
    if settings.scorer and threshold is None and settings.keep_fraction is None:
        threshold = 0.5  # default keep rule: P(high) >= 0.5
    dedup = {"mode": settings.dedup}
    if settings.dedup == "minhash":
        dedup.update(threshold=settings.minhash_threshold, num_perm=settings.num_perm, ngram=settings.ngram)
    return {
        "version": RECIPE_VERSION,
        "rules": list(settings.rules),
        "thresholds": rules.resolved(settings.rules, settings.overrides),
        "dedup": dedup,
        "scorer": None if not settings.scorer else {
            "sha256": scorer_hash, "score_threshold": threshold, "keep_fraction": settings.keep_fraction},
        "text_field": settings.hub.text_field,
        "datatrove": getattr(datatrove, "__version__", "unknown"),
        "spacy": spacy.__version__,  # its English tokenizer splits the words every rule counts
    }


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"--out {out}: holds another run or other files; pass --overwrite to replace it")


def _batches(docs: Iterator[reader.Doc], size: int, progress: Progress | None,
             sink: Sink) -> Iterator[list[tuple[str, str]]]:
    batch: list[tuple[str, str]] = []
    nbytes = count = 0
    for doc in docs:
        batch.append((doc.id, doc.text))
        nbytes += doc.nbytes
        count += 1
        if len(batch) == size:
            yield batch
            batch = []
            if progress:
                progress(nbytes, count, sink.kept_so_far)
    if batch:
        yield batch
    if progress:
        progress(nbytes, count, sink.kept_so_far)


def _stream(inputs: list[str], settings: CurateSettings, config: WorkerConfig, sink: Sink,
            progress: Progress | None) -> None:
    """Feed batches to the workers with at most a few in flight (bounded memory), in order."""
    batches = _batches(reader.iter_documents(inputs, settings.hub), settings.batch_size, progress, sink)
    if settings.workers == 1:
        init_worker(config)
        for batch in batches:
            sink.take(process_batch(batch))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("forkserver")
    # Workers fork from a server that imports only this module, not the caller's __main__ (the CLI
    # would bring torch and the whole app into every worker).
    context.set_forkserver_preload(["beyondscale.lab.curate.worker"])
    with ProcessPoolExecutor(settings.workers, mp_context=context, initializer=init_pool_worker,
                             initargs=(config,)) as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.submit(process_batch, batch))
            while len(pending) >= 4 * settings.workers:
                sink.take(pending.popleft().result())
        while pending:
            sink.take(pending.popleft().result())


def _publish(staging: Path, out: Path) -> None:
    """Swap the finished staging folder into place; the old output goes only after that."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    staging.rename(out)
    if old.exists():
        shutil.rmtree(old)


def run_curate(inputs: list[str], out: str | Path, settings: CurateSettings,
               progress: Progress | None = None) -> dict[str, Any]:
    """Curate `inputs` into `out`; returns the summary (also stored as `out/summary.json`)."""
    validate(settings)
    if not inputs:
        raise UserError("curate: give at least one INPUT (file, folder, .jsonl or hub:NAME)")
    from beyondscale.lab.curate.scorer import file_hash, load_scorer

    scorer_hash = None
    if settings.scorer:
        load_scorer(settings.scorer)  # refuse a bad file before reading any input
        scorer_hash = file_hash(settings.scorer)
    the_recipe = recipe(settings, scorer_hash)
    recipe_hash = canonical_hash(the_recipe)
    out = Path(out).resolve()
    input_hash, n_docs, n_bytes = reader.fingerprint(inputs, settings.hub)
    previous = reusable(out, input_hash, recipe_hash) if out.is_dir() else None
    if previous is not None:
        return {**previous, "reused": True}
    _check_out(out, settings.overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    start = time.perf_counter()
    try:
        sink = Sink(staging, the_recipe, settings.shard_bytes)
        config = WorkerConfig(the_recipe["thresholds"], settings.dedup, settings.num_perm, settings.ngram,
                              settings.scorer, scorer_hash)
        _stream(inputs, settings, config, sink, progress)
        body = sink.finish()
        seconds = time.perf_counter() - start
        doc = {"format": FORMAT, **body, "out": str(out), "input_hash": input_hash, "input_documents": n_docs,
               "input_bytes": n_bytes, "inputs": list(inputs), "recipe": the_recipe, "recipe_hash": recipe_hash,
               "seconds": round(seconds, 3), "docs_per_s": round(n_docs / seconds, 1),
               "mb_per_s": round(n_bytes / 1e6 / seconds, 3), "workers": settings.workers, "reused": False}
        write_summary(staging, doc)
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return doc
