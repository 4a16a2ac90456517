"""Plain data for the renderers: frames or empty, JSON-ready records and values."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

import pandas as pd

from beyondscale.report.format import as_float, is_missing


def as_frame(df: pd.DataFrame | None) -> pd.DataFrame:
    return df if isinstance(df, pd.DataFrame) else pd.DataFrame()


def records(df: pd.DataFrame | None) -> list[dict[str, Any]]:
    df = as_frame(df)
    return [jsonable(r) for r in df.astype(object).where(df.notna(), None).to_dict(orient="records")]


def jsonable(obj: Any) -> Any:
    """Plain JSON types only (numpy scalars -> Python, NaN -> None, timestamps -> ISO strings)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj
    if hasattr(obj, "item") and not isinstance(obj, pd.DataFrame):
        try:
            return jsonable(obj.item())
        except (TypeError, ValueError):
            pass
    if isinstance(obj, float):
        return as_float(obj)
    if isinstance(obj, pd.Timestamp | _dt.datetime | _dt.date):
        return obj.isoformat()
    if isinstance(obj, pd.DataFrame):
        return records(obj)
    if is_missing(obj):
        return None
    return str(obj)

