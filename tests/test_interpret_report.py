"""Probe results joined with model size facts, and the report sections built from them."""

from __future__ import annotations

import json

import pytest
from transformers import AutoModelForCausalLM

from beyondscale.interpret import results
from beyondscale.report import probes as report
from test_bias_cli import call
from test_bias_crows import write_csv


def test_probe_vs_size_and_sections(monkeypatch, capsys, tiny_llama, tmp_path):
    store = tmp_path / "s.db"
    _, out, _ = call(monkeypatch, capsys, "explain", "lens", "--model", str(tiny_llama), "--text", "the cat sat",
                     "--json", "--store", str(store))
    lens = json.loads(out)
    _, out, _ = call(monkeypatch, capsys, "bias", "crows-pairs", "--model", str(tiny_llama), "--data",
                     str(write_csv(tmp_path / "c.csv")), "--json", "--store", str(store))
    crows = json.loads(out)
    call(monkeypatch, capsys, "explain", "transparency", "--model", str(tiny_llama), "--store", str(store))
    frame = report.probe_vs_size(store)
    assert len(frame) == 1  # one model: lens, bias and transparency share its key
    row = frame.iloc[0]
    n_params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_llama).parameters())
    assert row["params_total"] == n_params
    assert row["prediction_depth"] == pytest.approx(lens["prediction_depth"])
    assert row["relative_prediction_depth"] == pytest.approx(lens["prediction_depth"] / lens["n_layers"])
    assert row["crows_pct_stereotype"] == pytest.approx(crows["pct_stereotype"])
    assert 0 <= row["transparency_checklist_score"] <= 1
    sections = report.report_sections(store)
    assert [s["title"] for s in sections] == ["Interpretability and responsibility", "Logit lens per layer",
                                              "Transparency checklist"]
    assert len(sections[1]["frames"]["per-layer curves"]) == lens["n_layers"] + 1


def test_sections_html_escapes(tmp_path):
    store = tmp_path / "s.db"
    results.put_probe(store, model_key="k1", probe="transparency", probe_version="t", data="d",
                      model_name="<img src=x onerror=alert(1)>",
                      summary={"score": 0.5, "items": [{"item": "licence", "met": False, "evidence": "<b>no</b>"}]})
    html = report.sections_html(report.report_sections(store))
    assert "<img" not in html and "<b>no" not in html and "&lt;img" in html
    assert report.report_sections(tmp_path / "empty.db") == []


def test_capability_axis_and_figures(tmp_path):
    """Bias per unit of capability: mean acc from the metrics table joins the probe headline."""
    from beyondscale.store import Store

    store = tmp_path / "s.db"
    results.put_probe(store, model_key="m1", probe="crows_pairs", probe_version="c", data="d", model_name="A",
                      summary={"pct_stereotype": 0.6, "likelihood_diff": 1.0},
                      model_record={"name": "A", "ref": {}, "identity": "i", "facts": {"params_total": 1000}})
    db = Store(store)
    for task, value in (("t1", 0.5), ("t2", 0.7)):
        db.conn.execute("INSERT INTO metrics VALUES (?, ?, 'acc', ?, NULL, 10)", ("m1", task, value))
    db.conn.execute("INSERT INTO metrics VALUES ('m1', 't1', 'acc_norm', 0.9, NULL, 10)")
    db.close()
    row = report.probe_vs_size(store).iloc[0]
    assert row["capability_mean_acc"] == pytest.approx(0.6) and row["capability_n_tasks"] == 2
    assert row["params_total"] == 1000 and row["crows_pct_stereotype"] == 0.6
    titles = [f.layout.title.text for f in report.probe_figures(store)]
    assert "crows_pct_stereotype against mean accuracy over evaluated tasks" in titles
    assert "crows_pct_stereotype against parameters" in titles
