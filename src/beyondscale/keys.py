"""The content key: what the store files models, tasks, batches and probe inputs under.

Identity is content: a key is the first 24 hex digits of the SHA-256 of the object's canonical JSON
(sorted keys; a value JSON cannot hold is written as its `str`). Keys already in users' stores were made
this way, so the bytes hashed must never change; `ensure_ascii=False` keeps the one older key (probe
inputs) that wrote non-ASCII text as UTF-8 rather than as `\\u` escapes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

KEY_LENGTH = 24


def content_key(obj: Any, *, ensure_ascii: bool = True) -> str:
    """The 24-hex-digit content key of `obj` (a JSON-able value; anything else is hashed as its str)."""
    blob = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=ensure_ascii)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:KEY_LENGTH]
