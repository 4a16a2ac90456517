"""The results store (SQLite, WAL, a commit per batch) and its DataFrame views."""

from beyondscale.store.db import DEFAULT_STORE, Store
from beyondscale.store.frames import Frames, load_frames, results_table
from beyondscale.store.schema import SCHEMA_VERSION

__all__ = ["DEFAULT_STORE", "SCHEMA_VERSION", "Frames", "Store", "load_frames", "results_table"]
