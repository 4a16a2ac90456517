"""The report in a real browser: headless Chromium opens report.html from disk, offline.

Needs /usr/bin/chromium (Debian package `chromium`; `make test` installs it). Screenshots go to
$BEYONDSCALE_ARTIFACTS (default ./artifacts/) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from beyondscale.analysis.types import Analysis
from beyondscale.report import write_report
from browser import artifacts_dir, check_report_in_browser, find_chromium

try:
    from test_report import EVIL_MODEL, EVIL_TASK, make_inputs
except ImportError:  # tests/ became a package
    from .test_report import EVIL_MODEL, EVIL_TASK, make_inputs

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_chromium() is None,
                       reason="headless Chromium not found at /usr/bin/chromium (apt-get install -y chromium; "
                              "`make test` does) or $BEYONDSCALE_CHROMIUM"),
]


def _write(tmp_path: Path, name: str, **kw: object) -> Path:
    inp = make_inputs(**kw)
    return write_report(tmp_path / name, "html", inp["analysis"], models=inp["models"], scores=inp["scores"],
                        efficiency=inp["efficiency"], run_info=inp["run_info"], title="beyondscale browser test")


def test_every_figure_renders_without_errors_offline(tmp_path: Path) -> None:
    path = _write(tmp_path, "report.html")
    shot = artifacts_dir() / "report.png"
    res = check_report_in_browser(path, shot)
    assert res["console_errors"] == []
    assert res["external_requests"] == []  # self-contained: nothing fetched from the network
    assert res["dialogs"] == []
    assert res["n_figures"] > 10
    assert res["n_rendered"] == res["n_figures"]
    assert res["title"] == "beyondscale browser test"
    assert shot.stat().st_size > 50_000


def test_hostile_names_show_as_text_and_never_run(tmp_path: Path) -> None:
    path = _write(tmp_path, "report_injection.html", evil=True)
    res = check_report_in_browser(path, artifacts_dir() / "report_injection.png", expressions={
        "images": "document.querySelectorAll('img').length",
        "scripts": "document.querySelectorAll('script').length",
        "page_text": "document.body.innerText",
        "svg_text": "Array.from(document.querySelectorAll('svg text')).map(t => t.textContent).join('\\n')",
        "injected": "typeof window.__pwned",
    })
    assert res["dialogs"] == [], "alert() ran: script injection"
    assert res["console_errors"] == []
    assert res["n_rendered"] == res["n_figures"] > 10
    values = res["values"]
    assert values["images"] == 0  # the <img onerror> never became an element
    assert values["scripts"] == 3  # figures JSON, plotly.js, loader
    assert EVIL_MODEL in values["page_text"]  # shown literally in tables and headings
    assert EVIL_TASK in values["page_text"]
    assert EVIL_MODEL in values["svg_text"]  # and literally inside the plotly figures
    assert EVIL_TASK in values["svg_text"]


def test_empty_report_opens_cleanly(tmp_path: Path) -> None:
    path = write_report(tmp_path / "empty.html", "html", Analysis())
    res = check_report_in_browser(path, artifacts_dir() / "report_empty.png")
    assert res["console_errors"] == [] and res["external_requests"] == []
    assert res["n_figures"] == 0 and res["n_rendered"] == 0


def test_every_section_renders_with_its_content(tmp_path: Path) -> None:
    """Each top-level section has its heading and no 'empty' placeholder; the extra sections' tables show."""
    import pandas as pd

    from browser import SECTIONS_JS

    inp = make_inputs()
    extra = [{"title": "Study section", "text": "A table from the extra_sections hook.",
              "frames": {"rungs": pd.DataFrame({"model": ["a", "b"], "params": [1.0, 2.0]})}}]
    path = write_report(tmp_path / "sections.html", "html", inp["analysis"], models=inp["models"],
                        scores=inp["scores"], efficiency=inp["efficiency"], run_info=inp["run_info"],
                        title="beyondscale sections test", extra_sections=extra)
    res = check_report_in_browser(path, artifacts_dir() / "report_sections.png", expressions={"sections": SECTIONS_JS})
    assert res["console_errors"] == [] and res["external_requests"] == []
    sections = {s["id"]: s for s in res["values"]["sections"]}
    expected = ["verdict", "leaderboard", "returns", "paired", "pareto", "calibration", "efficiency", "bias", "notes",
                "methods"]
    assert list(sections) == expected
    for sid in expected:
        assert sections[sid]["title"] and sections[sid]["height"] > 40, sections[sid]
    for sid in ("verdict", "leaderboard", "returns", "paired", "pareto", "calibration", "efficiency", "bias"):
        assert sections[sid]["empty"] == [], sections[sid]
        assert sections[sid]["n_rendered"] == sections[sid]["n_plots"]
    assert sections["bias"]["subsections"] == ["Study section"] and sections["bias"]["n_tables"] == 1
