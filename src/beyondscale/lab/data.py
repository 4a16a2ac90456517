"""Corpus in, memory-mapped token ids out: a train stream and a held-out validation stream.

`--data` is a text file (documents separated by blank lines), a JSONL file (one `{"text": ...}` per
line) or a `beyondscale curate` output folder (`kept/*.jsonl` plus `summary.json` with the data hash
and the recipe). Documents are joined with the end-of-text token; the last `val_fraction` of the
token stream is the validation split (nanoGPT's split), so no document straddles both unseen.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from beyondscale.errors import UserError


@dataclass
class Corpus:
    texts: list[str]
    source: str
    data_hash: str
    recipe: dict[str, Any] | None = None
    variant: str = "raw"
    ids: list[str | None] = field(default_factory=list)  # JSONL `id` per document when given (curate keeps it)


@dataclass
class TokenSplits:
    train_path: Path
    val_path: Path
    n_train: int
    n_val: int
    extra: dict[str, Any] = field(default_factory=dict)

    def train(self) -> np.ndarray:
        return np.load(self.train_path, mmap_mode="r")

    def val(self) -> np.ndarray:
        return np.load(self.val_path, mmap_mode="r")


def jsonl_rows(path: Path, where: str) -> list[tuple[int, dict]]:
    """(line number, row) of a JSONL corpus whose rows carry a string `text`; `where` names the flag in errors."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise UserError(f"{where}: line {n} is not JSON") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise UserError(f"{where}: line {n} has no string field 'text'")
        rows.append((n, row))
    return rows


def _read_jsonl(path: Path) -> list[tuple[str, str | None]]:
    return [(row["text"], str(row["id"]) if "id" in row else None) for _, row in jsonl_rows(path, f"--data {path}")]


def read_corpus(path: str | Path) -> Corpus:
    """Documents from a text file, a JSONL file or a curate folder (whose recipe and hash are kept)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"--data {path}: no such file or folder")
    recipe, data_hash, variant = None, None, "raw"
    if p.is_dir():
        files = sorted((p / "kept").glob("*.jsonl")) if (p / "kept").is_dir() else sorted(p.glob("*.jsonl"))
        if not files:
            raise UserError(f"--data {path}: folder has no kept/*.jsonl (not a `beyondscale curate` output)")
        docs = [t for f in files for t in _read_jsonl(f)]
        summary = p / "summary.json"
        if summary.is_file():
            try:
                doc = json.loads(summary.read_text(encoding="utf-8"))
            except ValueError:
                raise UserError(f"--data {summary}: not valid JSON") from None
            recipe, data_hash, variant = doc.get("recipe"), doc.get("data_hash"), "curated"
    elif p.suffix in (".jsonl", ".json"):
        docs = _read_jsonl(p)
    else:
        try:
            raw = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UserError(f"--data {path}: not UTF-8 text") from None
        docs = [(d.strip(), None) for d in raw.split("\n\n")]
    docs = [(t, i) for t, i in docs if t.strip()]
    texts = [t for t, _ in docs]
    if not texts:
        raise UserError(f"--data {path}: empty corpus (no text to train on)")
    if data_hash is None:
        h = hashlib.sha256()
        for t in texts:
            h.update(t.encode("utf-8") + b"\0")
        data_hash = h.hexdigest()[:24]
    return Corpus(texts, str(p.resolve()), str(data_hash), recipe, variant, [i for _, i in docs])


def encode(texts: list[str], tokenizer: Any) -> np.ndarray:
    eos = tokenizer.eos_token_id
    dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max else np.uint32
    pieces = []
    for start in range(0, len(texts), 1024):
        batch = tokenizer(texts[start:start + 1024], add_special_tokens=False)["input_ids"]
        pieces.extend(np.asarray([*ids, eos], dtype=dtype) for ids in batch)
    return np.concatenate(pieces)


def tokenize(corpus: Corpus, tokenizer: Any, out_dir: Path, val_fraction: float = 0.1,
             val_corpus: Corpus | None = None, max_val_tokens: int = 1_000_000) -> TokenSplits:
    """Encode every document + end-of-text and write train/val `.npy` arrays (memory-mapped later).

    With `val_corpus` (a shared held-out set, so runs on different data are compared on the same
    text), all of `corpus` trains and `val_corpus` validates.
    """
    stream = encode(corpus.texts, tokenizer)
    if val_corpus is not None:
        train, val = stream, encode(val_corpus.texts, tokenizer)
    else:
        n_val = min(int(round(len(stream) * val_fraction)), max_val_tokens)  # large corpora: a bounded eval
        train, val = stream[: len(stream) - n_val], stream[len(stream) - n_val:]
    out_dir.mkdir(parents=True, exist_ok=True)
    train_path, val_path = out_dir / "train.npy", out_dir / "val.npy"
    np.save(train_path, train)
    np.save(val_path, val)
    return TokenSplits(train_path, val_path, len(train), len(val))


def check_sizes(splits: TokenSplits, context_length: int, data: str) -> None:
    """Training needs one full window (+1 target) and validation one full window."""
    if splits.n_train < context_length + 1 or splits.n_val < context_length:
        raise UserError(
            f"--data {data}: corpus smaller than one context ({splits.n_train} train / {splits.n_val} validation "
            f"tokens; --context-length {context_length} needs {context_length + 1} / {context_length})"
        )


class Batches:
    """Deterministic batches: windows of the train stream in a seeded permutation per epoch.

    Batch `i` depends only on (seed, i), so resuming at a step replays exactly the same data.
    """

    def __init__(self, tokens: np.ndarray, context_length: int, batch_size: int, seed: int):
        self.tokens, self.ctx, self.batch_size, self.seed = tokens, context_length, batch_size, seed
        self.n_windows = (len(tokens) - 1) // context_length
        self._perm: tuple[int, np.ndarray] | None = None

    def _order(self, epoch: int) -> np.ndarray:
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n_windows))
        return self._perm[1]

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and next-token targets, each (batch_size, context_length) int64."""
        rows = []
        for j in range(index * self.batch_size, (index + 1) * self.batch_size):
            epoch, pos = divmod(j, self.n_windows)
            start = int(self._order(epoch)[pos]) * self.ctx
            rows.append(np.asarray(self.tokens[start:start + self.ctx + 1], dtype=np.int64))
        block = np.stack(rows)
        return block[:, :-1], block[:, 1:]


def eval_windows(tokens: np.ndarray, context_length: int, limit: int | None = None) -> np.ndarray:
    """Consecutive non-overlapping windows of `context_length` ids (a last partial window dropped)."""
    n = len(tokens) // context_length
    if limit is not None:
        n = min(n, max(1, limit // context_length))
    return np.asarray(tokens[: n * context_length], dtype=np.int64).reshape(n, context_length)


def spread_windows(tokens: np.ndarray, context_length: int, n_windows: int) -> np.ndarray:
    """`n_windows` windows at evenly spaced window positions over the whole stream (a sample of all of it)."""
    total = len(tokens) // context_length
    picks = np.unique(np.linspace(0, total - 1, num=min(n_windows, total)).round().astype(int))
    return np.stack([np.asarray(tokens[i * context_length:(i + 1) * context_length], dtype=np.int64) for i in picks])
