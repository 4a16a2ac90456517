"""Reading results, one floor below the lab and the study: runs, exports, analysis, report, fits."""

from beyondscale.results.analyze import analyze
from beyondscale.results.fit import fit
from beyondscale.results.items import export_items
from beyondscale.results.report import report
from beyondscale.results.runs import export_run, list_runs, load_store_frames, open_store, show_run

__all__ = ["analyze", "export_items", "export_run", "fit", "list_runs", "load_store_frames", "open_store", "report", "show_run"]
