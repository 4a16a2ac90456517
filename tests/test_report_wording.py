"""The report shows the verdict's own sentences (the same the CLI prints), framing facts next to parameters,
estimate badges wherever a *_source says 'estimate', batch time labelled as such, and p at its floor."""

from __future__ import annotations

import html
import re

from beyondscale.report import render_html, render_json, render_markdown
from beyondscale.report.markdown import md_escape
from test_analysis_verdict import _cost_pair, _mixed, _same_size, run


def test_html_markdown_and_terminal_show_the_same_sentences():
    frames = _mixed()
    an = run(frames, primary="pattern")
    page = render_html(an, models=frames[0], scores=frames[1], efficiency=frames[2])
    md = render_markdown(an, models=frames[0], scores=frames[1], efficiency=frames[2])
    assert len(an.verdict) >= 3
    for line in an.verdict:  # Analysis.verdict is what the CLI prints
        assert html.escape(line, quote=False) in page
        assert f"- {md_escape(line)}" in md
    js = render_json(an)
    assert js["verdict"] == an.verdict and {f["type"] for f in js["findings"]} >= {"Recommendation", "SizeStep"}


def test_framing_facts_next_to_parameters_and_a_note_under_any_title():
    frames = _cost_pair("rapl", families=("smollm2", "gemma3"))
    an = run(frames)
    page = render_html(an, models=frames[0], scores=frames[1], title="what twice the parameters buys")
    heads = re.findall(r"<th[^>]*>(?:<span class=\"over\">[^<]*</span>)?([^<]*)</th>", page)
    i = heads.index("params")
    assert heads[i + 1:i + 8] == ["active params", "FLOPs/token", "family", "architecture", "vocab", "dtype", "quant."]
    assert "262,144" in page and "gemma3" in page and "Q8_0" in page
    assert "it does not measure what scale alone buys" in page
    md = render_markdown(an, models=frames[0], scores=frames[1])
    assert "it does not measure what scale alone buys" in md and "| family |" in md


def test_estimate_badges_follow_every_source_column():
    frames = _cost_pair("rapl")
    m, s, e, i, t = frames
    e = e.assign(gco2e_per_1k_tokens=0.5, carbon_source="estimate:grid-default", usd_per_1m_tokens=0.2,
                 cost_source="estimate:price-default")
    an = run((m, s, e, i, t))
    md = render_markdown(an, models=m, scores=s, efficiency=e)
    lb = md.split("## Leaderboard")[1].split("## Paired")[0]
    header = [c.strip() for c in lb.strip().splitlines()[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lb.strip().splitlines()[2:4]]
    col = {name: k for k, name in enumerate(header)}
    for row in rows:
        assert row[col["gCO2e/1k tok"]].endswith("(est.)") and row[col["$/1M tok"]].endswith("(est.)")
        assert not row[col["J/token"]].endswith("(est.)")  # rapl: measured
    assert "ms/item (batch time)" in header


def test_paired_table_prints_the_floor_and_holm():
    frames = _same_size("Intact", "Damaged")
    an = run(frames, n_boot=1000)
    md = render_markdown(an, models=frames[0], scores=frames[1])
    paired = md.split("## Paired significance")[1].split("##")[0]
    row = paired.strip().splitlines()[2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert "p (Holm)" in paired and cells[7] == cells[8] == "&lt;0.001"  # Markdown escapes '<'
    assert "p=0.001" not in md
    assert "Intact significantly better" in paired and "bigger but not" not in paired


def test_estimated_cost_axes_are_labelled_in_figures():
    from beyondscale.report.html import build_figures

    frames = _cost_pair("estimate:tdp")
    an = run(frames)
    figs = build_figures(an, frames[1], frames[2])
    energy = [f for f in figs["pareto"] if f.keys.get("cost_axis") == "joules_per_token"]
    assert energy and all("(estimated)" in f.figure["layout"]["xaxis"]["title"]["text"] for f in energy)
    measured = build_figures(run(_cost_pair("rapl")), None, _cost_pair("rapl")[2])
    assert not any("(estimated)" in f.figure["layout"]["xaxis"]["title"]["text"] for f in measured["pareto"])


def test_terminal_paired_columns_print_the_floor():
    from beyondscale.report.tables import paired_for_terminal

    an = run(_same_size("Intact", "Damaged"), n_boot=1000)
    t = paired_for_terminal(an.paired)
    assert list(t["p"]) == ["<0.001"] and list(t["p_holm"]) == ["<0.001"]
    assert an.paired["p_value"].iloc[0] == 1 / 10_001  # the frame keeps the number (Monte Carlo floor)


def test_a_floor_fitted_near_zero_is_said_to_be_unmeasured():
    """E = 2e-9 bits per byte under rungs at 3.1 is not a floor the ladder measured; E = 2.1 under 3.1 is."""
    from beyondscale.analysis.findings import LadderLaw
    from beyondscale.analysis.wording import word

    near_zero = LadderLaw(4, 2.5e4, 4.3e5, 0.05, (0.04, 0.06), 2.14e-9, lowest=3.144, flops_low=1e10, flops_high=1e12)
    measured = LadderLaw(4, 2.5e4, 4.3e5, 0.05, (0.04, 0.06), 2.1, lowest=3.144, flops_low=1e10, flops_high=1e12)
    assert "near zero: these runs are too far above their floor" in word(near_zero)
    assert "near zero" not in word(measured) and word(measured).endswith("E = 2.1 nats per token.")
