"""Report rendering: self-contained HTML, escaping of hostile names, empty analyses, Markdown and JSON shapes."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from beyondscale.analysis.types import Analysis
from beyondscale.report import render_html, render_json, render_markdown, write_report
from beyondscale.report.figures import figures_json, log2_axis
from beyondscale.report.render import md_table

EVIL_MODEL = "<script>alert(1)</script>"
EVIL_TASK = '"><img src=x onerror=alert(1)>'
COST_AXES = ("joules_per_token", "usd_per_1m_tokens", "latency_ms_per_item")


def make_inputs(*, evil: bool = False, n_models: int = 4) -> dict[str, Any]:
    """A hand-built Analysis and store frames covering every report section (no model is run)."""
    names = ["tiny-1M", "small-8M", "mid-64M", "big-512M", "huge-4B", "giant-32B"][:n_models]
    if evil:
        names[1] = EVIL_MODEL
    keys = [f"k{i}" for i in range(n_models)]
    params = [2.0 ** (20 + 3 * i) for i in range(n_models)]
    tasks = {"arc_easy": ["acc", "acc_norm"], (EVIL_TASK if evil else "wikitext"): ["bits_per_byte"]}
    mc_task, lm_task = list(tasks)
    models = pd.DataFrame({
        "model_key": keys, "model": names, "family": "demo", "ref": [f"hf:demo/{n}" for n in names],
        "params_total": params, "params_embedding": [p * 0.2 for p in params],
        "params_non_embedding": [p * 0.8 for p in params], "params_active": params,
        "flops_per_token": [2 * p * 0.8 for p in params], "bytes_on_disk": [2 * p for p in params],
        "dtype": "bfloat16", "architecture": "LlamaForCausalLM", "max_context": 2048,
        "training_tokens": [20 * p for p in params], "training_flops": np.nan,
    })
    quality = {
        (mc_task, "acc"): [0.31 + 0.09 * i for i in range(n_models)],
        (mc_task, "acc_norm"): [0.33 + 0.08 * i - 0.02 * (i == 3) for i in range(n_models)],
        (lm_task, "bits_per_byte"): [1.6 - 0.18 * i for i in range(n_models)],
        (mc_task, "ece"): [0.12 - 0.02 * i for i in range(n_models)],
    }
    scores = pd.DataFrame([
        {"model_key": k, "model": m, "task": t, "metric": met, "value": vals[i], "stderr": 0.012 + 0.001 * i,
         "n_items": 500}
        for (t, met), vals in quality.items() for i, (k, m) in enumerate(zip(keys, names, strict=True))
    ])
    eff_rows = []
    for i, (k, m) in enumerate(zip(keys, names, strict=True)):
        for t in tasks:
            source = "rapl" if i == 0 else "estimate:tdp"
            eff_rows.append({
                "model_key": k, "model": m, "task": t, "seconds": 10.0 * 2**i, "tokens_in": 200_000,
                "tokens_out": 0, "tokens_per_s": 20_000 / 2**i, "latency_ms_per_item": 20.0 * 2**i,
                "peak_memory_bytes": 2 * params[i] + 3e8, "energy_j": 300.0 * 2**i, "energy_source": source,
                "joules_per_token": 0.0015 * 2**i, "gco2e_per_1k_tokens": 0.0002 * 2**i,
                "usd_per_1m_tokens": 0.02 * 2**i, "usd_per_correct": 1e-5 * 2**i,
                "mfu": 0.05 + 0.05 * i, "cost_source": "price:cpu-hour",
            })
    efficiency = pd.DataFrame(eff_rows)
    lb = models[["model", "model_key", "params_total", "params_active", "flops_per_token"]].copy()
    for (t, met), vals in quality.items():
        if met != "ece" and met != "acc":
            lb[f"{t}/{met}"] = vals
    first = efficiency[efficiency["task"] == mc_task].set_index("model_key")
    for col in ("tokens_per_s", "latency_ms_per_item", "peak_memory_bytes", "joules_per_token", "energy_source",
                "gco2e_per_1k_tokens", "usd_per_1m_tokens", "usd_per_correct", "mfu"):
        lb[col] = list(first.loc[keys, col])

    curves, bands, fits, marginal, knees, pareto = [], [], [], [], [], []
    for (t, met), vals in quality.items():
        if met == "ece":
            continue
        for axis in ("params_total", "flops_per_token"):
            xs = list(models[axis])
            for i in range(n_models):
                curves.append({"task": t, "metric": met, "axis": axis, "model": names[i], "x": xs[i],
                               "y": vals[i], "y_stderr": 0.012})
            if met == "acc_norm" and axis == "params_total":
                grid = np.geomspace(xs[0], xs[-1], 40)
                s_inf, a, alpha = 0.8, 3.0, 0.12
                for x in grid:
                    y = s_inf - a * x**-alpha
                    bands.append({"task": t, "metric": met, "axis": axis, "x": x, "y_fit": y,
                                  "y_low": y - 0.03, "y_high": y + 0.03})
                for p, v in (("s_inf", s_inf), ("A", a), ("alpha", alpha)):
                    fits.append({"task": t, "metric": met, "axis": axis, "form": "score", "param": p, "value": v,
                                 "ci_low": v * 0.8, "ci_high": v * 1.2, "n_points": n_models, "status": "ok",
                                 "reason": ""})
                knees.append({"task": t, "metric": met, "axis": axis, "model": names[2], "x": xs[2],
                              "method": "threshold", "threshold": 0.01})
            else:
                fits.append({"task": t, "metric": met, "axis": axis, "form": "score", "param": None,
                             "value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n_points": n_models,
                             "status": "skipped", "reason": "fewer than 4 distinct sizes"})
            for i in range(n_models - 1):
                d = math.log2(xs[i + 1] / xs[i])
                gain = vals[i + 1] - vals[i]
                marginal.append({"task": t, "metric": met, "axis": axis, "from_model": names[i],
                                 "to_model": names[i + 1], "x_from": xs[i], "x_to": xs[i + 1], "doublings": d,
                                 "gain": gain, "gain_per_doubling": gain / d, "source": "adjacent"})
        if met == "acc":
            continue
        for cost in COST_AXES:
            costs = list(first[cost]) if cost in first else []
            for i in range(n_models):
                pareto.append({"task": t, "metric": met, "cost_axis": cost, "model": names[i], "quality": vals[i],
                               "cost": costs[i], "on_frontier": i != 3})
    paired = []
    for i in range(n_models - 1):
        flagged = i == 2
        paired.append({"task": mc_task, "metric": "acc_norm", "model_a": names[i], "model_b": names[i + 1],
                       "n_items": 500, "effect": -0.02 if flagged else 0.08, "ci_low": -0.05 if flagged else 0.05,
                       "ci_high": 0.01 if flagged else 0.11, "p_value": 0.21 if flagged else 1e-5,
                       "test": "mcnemar", "significant": not flagged,
                       "flag": "bigger but not significantly better" if flagged else ""})
    calibration = []
    for i, m in enumerate(names):
        for b in range(10):
            conf = 0.25 + 0.07 * b
            calibration.append({"model": m, "task": mc_task, "bin": b, "confidence": conf,
                                "accuracy": min(1.0, conf * (0.8 + 0.05 * i)), "count": 50})
    analysis = Analysis(
        verdict=[f"{names[2]} is the knee: beyond it each doubling buys less than 1 point of acc_norm.",
                 f"{names[3]} is bigger but not significantly better than {names[2]} on {mc_task}."],
        leaderboard=lb,
        curves=pd.DataFrame(curves), fits=pd.DataFrame(fits), fit_bands=pd.DataFrame(bands),
        marginal=pd.DataFrame(marginal), knees=pd.DataFrame(knees), paired=pd.DataFrame(paired),
        pareto=pd.DataFrame(pareto), calibration=pd.DataFrame(calibration),
        compute_optimal=pd.DataFrame({"C": [1e18, 1e20], "N_opt": [4e7, 4e8], "D_opt": [8e8, 8e9]}),
        recommendation={"model": names[2], "reason": f"best acc_norm per joule on {mc_task}",
                        "constraints": {"max_latency_ms": 200, "task": mc_task},
                        "candidates": [{"model": names[2], "acc_norm": 0.49}, names[1]]},
        notes=[f"No fit for {lm_task}/bits_per_byte: fewer than 4 distinct sizes.",
               f"Energy for {names[1]} is an estimate (no RAPL counters)."],
    )
    return {"analysis": analysis, "models": models, "scores": scores, "efficiency": efficiency,
            "run_info": {"machine": "test box", "seed": 0, "models": names}}


def _render(kind: str = "html", **kw: Any) -> Any:
    inp = make_inputs(**kw)
    fn = {"html": render_html, "md": render_markdown, "json": render_json}[kind]
    return fn(inp["analysis"], models=inp["models"], scores=inp["scores"], efficiency=inp["efficiency"],
              run_info=inp["run_info"], title="Test report")


def test_html_is_self_contained_with_plotly_inlined_once() -> None:
    page = _render()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]+src\s*=", page, re.I), "no external scripts"
    assert not re.search(r"<link[^>]+href\s*=\s*[\"']?(https?:)?//", page, re.I), "no external stylesheets"
    outside_lib = re.sub(r"<script>/\*\*\n\* plotly\.js v.*?</script>", "", page, flags=re.S)
    assert len(outside_lib) < len(page) - 1_000_000
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", outside_lib, re.I), "no remote resources"
    assert page.count("Plotly.newPlot(el") == 1  # our loader
    assert page.count("* plotly.js v") == 1  # the library banner: inlined exactly once
    n_divs = len(re.findall(r'class="bs-plot"', page))
    figs = json.loads(re.search(r'<script type="application/json" id="bs-figures">(.*?)</script>', page, re.S)
                      .group(1))
    assert n_divs == len(figs) > 10
    for section in ("verdict", "leaderboard", "returns", "paired", "pareto", "calibration", "efficiency", "bias",
                    "notes", "methods"):
        assert f'id="{section}"' in page


def test_html_sections_in_order_and_content() -> None:
    page = _render()
    order = [page.index(f'<section id="{s}"') for s in ("verdict", "leaderboard", "returns", "paired", "pareto",
                                                        "calibration", "efficiency", "bias", "notes", "methods")]
    assert order == sorted(order)
    assert "bigger but not significantly better" in page and 'class="flag"' in page
    assert 'class="badge"' in page and "estimated, not measured" in page  # est. badges + legend
    assert "± " in page  # stderr on quality
    assert "No bias or interpretability probes were run" in page
    assert "ECE 0.12" in page  # ECE in a reliability diagram title
    assert "knee" in page.lower()


def test_hostile_names_are_escaped_everywhere() -> None:
    page = _render(evil=True)
    assert EVIL_MODEL not in page
    assert "<img" not in page
    assert "onerror=alert(1)>" not in page
    assert page.count("<script") == 3  # figures JSON, plotly.js, loader: nothing injected
    # the names are still shown, escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page or "&quot;&gt;&lt;img" in page
    md = _render("md", evil=True)
    assert EVIL_MODEL not in md and "<img" not in md
    doc = _render("json", evil=True)
    assert EVIL_MODEL in json.dumps(doc, ensure_ascii=False)  # JSON keeps the data verbatim


def test_figures_json_cannot_close_the_script() -> None:
    from beyondscale.report.figures import Figure

    fig = Figure("fig-x", "t", {"data": [{"type": "scatter", "name": "</script><script>alert(1)</script><!--",
                                          "x": [1.0, float("nan")], "y": [np.float64(2.0), None]}]})
    s = figures_json([fig])
    assert "<" not in s and ">" not in s
    back = json.loads(s)
    assert back["fig-x"]["data"][0]["name"].startswith("</script>")
    assert back["fig-x"]["data"][0]["x"] == [1.0, None]


def test_empty_analysis_renders_everywhere(tmp_path: Path) -> None:
    empty = Analysis()
    page = render_html(empty, models=pd.DataFrame(), scores=pd.DataFrame(), efficiency=pd.DataFrame())
    assert "No models have been scored yet" in page
    assert "No returns curves" in page and "No Pareto frontiers" in page and "No reliability diagrams" in page
    assert "Plotly.newPlot" not in page  # no figures -> no 4.8 MB library
    md = render_markdown(empty)
    assert md.startswith("# beyondscale report") and "## Method notes" in md
    doc = render_json(empty)
    json.dumps(doc, allow_nan=False)
    assert doc["leaderboard"] == [] and doc["models"] == []
    for fmt in ("html", "md", "json"):
        out = write_report(tmp_path / f"r.{fmt}", fmt, empty)
        assert out.stat().st_size > 0


def test_frames_with_only_some_columns_do_not_crash() -> None:
    a = Analysis(curves=pd.DataFrame({"task": ["t"], "metric": ["acc"], "axis": ["params_total"], "model": ["m"],
                                      "x": [np.nan], "y": [0.5], "y_stderr": [None]}),
                 pareto=pd.DataFrame({"task": ["t"], "metric": ["acc"], "cost_axis": ["mfu"], "model": ["m"],
                                      "quality": [0.5], "cost": [None], "on_frontier": [None]}),
                 leaderboard=pd.DataFrame({"model": ["m"], "model_key": ["k"]}))
    scores = pd.DataFrame({"model_key": ["k"], "model": ["m"], "task": ["t"], "metric": ["acc"], "value": [0.5],
                           "stderr": [np.nan], "n_items": [3]})
    page = render_html(a, scores=scores)
    assert "Plotly.newPlot" not in page  # nothing plottable
    render_markdown(a, scores=scores)


def test_leaderboard_falls_back_to_scores_when_analysis_has_none() -> None:
    inp = make_inputs()
    a = Analysis()
    md = render_markdown(a, models=inp["models"], scores=inp["scores"])
    assert "arc_easy/acc_norm" in md and "tiny-1M" in md and "±" in md


def test_markdown_shape() -> None:
    md = _render("md")
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads == ["## Verdict", "## Leaderboard", "## Paired significance", "## Notes", "## Method notes"]
    assert "(est.)" in md and "**Recommendation:** mid-64M" in md
    table = [line for line in md.split("## Leaderboard")[1].split("##")[0].splitlines() if line.startswith("|")]
    widths = {line.count(" | ") for line in table}
    assert len(widths) == 1 and len(table) == 2 + 4  # header, separator, 4 models
    assert "ECE" in md and "McNemar" in md


def test_md_table_escapes_pipes_and_newlines() -> None:
    out = md_table(["a|b", "n"], [["x\ny", 1], ["<b>", None]], numeric=[False, True])
    lines = out.splitlines()
    assert lines[0] == "| a\\|b | n |" and lines[1] == "| --- | ---: |"
    assert lines[2] == "| x y | 1 |" and lines[3] == "| &lt;b&gt; |  |"


def test_json_shape_and_roundtrip(tmp_path: Path) -> None:
    doc = _render("json")
    for key in ("verdict", "recommendation", "notes", *Analysis.FRAMES, "models", "scores", "efficiency",
                "title", "run_info"):
        assert key in doc
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text)["title"] == "Test report"
    assert doc["models"][0]["training_flops"] is None  # NaN -> null
    inp = make_inputs()
    path = write_report(tmp_path / "sub" / "results.json", None, inp["analysis"], models=inp["models"])
    assert json.loads(path.read_text())["models"][0]["model"] == "tiny-1M"
    assert not list(path.parent.glob(".*tmp"))  # the temp file was renamed away


def test_write_report_is_atomic_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.md"
    target.write_text("old")

    def boom(*_a: Any, **_k: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        write_report(target, "md", Analysis())
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_extra_sections_hook_escapes_frames() -> None:
    extra = [{"title": "Bias: CrowS-Pairs", "text": "stereotype preference <b>", "frames": {
        "by category": pd.DataFrame({"model": [EVIL_MODEL], "category": ["gender"], "score": [0.61]})}}]
    page = render_html(Analysis(), extra_sections=extra)
    assert "Bias: CrowS-Pairs" in page and "No bias or interpretability probes" not in page
    assert EVIL_MODEL not in page and "stereotype preference &lt;b&gt;" in page
    md = render_markdown(Analysis(), extra_sections=extra)
    assert "## Bias: CrowS-Pairs" in md


def test_log2_axis_ticks_are_powers_of_two() -> None:
    ax = log2_axis([2.0**20, 2.0**29, None])
    assert ax["type"] == "log"
    assert all(math.log2(t).is_integer() for t in ax["tickvals"]) and len(ax["tickvals"]) <= 9
    assert log2_axis([None]) == {"type": "linear"}


def test_extra_section_figures_are_plotted_and_escaped(tmp_path):
    """Probe figures handed to the extra-sections hook get a plot box and a place in the figure payload."""
    import json as _json
    import re as _re

    import plotly.graph_objects as go

    from beyondscale.analysis.types import Analysis
    from beyondscale.report import write_report

    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], text=["&lt;script&gt;x"], mode="markers+text"))
    fig.update_layout(title="prediction depth against parameters")
    sections = [{"title": "Interpretability", "text": "t", "figures": [fig],
                 "frames": {"h": pd.DataFrame({"model": ["<b>m</b>"], "v": [1.0]})}}]
    for fmt in ("html", "md", "json"):
        write_report(tmp_path / f"r.{fmt}", fmt, Analysis(), extra_sections=sections)
    page = (tmp_path / "r.html").read_text()
    assert 'id="extra-0-0"' in page and "<b>m</b>" not in page
    payload = _re.search(r'id="bs-figures">(.*?)</script>', page, _re.S).group(1)
    assert _json.loads(payload)["extra-0-0"]["data"][0]["y"] == [3, 4]


def test_returns_figure_shows_other_families_beside_the_law_not_in_it() -> None:
    """One law per family: the family that carries the fit is one trace, the other models a labelled trace apart."""
    import pandas as pd

    from beyondscale.report.figures import returns_figures

    curves = pd.DataFrame({"task": "t", "metric": "bits_per_byte", "axis": "params_total",
                           "model": ["r0", "r1", "r2", "r3", "real"], "x": [1e4, 2e4, 4e4, 8e4, 1e8],
                           "y": [3.4, 3.3, 3.2, 3.1, 0.9], "y_stderr": 0.01,
                           "in_fit": [True, True, True, True, False]})
    (fig,) = returns_figures(curves, pd.DataFrame(columns=["task", "metric", "axis", "x", "y_fit", "y_low", "y_high"]),
                             pd.DataFrame(columns=["task", "metric", "axis", "x", "model", "method"]))
    points = {t["name"]: t for t in fig.figure["data"] if t.get("type") == "scatter" and "text" in t}
    assert points["measured (± stderr)"]["text"] == ["r0", "r1", "r2", "r3"]
    assert points["other families (not in the fit)"]["text"] == ["real"]
