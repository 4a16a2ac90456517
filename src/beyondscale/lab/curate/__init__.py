"""`beyondscale curate`: better data instead of more parameters.

datatrove's heuristic filters (FineWeb's rules), exact and MinHash near-duplicate removal and a
learned quality scorer, streamed over text files, folders, JSONL or hub datasets. See
`pipeline.run_curate` (the entry point) and `summary` (the stored `summary.json` fields).
"""

from beyondscale.lab.curate.pipeline import CurateSettings, run_curate

__all__ = ["CurateSettings", "run_curate"]
