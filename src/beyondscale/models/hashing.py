"""Content digests of model files, computed once per file version.

A weight file is hashed in full (SHA-256, ~1.1 GB/s on this project's CPUs with SHA-NI), so a changed
byte anywhere changes the model's identity. The digest is cached by (absolute path, size, mtime_ns) in
an SQLite file under the beyondscale cache (`store.file_digests`): the second run of a study costs one
lookup per file.

Files above `FULL_HASH_LIMIT` (64 GiB, about a minute of hashing at the measured rate; HF shards and
nearly all GGUF files are far smaller) are hashed from `SAMPLES` evenly spaced 1 MiB blocks plus
their size, and the digest says so (`sha256-sampled:`).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from beyondscale.store.file_digests import cached_digest, remember_digest

FULL_HASH_LIMIT = 64 << 30
SAMPLES = 1024
BLOCK = 1 << 20
# A file modified this recently may change again within the same mtime tick: do not cache it.
RACY_SECONDS = 2.0

_MEMO: dict[tuple[str, int, int], str] = {}


def _cache_path() -> Path:
    from beyondscale.models.cache import cache_dir

    return cache_dir() / "file_hashes.sqlite"


def forget() -> None:
    """Drop the in-process memo (tests; the on-disk cache stays)."""
    _MEMO.clear()


def _hash_file(path: Path, size: int) -> str:
    """Read the file and return its digest (full, or sampled beyond FULL_HASH_LIMIT)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= FULL_HASH_LIMIT:
            while block := f.read(BLOCK):
                h.update(block)
            return "sha256:" + h.hexdigest()
        h.update(str(size).encode())
        step = (size - BLOCK) // (SAMPLES - 1)
        for i in range(SAMPLES):
            f.seek(i * step)
            h.update(f.read(BLOCK))
    return "sha256-sampled:" + h.hexdigest()


def _cached(key: tuple[str, int, int]) -> str | None:
    return cached_digest(_cache_path(), key)


def _remember(key: tuple[str, int, int], digest: str) -> None:
    remember_digest(_cache_path(), key, digest)


def file_digest(path: Path | str) -> str:
    """`sha256:<hex>` of the whole file (cached by path, size and mtime), or `sha256-sampled:<hex>`."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    digest = _MEMO.get(key) or _cached(key)
    if digest is None:
        digest = _hash_file(path, st.st_size)
        if time.time() - st.st_mtime_ns / 1e9 <= RACY_SECONDS:
            return digest  # may still be changing within one mtime tick
        _remember(key, digest)
    _MEMO[key] = digest
    return digest


def files_digest(paths: list[Path]) -> dict[str, str]:
    """{file name: digest} for the files that exist."""
    return {p.name: file_digest(p) for p in sorted(paths) if p.is_file()}
