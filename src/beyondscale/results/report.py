"""The report of a store: its analysis, the trained ladder and the probes, as HTML, Markdown or JSON."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from beyondscale.analysis.ladder import read_ladder
from beyondscale.errors import UserError
from beyondscale.interpret.report import report_sections
from beyondscale.report import write_report
from beyondscale.report.lab_sections import lab_only, ladder_sections, with_ladder
from beyondscale.results.analyze import analyze
from beyondscale.results.runs import list_runs, load_store_frames
from beyondscale.store import DEFAULT_STORE


def report(
    out: str | Path = "report.html",
    *,
    store: str | Path = DEFAULT_STORE,
    fmt: str | None = None,
    title: str = "beyondscale report",
    analyzed: tuple[Any, Any] | None = None,
    inference_tokens: float | None = None,
    **analyze_kwargs: Any,
) -> Path:
    """Write the report; `analyzed` = (Analysis, Frames) from `analyze()` skips computing them again;
    `inference_tokens`: tokens a trained ladder's model will serve (its inference-aware optimum)."""
    out = Path(out)
    fmt = fmt or {".md": "md", ".json": "json"}.get(out.suffix, "html")
    if fmt not in ("html", "md", "json"):
        raise UserError(f"--format {fmt}: expected html, md or json")
    if inference_tokens is not None and not inference_tokens >= 0:
        raise UserError(f"--inference-tokens {inference_tokens}: must be a non-negative number of tokens")
    ladder = read_ladder(store, inference_tokens=inference_tokens)  # models trained into this store by `train`/`sweep`: empty when none
    try:
        result, frames = analyzed if analyzed is not None else analyze(store, **analyze_kwargs)
    except UserError:  # nothing evaluated yet: a trained ladder is still worth a report
        if ladder.empty:
            raise
        result, frames = lab_only(), load_store_frames(store)
    runs = list_runs(store)
    run_info = {"store": str(store), "runs": len(runs), "python": sys.version.split()[0]}
    # Probe results (lens, bias, routing, transparency) stored by `explain` and `bias`: [] when none ran.
    write_report(out, fmt, with_ladder(result, ladder), models=frames.models, scores=frames.scores,
                 efficiency=frames.efficiency, title=title, run_info=run_info,
                 extra_sections=[*ladder_sections(ladder), *report_sections(store)])
    return out
