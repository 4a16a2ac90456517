"""Writes kept documents to `kept/part-NNNNN.jsonl` shards and removed ones to `removed/RULE.jsonl`.

Kept lines are `{"id", "text"}` (plus `"score"` when a scorer ran); removed lines add `"rule"`
and `"reason"` (datatrove's drop reason, `duplicate` or `below_threshold`) and, for duplicates,
`"duplicate_of"`, like datatrove's exclusion writers. The output's content hash is taken over
the kept bytes as they are written, so it never needs a second read.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import IO, Any

DEFAULT_SHARD_BYTES = 128 * 2**20


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


class KeptWriter:
    """Rolling JSONL shards of kept documents, and the sha256 of everything written."""

    def __init__(self, folder: Path, shard_bytes: int = DEFAULT_SHARD_BYTES) -> None:
        self.folder, self.shard_bytes = folder, shard_bytes
        self.folder.mkdir(parents=True, exist_ok=True)
        self.digest = hashlib.sha256()
        self.shards: list[str] = []
        self.handle: IO[bytes] | None = None
        self.size = 0
        self.count = 0
        self.bytes = 0

    def write(self, record: dict[str, Any]) -> None:
        """Append one document, opening the next shard when this one is full."""
        data = _line(record)
        if self.handle is None or self.size + len(data) > self.shard_bytes and self.size > 0:
            self._next_shard()
        assert self.handle is not None
        self.handle.write(data)
        self.digest.update(data)
        self.size += len(data)
        self.count += 1
        self.bytes += len(data)

    def _next_shard(self) -> None:
        if self.handle is not None:
            self.handle.close()
        name = f"part-{len(self.shards):05d}.jsonl"
        self.shards.append(name)
        self.handle = (self.folder / name).open("wb")
        self.size = 0

    def close(self) -> None:
        """Close the last shard (an empty output still gets one empty shard)."""
        if self.handle is None:
            self._next_shard()
        assert self.handle is not None
        self.handle.close()


class RemovedWriter:
    """One JSONL file per removing rule, opened on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.handles: dict[str, IO[bytes]] = {}

    def write(self, rule: str, record: dict[str, Any]) -> None:
        """Append a removed document to `removed/RULE.jsonl`."""
        if rule not in self.handles:
            self.handles[rule] = (self.folder / f"{rule}.jsonl").open("wb")
        self.handles[rule].write(_line(record))

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
