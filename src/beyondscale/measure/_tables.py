"""Loading of the small CSV tables shipped in `measure/data/` (comment lines start with '#')."""

from __future__ import annotations

import csv
import functools
import io
import re
from importlib import resources


@functools.cache
def load_table(name: str) -> tuple[dict[str, str], ...]:
    """Rows of `data/<name>` as dicts; cached because the tables never change at run time."""
    text = resources.files("beyondscale.measure").joinpath("data", name).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return tuple(csv.DictReader(io.StringIO("\n".join(lines))))


def normalize_brand(brand: str) -> str:
    """Lower-case a CPU/GPU brand string and drop trademark noise so table patterns match."""
    s = brand.lower()
    s = re.sub(r"\((r|tm)\)", " ", s)
    s = re.sub(r"\b(cpu|processor)\b", " ", s)
    s = re.sub(r"\d+-core", " ", s)
    return re.sub(r"\s+", " ", s).strip()


def longest_match(brand: str, rows: tuple[dict[str, str], ...]) -> dict[str, str] | None:
    """The row whose `pattern` is the longest substring of `brand` (normalized), or None."""
    b = normalize_brand(brand)
    best: dict[str, str] | None = None
    for row in rows:
        pat = row["pattern"].strip().lower()
        if pat and pat in b and (best is None or len(pat) > len(best["pattern"])):
            best = row
    return best


def opt_float(value: str | None) -> float | None:
    """Parse a CSV cell that may be empty."""
    if value is None or not value.strip():
        return None
    return float(value)
