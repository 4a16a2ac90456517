"""Where beyondscale caches what it derives from models (converted GGUF folders, file digests, probes)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where converted models and probes are cached (env BEYONDSCALE_CACHE overrides)."""
    return Path(os.environ.get("BEYONDSCALE_CACHE") or Path.home() / ".cache" / "beyondscale")
