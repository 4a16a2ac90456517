"""Render an `Analysis` (plus the store frames) as one self-contained HTML file, Markdown or JSON, and write it.

The renderers live in `html.py`, `markdown.py` and `jsonreport.py`; tables in `tables.py`; sections (verdict
lines, recommendation, returns groups) in `sections.py`. The verdict every format shows is
`analysis.wording.words(analysis.findings)`, the same sentences the CLI prints.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from beyondscale.analysis.types import Analysis
from beyondscale.report.html import build_figures, render_html
from beyondscale.report.jsonreport import render_json
from beyondscale.report.markdown import md_table, render_markdown
from beyondscale.report.methods import METHOD_NOTES

__all__ = ["METHOD_NOTES", "build_figures", "md_table", "render", "render_html", "render_json", "render_markdown",
           "write_report"]

Format = Literal["html", "md", "json"]


def render(analysis: Analysis, frames: Mapping[str, pd.DataFrame] | None = None, format: Format = "html",
           **kwargs: Any) -> str | dict[str, Any]:
    """``render(analysis, {"models": ..., "scores": ..., "efficiency": ...}, "html" | "md" | "json")``."""
    frames = dict(frames or {})
    kw = {k: frames.get(k) for k in ("models", "scores", "efficiency")}
    if format == "html":
        return render_html(analysis, **kw, **kwargs)
    if format == "md":
        return render_markdown(analysis, **kw, **kwargs)
    if format == "json":
        return render_json(analysis, **kw, **kwargs)
    raise ValueError(f"unknown report format {format!r} (html, md or json)")


def _format_from_path(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        return "html"
    if suffix in (".md", ".markdown"):
        return "md"
    if suffix == ".json":
        return "json"
    from beyondscale.errors import UserError

    raise UserError(f"{path}: cannot tell the report format from the suffix; use .html, .md or .json")


def write_report(
    path: str | os.PathLike[str],
    format: Format | None = None,
    analysis: Analysis | None = None,
    *,
    models: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    efficiency: pd.DataFrame | None = None,
    title: str = "beyondscale report",
    run_info: Mapping[str, Any] | None = None,
    extra_sections: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Render and write atomically (temp file in the same folder, fsync, rename). Format from suffix if None."""
    path = Path(path)
    fmt = format or _format_from_path(path)
    analysis = analysis if analysis is not None else Analysis()
    kw: dict[str, Any] = {"models": models, "scores": scores, "efficiency": efficiency, "title": title,
                          "run_info": run_info, "extra_sections": extra_sections}
    if fmt == "html":
        body = render_html(analysis, **kw)
    elif fmt == "md":
        body = render_markdown(analysis, **kw)
    elif fmt == "json":
        body = json.dumps(render_json(analysis, **kw), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    else:
        raise ValueError(f"unknown report format {fmt!r} (html, md or json)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

