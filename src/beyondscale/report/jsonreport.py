"""The JSON report: the analysis plus the store frames, JSON-serialisable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from beyondscale import __version__
from beyondscale.analysis.types import Analysis
from beyondscale.report.data import jsonable, records
from beyondscale.report.format import text


def render_json(
    analysis: Analysis,
    *,
    models: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    efficiency: pd.DataFrame | None = None,
    title: str = "beyondscale report",
    run_info: Mapping[str, Any] | None = None,
    extra_sections: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """``analysis.to_json()`` plus the store frames (records), title and run info; JSON-serialisable."""
    out = jsonable(analysis.to_json())
    out.update({
        "report_format": 1,
        "title": title,
        "beyondscale_version": __version__,
        "run_info": jsonable(dict(run_info or {})),
        "models": records(models),
        "scores": records(scores),
        "efficiency": records(efficiency),
    })
    if extra_sections:
        out["extra_sections"] = [
            {"title": text(s.get("title")), "text": text(s.get("text")),
             "frames": {str(k): records(v) for k, v in (s.get("frames") or {}).items()}
             if isinstance(s.get("frames"), Mapping) else [records(v) for v in (s.get("frames") or [])]}
            for s in extra_sections
        ]
    return out

