"""Scores belong to (model key, task key, item), not to a run: re-running an eval adds no score rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from beyondscale import api

SCORE_TABLES = ("items", "item_scores", "metrics", "efficiency", "measurements")


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in SCORE_TABLES}
    finally:
        conn.close()


def test_rerunning_a_finished_eval_adds_no_score_rows(tiny_llama, mc_task, rolling_task, tmp_path):
    store = tmp_path / "s.db"
    settings = api.EvalSettings(limit=4, batch_size=2)
    first = api.evaluate([str(tiny_llama)], [str(mc_task), str(rolling_task)], store=store, settings=settings,
                         show_progress=False)
    once = counts(store)
    # Independent expectation: 4 docs per task, 2 tasks; mc has 2 metrics, rolling has 3.
    assert once["items"] == 8 and once["item_scores"] == 8 and once["metrics"] == 5 and once["efficiency"] == 2
    for _ in range(3):
        again = api.evaluate([str(tiny_llama)], [str(mc_task), str(rolling_task)], store=store, settings=settings,
                             show_progress=False)
    assert counts(store) == once
    assert [r.metrics for r in again.results] == [r.metrics for r in first.results]
