"""`--budget-minutes` through the whole study at a tiny size: planted costs stand in for the calibration (which
times real models for about a minute), two tiny local models for the real ones. Slow: marked `slow`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from beyondscale import api
from beyondscale.quickstart.budget import Costs
from beyondscale.quickstart.plan import EXTRA_RUNGS
from conftest import build_tiny_model
from test_quickstart_pipeline import prose_corpus, tiny_plan

pytestmark = pytest.mark.slow

TASKS = ("heldout_source_bpb", "qs_bpb", "qs_nextsent", "qs_pattern")


def planted(*_args, **_kwargs) -> Costs:
    """Rungs and items cheap, a training step dear: 10 minutes buy 6 rungs, 34 items per task and a few steps."""
    return Costs(step_s=(15.0,) * 6, moe_step_s=15.0, real_item_s=dict.fromkeys(TASKS, 0.1),
                 trained_item_s=dict.fromkeys(TASKS, 0.0), fixed_measured_s=1.0, fixed_estimate_s=1.0)


def test_a_budgeted_study_grows_its_plan_and_says_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import beyondscale.quickstart.calibrate as calibrate

    monkeypatch.setattr(calibrate, "measure_costs", planted)
    real = {"tiny-llama": f"tiny-llama={build_tiny_model(tmp_path / 'tiny-llama', 'llama')}"}
    plan = tiny_plan()
    plan.budgeted, plan.probe_real_models = True, False
    said: list[str] = []
    kw = dict(store=tmp_path / "s.db", out=tmp_path / "r.html", work_dir=tmp_path / "study",
              corpus=str(prose_corpus(tmp_path / "c.jsonl")), plan=plan, real_models=real, show_progress=False)
    result = api.quickstart(**kw, say=said.append)
    assert list(result.stage_seconds)[:3] == ["plan", "corpus", "evaluate"]
    dense = sorted(n for n in result.training_records if n.startswith("dense-"))
    assert len(dense) == 6 and dense[-1].endswith(f"d{EXTRA_RUNGS[-1][0]}")
    with sqlite3.connect(tmp_path / "s.db") as c:
        items = dict(c.execute("SELECT t.name, COUNT(DISTINCT i.doc_id) FROM items i JOIN tasks t ON "
                               "t.task_key = i.task_key GROUP BY t.name").fetchall())
    assert all(items[t] >= 34 or t == "qs_bpb" for t in TASKS), items  # qs_bpb: what the prose corpus offers
    tokens = {r["tokens"] for r in result.training_records.values()}
    assert len(tokens) == 1 and tokens.pop() > plan.tokens  # the rest of the clock went to tokens
    note = [n for n in result.analysis.notes if n.startswith("budget 10 min: planned")]
    assert len(note) == 1 and "for 6 rungs" in note[0] and "; spent " in note[0]
    assert any(line.startswith("budget 10 min: planned") and "with the report" in line for line in said)
    assert "budget split" in (tmp_path / "r.html").read_text(encoding="utf-8")

    # the same command again: the plan is read back, not measured again, and nothing trains again
    monkeypatch.setattr(calibrate, "measure_costs", lambda *a, **k: pytest.fail("measured again"))
    with sqlite3.connect(tmp_path / "s.db") as c:
        runs = c.execute("SELECT COUNT(*) FROM lab_training_runs").fetchone()[0]
    again = api.quickstart(**kw, say=said.append)
    assert "plan" not in again.stage_seconds and again.training_records.keys() == result.training_records.keys()
    with sqlite3.connect(tmp_path / "s.db") as c:
        assert c.execute("SELECT COUNT(*) FROM lab_training_runs").fetchone()[0] == runs
    assert any("an earlier run's plan reused" in line for line in said)
