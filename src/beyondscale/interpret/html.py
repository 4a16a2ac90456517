"""Small self-contained HTML views (heat-map tables, shaded tokens). Every string is escaped here."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def shade(value: float, vmax: float) -> str:
    """Background colour for a value in [-vmax, vmax]: blue below zero, red above, white at zero."""
    a = 0.0 if vmax <= 0 else max(-1.0, min(1.0, value / vmax))
    colour = "220,50,47" if a >= 0 else "38,139,210"
    return f"background: rgba({colour},{abs(a):.3f})"


def heat_table(caption: str, row_labels: Sequence[str], col_labels: Sequence[str],
               values: Sequence[Sequence[float]], fmt: str = "{:.3f}") -> str:
    vmax = max((abs(v) for row in values for v in row), default=0.0)
    head = "".join(f"<th>{escape(str(c))}</th>" for c in col_labels)
    body = "".join(
        "<tr><th>" + escape(str(label)) + "</th>"
        + "".join(f'<td style="{shade(v, vmax)}">{escape(fmt.format(v))}</td>' for v in row) + "</tr>"
        for label, row in zip(row_labels, values, strict=True)
    )
    return (f'<table class="bs-heat"><caption>{escape(caption)}</caption><tr><th></th>{head}</tr>{body}</table>')


def shaded_tokens(tokens: Sequence[str], scores: Sequence[float], title: str) -> str:
    vmax = max((abs(s) for s in scores), default=0.0)
    spans = "".join(f'<span title="{escape(f"{s:+.4f}")}" style="{shade(s, vmax)}">{escape(t)}</span>'
                    for t, s in zip(tokens, scores, strict=True))
    return f'<div class="bs-tokens"><h4>{escape(title)}</h4><pre>{spans}</pre></div>'


def page(title: str, body: str) -> str:
    style = ("body{font-family:sans-serif;margin:2em}table.bs-heat{border-collapse:collapse;margin:1em 0}"
             "table.bs-heat td,table.bs-heat th{border:1px solid #ddd;padding:2px 6px;text-align:right}"
             ".bs-tokens pre{white-space:pre-wrap;font-size:1.1em}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>")
