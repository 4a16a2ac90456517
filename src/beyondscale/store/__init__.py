"""The results store (SQLite, WAL, a commit per batch) and its DataFrame views."""

from beyondscale.store.db import SCHEMA_VERSION, Store
from beyondscale.store.frames import Frames, load_frames, results_table

__all__ = ["SCHEMA_VERSION", "Frames", "Store", "load_frames", "results_table"]
