"""Reports: one self-contained HTML page, Markdown or JSON rendered from an `Analysis` and store frames."""

from beyondscale.report.render import (
    METHOD_NOTES,
    build_figures,
    md_table,
    render,
    render_html,
    render_json,
    render_markdown,
    write_report,
)

__all__ = [
    "METHOD_NOTES",
    "build_figures",
    "md_table",
    "render",
    "render_html",
    "render_json",
    "render_markdown",
    "write_report",
]
