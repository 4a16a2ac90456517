"""Build the three quickstart tasks (JSONL data + lm-eval-style YAML) into a folder, offline.

See `beyondscale.quickstart` for what each task measures. Everything here is deterministic:
documents come in a fixed order from `corpus.load_corpus()`, every random choice is drawn from a
`random.Random(seed)` used only through `.random()` (whose stream Python guarantees across
versions) or from a seeded hash, files are serialised with sorted keys, and a file whose bytes
would not change is not rewritten (so its mtime, the task's spec hash and the store's resume keys
all stay the same).
"""

from __future__ import annotations

import json
import os
import random
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from beyondscale.corpora.stdlib_prose import (
    Corpus,
    Document,
    assign_group,
    is_prose_sentence,
    load_corpus,
    split_sentences,
    stable_unit,
)
from beyondscale.errors import UserError
from beyondscale.quickstart.templates import TASK_NAMES, TASK_TEMPLATES

__all__ = [
    "DEFAULT_SIZES",
    "POOLS",
    "TASK_VERSION",
    "build_quickstart_tasks",
    "bpb_docs",
    "nextsent_items",
    "pattern_items",
]

# Items per task for `make run` (2 models x 3 tasks on 2 CPU cores in a few minutes).
DEFAULT_SIZES: dict[str, int] = {"qs_bpb": 40, "qs_nextsent": 100, "qs_pattern": 100}
# Corpus groups (source files / help topics) go to one pool each; a pool feeds one task.
POOLS: tuple[tuple[str, float], ...] = (("qs_bpb", 0.4), ("qs_nextsent", 0.6))
TASK_VERSION = 1
BPB_MIN_CHARS, BPB_MAX_CHARS = 300, 1500
PASSAGE_MAX_CHARS = 1000
PASSAGE_MIN_CHARS = 250
PASSAGE_MAX_SENTENCES = 8


def _pick(rng: random.Random, n: int) -> int:
    """Uniform index in range(n) from `rng.random()` only (stable across Python versions)."""
    return min(int(rng.random() * n), n - 1)


def _sample(rng: random.Random, seq: list[Any], k: int) -> list[Any]:
    pool = list(seq)
    out = []
    for _ in range(k):
        out.append(pool.pop(_pick(rng, len(pool))))
    return out


def _pool_docs(corpus: Corpus, pool: str, seed: int) -> list[Document]:
    """The pool's documents in a seeded (hash) order."""
    docs = [d for d in corpus.documents if assign_group(d.group, seed, POOLS) == pool]
    return sorted(docs, key=lambda d: (stable_unit("order", seed, d.doc_id), d.doc_id))


# ---------------------------------------------------------------------------------------------- bpb


def bpb_docs(corpus: Corpus, n: int, seed: int) -> list[dict[str, Any]]:
    """Held-out documents of 300-1500 characters (longer ones cut at a sentence boundary)."""
    rows: list[dict[str, Any]] = []
    for doc in _pool_docs(corpus, "qs_bpb", seed):
        if len(rows) >= n:
            break
        text = doc.text
        if len(text) > BPB_MAX_CHARS:
            kept: list[str] = []
            for sent in split_sentences(text):
                if len(" ".join([*kept, sent])) > BPB_MAX_CHARS:
                    break
                kept.append(sent)
            text = " ".join(kept)
        if BPB_MIN_CHARS <= len(text) <= BPB_MAX_CHARS:
            rows.append({"id": f"qs_bpb-{len(rows):04d}", "source": doc.doc_id, "text": text})
    return rows


# ------------------------------------------------------------------------------------------ nextsent


def nextsent_items(corpus: Corpus, n: int, seed: int) -> list[dict[str, Any]]:
    """Passage + 4 candidate next sentences (1 true, 3 same-kind distractors of similar length)."""
    docs = _pool_docs(corpus, "qs_nextsent", seed)
    # Distractor pool: every usable sentence of the pool, with its kind and group.
    pool: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for doc in sorted(docs, key=lambda d: d.doc_id):
        for sent in split_sentences(doc.text):
            if is_prose_sentence(sent) and sent.lower() not in seen:
                seen.add(sent.lower())
                pool.append((sent, doc.kind, doc.group))
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for doc in docs:
        if len(rows) >= n:
            break
        sents = split_sentences(doc.text)
        spans = []
        for i in range(2, len(sents)):
            if not is_prose_sentence(sents[i]):
                continue
            j = max(0, i - PASSAGE_MAX_SENTENCES)
            while i - j > 2 and len(" ".join(sents[j:i])) > PASSAGE_MAX_CHARS:
                j += 1
            passage = " ".join(sents[j:i])
            if PASSAGE_MIN_CHARS <= len(passage) <= PASSAGE_MAX_CHARS:
                spans.append((j, i))
        if not spans:
            continue
        j, i = spans[_pick(rng, len(spans))]
        passage, true = " ".join(sents[j:i]), sents[i]
        distractors = _distractors(rng, pool, doc, true, passage)
        if distractors is None:
            continue
        label = _pick(rng, 4)
        choices = [s for s, _ in distractors]
        choices.insert(label, true)
        rows.append(
            {
                "id": f"qs_nextsent-{len(rows):04d}",
                "source": doc.doc_id,
                "passage": passage,
                "choices": choices,
                "label": label,
                "distractor_sources": [g for _, g in distractors],
            }
        )
    return rows


def _distractors(
    rng: random.Random, pool: list[tuple[str, str, str]], doc: Document, true: str, passage: str
) -> list[tuple[str, str]] | None:
    """Three sentences from other groups of the same kind, close in length to `true`."""
    low = true.lower()
    for lo, hi, same_kind in ((0.8, 1.25, True), (0.6, 1.6, True), (0.6, 1.6, False)):
        cands = [
            (s, g)
            for s, kind, g in pool
            if g != doc.group
            and (kind == doc.kind or not same_kind)
            and lo * len(true) <= len(s) <= hi * len(true)
            and s.lower() != low
            and s not in passage
        ]
        if len(cands) >= 3:
            return _sample(rng, cands, 3)
    return None


# ------------------------------------------------------------------------------------------- pattern

_NUMBER_WORDS = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty"
).split()
# Spelled out, not calendar.day_name: that follows the process locale.
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_MONTHS = "January February March April May June July August September October November December".split()
_WORDS = "red blue green cat dog bird apple pear plum sun moon star up down left right".split()

Pattern = Callable[[random.Random], tuple[str, str]]


def _seq(items: list[str], answer: str) -> tuple[str, str]:
    """("a, b, c,", " d"): the answer carries the space a model writes after the comma."""
    return ", ".join(items) + ",", " " + answer


def _arith(steps: tuple[int, ...], lo: int, hi: int) -> Pattern:
    """Arithmetic progression; negative steps count down (and stay above zero)."""

    def gen(rng: random.Random) -> tuple[str, str]:
        step, k = steps[_pick(rng, len(steps))], 4 + _pick(rng, 3)
        start = lo + _pick(rng, hi - lo + 1)
        if step < 0:
            start += -step * k
        return _seq([str(start + step * i) for i in range(k)], str(start + step * k))

    return gen


def _squares(rng: random.Random) -> tuple[str, str]:
    start, k = 1 + _pick(rng, 15), 4 + _pick(rng, 2)
    return _seq([str((start + i) ** 2) for i in range(k)], str((start + k) ** 2))


def _interleave(rng: random.Random) -> tuple[str, str]:
    """Two counts woven together: 3, 30, 4, 40, 5, 50, 6, -> 60."""
    start, mult, k = 1 + _pick(rng, 9), (10, 100)[_pick(rng, 2)], 5 + _pick(rng, 3)
    items = [str((start + i // 2) * (mult if i % 2 else 1)) for i in range(k + 1)]
    return _seq(items[:k], items[k])


def _ordinal(names: list[str], steps: tuple[int, ...], min_k: int, wrap: bool) -> Pattern:
    """Walk a named order (letters, days, months, number words) by a fixed step."""

    def gen(rng: random.Random) -> tuple[str, str]:
        step, k = steps[_pick(rng, len(steps))], min_k + _pick(rng, 2)
        n = len(names)
        if wrap:
            start = _pick(rng, n)
        else:  # every element, the answer included, must exist without wrapping
            span = abs(step) * k
            start = _pick(rng, n - span) + (span if step < 0 else 0)
        idx = [(start + step * i) % n for i in range(k + 1)]
        return _seq([names[i] for i in idx[:k]], names[idx[k]])

    return gen


def _repeat(rng: random.Random) -> tuple[str, str]:
    unit = _sample(rng, _WORDS, 3 + _pick(rng, 2))
    k = 2 * len(unit) + _pick(rng, len(unit))
    return _seq([unit[i % len(unit)] for i in range(k)], unit[k % len(unit)])


# Easy kinds (count up, weekdays) next to ones that need real induction (steps of 7, reverse
# months, interleaving): small models score in between, so a larger model has room to show.
PATTERN_KINDS: dict[str, Pattern] = {
    "count_up": _arith((1,), 1, 90),
    "count_step": _arith((3, 4, 6, 7, 8, 9, 11, 12, 15, 25), 1, 50),
    "count_down": _arith((-1, -2, -3, -5), 10, 60),
    "squares": _squares,
    "interleave": _interleave,
    "letters_skip": _ordinal(list(string.ascii_lowercase), (2, 3), 4, wrap=False),
    "letters_reverse": _ordinal(list(string.ascii_uppercase), (-1,), 4, wrap=False),
    "weekdays": _ordinal(_DAYS, (1, 2), 3, wrap=True),
    "months_reverse": _ordinal(_MONTHS, (-1,), 3, wrap=True),
    "number_words": _ordinal(_NUMBER_WORDS, (1, 2), 3, wrap=False),
    "repeat": _repeat,
}


def pattern_items(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` distinct sequences, kinds in rotation, each with its one correct continuation.

    A kind whose (small) space of sequences is used up leaves the rotation, so large `n` still
    terminates; the result stops at what all kinds together can offer.
    """
    rng = random.Random(seed)
    active = list(PATTERN_KINDS)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    turn = misses = 0
    while len(rows) < n and active:
        kind = active[turn % len(active)]
        sequence, answer = PATTERN_KINDS[kind](rng)
        if sequence in seen:
            misses += 1
            if misses >= 200:
                active.remove(kind)
                misses = 0
            continue
        misses = 0
        turn += 1
        seen.add(sequence)
        rows.append({"id": f"qs_pattern-{len(rows):04d}", "kind": kind, "sequence": sequence, "answer": answer})
    return rows


# --------------------------------------------------------------------------------------------- files


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")


def _write_if_changed(path: Path, data: bytes) -> None:
    """Atomic write, skipped when the file already holds exactly `data`."""
    if path.is_file() and path.read_bytes() == data:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _task_yaml(name: str, data_file: str, metadata: dict[str, Any]) -> bytes:
    spec = json.loads(json.dumps(TASK_TEMPLATES[name]))  # deep copy
    spec["dataset_kwargs"]["data_files"]["test"] = data_file
    spec["metadata"] = metadata
    header = "# Generated by beyondscale.quickstart.build_quickstart_tasks; rebuilt, not edited.\n"
    body = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)
    return (header + body).encode("utf-8")


def build_quickstart_tasks(
    out_dir: Path,
    *,
    n_items: int | None = None,
    seed: int = 1234,
    sizes: Mapping[str, int] | None = None,
) -> list[Path]:
    """Write qs_bpb / qs_nextsent / qs_pattern (.jsonl + .yaml) into `out_dir`; return the YAML paths.

    n_items: items per task (each task capped by what the corpus offers); None = `DEFAULT_SIZES`.
    sizes: per-task overrides, e.g. {"qs_nextsent": 300}. Same inputs -> byte-identical files.
    """
    if n_items is not None and n_items < 1:
        raise UserError(f"n_items must be at least 1, got {n_items}")
    wanted = {name: (n_items if n_items is not None else DEFAULT_SIZES[name]) for name in TASK_NAMES}
    for name, size in (sizes or {}).items():
        if name not in wanted:
            raise UserError(f"unknown quickstart task {name!r} in sizes; known: {', '.join(TASK_NAMES)}")
        if size < 1:
            raise UserError(f"sizes[{name!r}] must be at least 1, got {size}")
        wanted[name] = size
    corpus = load_corpus()
    rows = {
        "qs_bpb": bpb_docs(corpus, wanted["qs_bpb"], seed),
        "qs_nextsent": nextsent_items(corpus, wanted["qs_nextsent"], seed),
        "qs_pattern": pattern_items(wanted["qs_pattern"], seed),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name in TASK_NAMES:
        data_file = f"{name}.jsonl"
        metadata: dict[str, Any] = {
            "version": TASK_VERSION,
            "builder": "beyondscale.quickstart",
            "seed": seed,
            "n_items": len(rows[name]),
        }
        if name != "qs_pattern":
            metadata["python_version"] = corpus.python_version
            metadata["corpus"] = "python-stdlib-docstrings+pydoc_data.topics"
            metadata["corpus_sha256"] = corpus.content_hash
            metadata["split"] = "by source group (module file / help topic), seeded hash: " + ", ".join(
                f"{p}={w}" for p, w in POOLS
            )
        _write_if_changed(out_dir / data_file, _jsonl(rows[name]))
        yaml_path = out_dir / f"{name}.yaml"
        _write_if_changed(yaml_path, _task_yaml(name, data_file, metadata))
        paths.append(yaml_path)
    return paths
