"""The report of a store: its analysis, the trained ladder and the probes, as HTML, Markdown or JSON."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from beyondscale.analysis.ladder import Ladder, read_ladder
from beyondscale.errors import UserError
from beyondscale.report import write_report
from beyondscale.report.lab_sections import lab_only, ladder_sections, with_ladder
from beyondscale.report.probes import report_sections
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
    sections: list[dict[str, Any]] | None = None,
    run_info: dict[str, Any] | None = None,
    **analyze_kwargs: Any,
) -> Path:
    """Write the report; `analyzed` = (Analysis, Frames) from `analyze()` skips computing them again;
    `inference_tokens`: tokens a trained ladder's model will serve (its inference-aware optimum);
    `sections` replace the store's own extra sections (its trained ladder and probes), as the study's do;
    `run_info` adds lines to the report's run facts."""
    out = Path(out)
    fmt = fmt or {".md": "md", ".json": "json"}.get(out.suffix, "html")
    if fmt not in ("html", "md", "json"):
        raise UserError(f"--format {fmt}: expected html, md or json")
    if inference_tokens is not None and not inference_tokens >= 0:
        raise UserError(f"--inference-tokens {inference_tokens}: must be a non-negative number of tokens")
    # models trained into this store by `train`/`sweep`: empty when none (or when `sections` replace them)
    ladder = read_ladder(store, inference_tokens=inference_tokens) if sections is None else Ladder()
    try:
        result, frames = analyzed if analyzed is not None else analyze(store, **analyze_kwargs)
    except UserError:  # nothing evaluated yet: a trained ladder is still worth a report
        if ladder.empty:
            raise
        result, frames = lab_only(), load_store_frames(store)
    facts = {"store": str(store), "runs": len(list_runs(store)), "python": sys.version.split()[0], **(run_info or {})}
    if sections is None:  # probe results (lens, bias, routing, transparency) stored by `explain` and `bias`
        sections = [*ladder_sections(ladder), *report_sections(store)]
    write_report(out, fmt, with_ladder(result, ladder), models=frames.models, scores=frames.scores,
                 efficiency=frames.efficiency, title=title, run_info=facts, extra_sections=sections)
    return out
