"""The file-digest cache: a model file's SHA-256 by (absolute path, size, mtime_ns), in its own SQLite file.

Not the results store: one cache under the beyondscale cache folder, shared by every store, so the second
run of a study costs one lookup per file. An unreadable or unwritable cache only costs re-hashing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

FileStamp = tuple[str, int, int]  # (absolute path, size, mtime_ns)


class _Cache:
    """An SQLite connection to the digest cache, committed and closed on exit."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS file_hash (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, digest TEXT)"
        )
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.db.commit()
        self.db.close()


def cached_digest(cache: Path, stamp: FileStamp) -> str | None:
    """The digest recorded for this file version, or None (never recorded, or the cache unreadable)."""
    try:
        with _Cache(cache) as db:
            found = db.execute("SELECT digest FROM file_hash WHERE path = ? AND size = ? AND mtime_ns = ?",
                               stamp).fetchone()
        return found[0] if found else None
    except (OSError, sqlite3.Error):
        return None


def remember_digest(cache: Path, stamp: FileStamp, digest: str) -> None:
    """Record the digest of this file version (replacing the path's older one); a failure is ignored."""
    try:
        with _Cache(cache) as db:
            db.execute("INSERT OR REPLACE INTO file_hash VALUES (?, ?, ?, ?)", (*stamp, digest))
    except (OSError, sqlite3.Error):
        pass
