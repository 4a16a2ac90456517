"""The self-contained HTML page: plotly.js inlined once (no CDN, opens offline), Jinja autoescape for the page,
``html.escape`` for plotly text (see `figures.py`), ``\\u003c``-escaped JSON inside ``<script>``."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from beyondscale import __version__
from beyondscale.analysis.types import Analysis
from beyondscale.report import figures as F
from beyondscale.report.data import as_frame
from beyondscale.report.format import COLUMNS, SOURCE_OF, is_estimate
from beyondscale.report.methods import METHOD_NOTES
from beyondscale.report.sections import (
    counts,
    extra_sections_view,
    framing_note,
    recommendation_view,
    returns_groups,
    run_info_items,
    verdict_lines,
)
from beyondscale.report.tables import frame_table, leaderboard_frame, leaderboard_table, paired_table

TEMPLATES = Path(__file__).parent / "templates"


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def estimated_axes(*frames: pd.DataFrame | None) -> frozenset[str]:
    """Cost axes with at least one estimated figure (by the *_source columns of the frames)."""
    out = set()
    for df in map(as_frame, frames):
        for axis, sources in SOURCE_OF.items():
            if any(src in df.columns and df[src].map(is_estimate).any() for src in sources):
                out.add(axis)
    return frozenset(out)


def build_figures(analysis: Analysis, scores: pd.DataFrame | None = None,
                  efficiency: pd.DataFrame | None = None) -> dict[str, list[F.Figure]]:
    """All report figures (plotly figure dicts), by section: returns, pareto, calibration."""
    est = estimated_axes(efficiency, analysis.leaderboard)
    return {
        "returns": F.returns_figures(as_frame(analysis.curves), as_frame(analysis.fit_bands), as_frame(analysis.knees),
                                     est),
        "pareto": F.pareto_figures(as_frame(analysis.pareto), est),
        "calibration": F.calibration_figures(as_frame(analysis.calibration), as_frame(scores)),
    }


def _efficiency_table(efficiency: pd.DataFrame) -> dict[str, Any] | None:
    cols = ["model", "task", *[c for c in COLUMNS if c not in ("model", "task")]]
    cols += [c for c in efficiency.columns if c not in cols and c != "task_key"]
    if not efficiency.empty:
        efficiency = efficiency.sort_values([c for c in ("task", "model") if c in efficiency.columns])
    return frame_table(efficiency, cols)


def _extra_figure(fig: Any, figure_id: str) -> F.Figure:
    """A plotly figure from an extra section (probes against size), sized like the report's own plots."""
    figure = fig.to_plotly_json() if hasattr(fig, "to_plotly_json") else dict(fig)
    layout = dict(figure.get("layout") or {})
    layout.setdefault("height", 360)
    title = layout.get("title")
    caption = title.get("text", "") if isinstance(title, dict) else str(title or "")
    return F.Figure(figure_id, caption, {**figure, "layout": layout})


def _plotly_js(n_figures: int) -> str:
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs() if n_figures else ""
    if "</script" in js.lower():  # never expected; refuse to build a broken page
        raise RuntimeError("plotly.js contains '</script'; cannot inline it safely")
    return js


def render_html(
    analysis: Analysis,
    *,
    models: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    efficiency: pd.DataFrame | None = None,
    title: str = "beyondscale report",
    run_info: Mapping[str, Any] | None = None,
    extra_sections: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """One self-contained HTML page (plotly.js inlined once, no network) for an analysis."""
    models, scores, efficiency = as_frame(models), as_frame(scores), as_frame(efficiency)
    figs = build_figures(analysis, scores, efficiency)
    extra = extra_sections_view(extra_sections)
    for index, sec in enumerate(extra):
        sec["figures"] = [_extra_figure(fig, f"extra-{index}-{n}") for n, fig in enumerate(sec["figures"])]
    all_figs = figs["returns"] + figs["pareto"] + figs["calibration"] + [f for sec in extra for f in sec["figures"]]
    lb = leaderboard_frame(analysis, models, scores)
    context = {
        "title": title, "framing": framing_note(analysis), "version": __version__,
        "generated": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "run_info": run_info_items(run_info), "counts": counts(models, scores, lb),
        "headline": analysis.headline, "verdict": verdict_lines(analysis), "recommendation": recommendation_view(analysis.recommendation),
        "leaderboard": leaderboard_table(lb, scores, analysis.versions),
        "returns": returns_groups(analysis, figs["returns"]), "compute_optimal": frame_table(analysis.compute_optimal),
        "paired": paired_table(analysis.paired), "pareto": figs["pareto"], "calibration": figs["calibration"],
        "efficiency": _efficiency_table(efficiency), "extra": extra,
        "notes": list(analysis.notes or []), "method_notes": METHOD_NOTES, "n_figures": len(all_figs),
        "figures_json": Markup(F.figures_json(all_figs)), "plotly_js": Markup(_plotly_js(len(all_figs))),
    }
    return _environment().get_template("report.html.j2").render(**context)
