"""State shared by the analysis steps of one `analyze` call: the model table, bootstrap settings, notes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from beyondscale.analysis.fits import FitResult


@dataclass
class Context:
    table: pd.DataFrame
    n_boot: int
    seed: int
    min_gain: float | None
    fit_cache: dict[tuple, tuple[FitResult, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = dict(zip(self.table["model_key"], self.table["model"], strict=True))
        self.size = dict(zip(self.table["model_key"], self.table["size"].astype(float), strict=True))
        self.order = list(self.table["model_key"])
