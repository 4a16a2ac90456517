"""The Markdown report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from beyondscale.analysis.types import Analysis
from beyondscale.report.data import as_frame
from beyondscale.report.format import text
from beyondscale.report.methods import METHOD_NOTES
from beyondscale.report.sections import (
    extra_sections_view,
    framing_note,
    recommendation_view,
    run_info_items,
    verdict_lines,
)
from beyondscale.report.tables import leaderboard_frame, leaderboard_table, paired_table


def md_escape(value: Any) -> str:
    s = text(value).replace("\r", " ").replace("\n", " ")
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("\\", "\\\\").replace("|", "\\|")


def md_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Sequence[bool] | None = None) -> str:
    """A GitHub-flavoured Markdown table (cells escaped: pipes, newlines, HTML)."""
    numeric = list(numeric or [False] * len(columns))
    head = "| " + " | ".join(md_escape(c) for c in columns) + " |"
    sep = "| " + " | ".join("---:" if n else "---" for n in numeric) + " |"
    body = ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join([head, sep, *body])


def md_from_table(table: dict[str, Any]) -> str:
    cols = [(c.get("over", "") + "/" if c.get("over") else "") + c["label"] for c in table["columns"]]
    rows = []
    for row in table["rows"]:
        cells = []
        for cell in row["cells"]:
            s = cell["text"] + (f" ± {cell['pm']}" if cell.get("pm") else "")
            if cell.get("cls") == "best" and s:
                s = f"**{s}**"
            if cell.get("est") and s:
                s += " (est.)"
            if cell.get("flag") and s:
                s += f" ({cell['flag']})"
            cells.append(s)
        rows.append(cells)
    return md_table(cols, rows, numeric=[c["num"] for c in table["columns"]])


def _md_verdict(analysis: Analysis) -> list[str]:
    out = ["## Verdict", ""]
    head = analysis.headline
    if head:
        out += [f"**{md_escape(line)}**  " for line in head] + ["", "The details:", ""]
    out += [f"- {md_escape(v)}" for v in verdict_lines(analysis)] or ["No verdict: nothing was scored yet."]
    rec = recommendation_view(analysis.recommendation)
    if rec:
        out += ["", f"**Recommendation:** {md_escape(rec['model'] or 'none')}. {md_escape(rec['reason'])}"]
        if rec["constraints"]:
            out.append("Constraints: " + ", ".join(f"{md_escape(k)} = {md_escape(v)}" for k, v in rec["constraints"]))
        if rec["candidates"]:
            out.append("Candidates: " + "; ".join(md_escape(c) for c in rec["candidates"]))
    return out


def _md_leaderboard(analysis: Analysis, models: pd.DataFrame, scores: pd.DataFrame) -> list[str]:
    out = ["", "## Leaderboard", ""]
    lb = leaderboard_table(leaderboard_frame(analysis, models, scores), scores, analysis.versions)
    if not lb:
        return out + ["No models were scored."]
    legend = "Quality ± standard error; **bold** = best in column."
    if lb["has_est"]:
        legend += " (est.) = estimated, not measured (source starts with 'estimate')."
    if lb["has_older"]:
        legend += " (older version) = scored on an older version of the task (other items): not directly comparable."
    return out + [md_from_table(lb), "", legend]


def _md_paired(analysis: Analysis) -> list[str]:
    out = ["", "## Paired significance", ""]
    pt = paired_table(analysis.paired)
    if not pt:
        return out + ["No paired comparisons (they need at least two models scored on the same items)."]
    out.append(md_from_table(pt))
    if pt["n_flagged"]:
        out += ["", f"{pt['n_flagged']} row(s) flagged: the bigger model is not significantly better."]
    return out


def _md_extra(extra_sections: Sequence[Mapping[str, Any]] | None) -> list[str]:
    out: list[str] = []
    for sec in extra_sections_view(extra_sections):
        out += ["", f"## {md_escape(sec['title'])}", ""]
        if sec["text"]:
            out.append(md_escape(sec["text"]))
        for t in sec["tables"]:
            out += ["", f"**{md_escape(t['caption'])}**" if t["caption"] else "", md_from_table(t["table"])]
    return out


def render_markdown(
    analysis: Analysis,
    *,
    models: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    efficiency: pd.DataFrame | None = None,
    title: str = "beyondscale report",
    run_info: Mapping[str, Any] | None = None,
    extra_sections: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """Markdown: verdict, leaderboard, paired comparisons, notes and method notes."""
    models, scores = as_frame(models), as_frame(scores)
    out = [f"# {md_escape(title)}", ""]
    note = framing_note(analysis)
    if note:
        out += [f"*{md_escape(note)}*", ""]
    info = run_info_items(run_info)
    if info:
        out += [f"- **{md_escape(k)}**: {md_escape(v)}" for k, v in info] + [""]
    out += _md_verdict(analysis) + _md_leaderboard(analysis, models, scores) + _md_paired(analysis)
    out += _md_extra(extra_sections)
    out += ["", "## Notes", ""]
    out += [f"- {md_escape(n)}" for n in analysis.notes] or ["Nothing was left out."]
    out += ["", "## Method notes", ""]
    out += [f"- **{md_escape(term)}**: {md_escape(body)}" for term, body in METHOD_NOTES]
    return "\n".join(out).rstrip() + "\n"
