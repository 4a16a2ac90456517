"""The trained ladder of any store reaches `beyondscale report`: the dense loss-vs-FLOPs fit, each alternative's
worth in dense compute with its interval, the generalisation gap, memorisation and the MoE's expert load.

One tiny sweep (4 dense rungs, an MoE, a curated arm, a distilled rung; about 6 s) serves the module."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

from _lab_helpers import one_thread as _lab_one_thread
from _lab_helpers import run_cli, write_corpus

one_thread = pytest.fixture(autouse=True)(_lab_one_thread)


_beyondscale = run_cli


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A tiny sweep's store (the sweep itself stores its exact-memorisation checks beside each run)."""
    yield from _with_one_thread(_sweep, tmp_path_factory)


def _with_one_thread(build, *args):
    threads = _lab_one_thread()
    next(threads)
    try:
        yield build(*args)
    finally:
        next(threads, None)


def _sweep(tmp_path_factory):
    from beyondscale.lab import sweep
    from beyondscale.lab.configs import Shape

    tmp = tmp_path_factory.mktemp("ladder")
    preset = sweep.Preset(dense=[Shape(d_model=d, n_layer=1, n_head=2, context_length=32) for d in (16, 24, 32, 48)],
                          tokens=8192, vocab_size=300, batch_size=8, lr=3e-3, eval_limit=5, memorisation_samples=8,
                          n_experts=4)
    sweep.PRESETS["tiny-report"] = preset
    raw = write_corpus(tmp / "raw.txt", 1500)
    kept = tmp / "cur" / "kept"
    kept.mkdir(parents=True)
    docs = [d for d in raw.read_text().split("\n\n") if len(d.split()) >= 8]
    (kept / "part-0.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    (tmp / "cur" / "summary.json").write_text(json.dumps({"data_hash": "abc123", "recipe": {"min_words": 8}}))
    db = tmp / "s.db"
    try:
        doc = sweep.run_sweep(str(raw), str(tmp / "sw"), preset="tiny-report", curated=str(tmp / "cur"),
                              store=str(db), device="cpu", show_progress=False)
    finally:
        sweep.PRESETS.pop("tiny-report")
    return tmp, db, doc


def test_sweep_records_reach_the_lab_tables(swept):
    _, db, doc = swept
    conn = sqlite3.connect(db)
    records = [json.loads(r) for (r,) in conn.execute("SELECT record FROM lab_training_runs")]
    assert len(records) == 7
    assert len({r["val_tokens_sha256"] for r in records}) == 1  # one shared validation set, by content
    moe = next(r for r in doc["rungs"] if r["kind"] == "moe")
    loads = conn.execute("SELECT layer, expert, load FROM lab_expert_load WHERE model_key=?",
                         (moe["model_key"],)).fetchall()
    assert len(loads) == 1 * 4  # one layer, four experts
    assert sum(load for _, _, load in loads) == pytest.approx(1.0, abs=1e-5)
    assert all(r["checks"]["memorisation"]["samples"] == 8 for r in records)


def test_report_cli_shows_the_ladder_multipliers_and_expert_load(swept, monkeypatch):
    tmp, db, doc = swept
    for name in ("r.md", "r.html"):
        assert _beyondscale(monkeypatch, "report", "--store", str(db), "--out", str(tmp / name)) == 0
    md, page = (tmp / "r.md").read_text(), (tmp / "r.html").read_text()
    assert "## The trained ladder: validation loss against training FLOPs" in md
    assert "The trained ladder: validation loss against training FLOPs" in page
    worth = [line for line in md.splitlines() if line.startswith("- Architecture: moe-4x2-d24")]
    assert len(worth) == 1 and "× dense compute (95% CI " in worth[0] and "the wall time of dense-1-d24" in worth[0]
    assert "Expert load per layer (MoE runs)" in page and "expert load per layer" in page
    assert "## Generalisation gap and memorisation against size" in md and "memorised share" in md
    # the MoE differs from the dense rungs in architecture, but the ladder's own fit is a controlled one
    assert "the trained dense ladder's fit does, because its rungs differ only in size" in md
    for rung in doc["rungs"]:
        assert rung["name"] in md


def _fit_and_multipliers(report: dict) -> tuple[dict[str, float], dict[str, dict]]:
    sections = {s["title"]: s for s in report["extra_sections"]}
    curve = sections["The trained ladder: validation loss against training FLOPs"]["frames"]
    fit = {row["parameter"]: row["value"] for row in curve["fit of the dense baseline: L(C) = E + A·C^-alpha"]}
    worth = sections["What each alternative is worth in dense compute"]["frames"]["multipliers (95% profile-t CI)"]
    return fit, {row["alternative"]: row for row in worth}


def test_reported_multiplier_equals_the_fit_inverted_by_hand(swept, monkeypatch):
    tmp, db, _ = swept
    assert _beyondscale(monkeypatch, "report", "--store", str(db), "--out", str(tmp / "r.json")) == 0
    fit, reported = _fit_and_multipliers(json.loads((tmp / "r.json").read_text()))
    stored = pd.read_sql_query("SELECT out, arch, data_variant, teacher, train_flops, val_loss, wall_s "
                               "FROM lab_training_runs", sqlite3.connect(db))
    stored["name"] = stored["out"].map(lambda p: p.rsplit("/", 1)[-1])
    dense = stored[(stored["arch"] == "dense") & (stored["data_variant"] == "raw") & stored["teacher"].isna()]
    law = lambda c: fit["E"] + fit["A"] * c ** -fit["alpha"]  # noqa: E731
    assert np.allclose(law(dense["train_flops"]), dense["val_loss"], rtol=0.03)  # the fit is of these points
    alternatives = stored.drop(dense.index)
    assert set(reported) == set(alternatives["name"])
    for _, alt in alternatives.iterrows():
        log_c = brentq(lambda x, loss=alt["val_loss"]: law(math.exp(x)) - loss, math.log(1e3), math.log(1e20),
                       xtol=1e-12)
        by_hand = math.exp(log_c) / alt["train_flops"]
        row = reported[alt["name"]]
        assert row["dense_compute_multiplier"] == pytest.approx(by_hand, rel=2e-3)
        high = math.inf if row["ci_high"] is None else row["ci_high"]  # JSON null: no upper bound (4 rungs)
        assert row["ci_low"] <= row["dense_compute_multiplier"] <= high
        matched = dense.set_index("name").loc[row["matched_dense"]]
        assert row["wall_time_vs_matched_dense"] == pytest.approx(alt["wall_s"] / matched["wall_s"])


def _run(name, val_set, flops, loss, *, arch="dense", data="raw", teacher=None, active=None, tokens=8192):
    return {"model": name, "model_key": name, "arch": arch, "data_variant": data, "data_hash": f"h-{data}",
            "teacher": teacher, "params_total": active or flops / 6 / tokens, "params_active": active or flops / 6 / tokens,
            "tokens": tokens, "train_flops": flops, "context_length": 32, "val_loss": loss, "train_loss": loss - 0.1,
            "generalisation_gap": 0.1, "memorised_share": None, "memorised": None, "memorisation_samples": None,
            "wall_s": flops / 1e9, "val_set": val_set}


def test_runs_on_another_validation_set_are_left_out_and_said_so():
    from beyondscale.analysis.ladder import ladder_findings, ladder_from_runs
    from beyondscale.analysis.wording import words

    law = lambda c: 2.0 + 300.0 * c ** -0.25  # noqa: E731
    flops = [1e9, 2e9, 4e9, 8e9]
    runs = [_run(f"d{i}", "A", c, law(c)) for i, c in enumerate(flops)]
    runs += [_run("moe", "A", 2e9, law(8e9), arch="moe", active=2e9 / 6 / 8192 + 5),
             _run("cur", "A", 2e9, law(3e9), data="curated"),
             _run("alien", "B", 4e9, 0.5)]  # far better, but on another validation set
    ladder = ladder_from_runs(pd.DataFrame(runs), n_boot=200)
    main = ladder.main
    assert list(main.dense["model"]) == ["d0", "d1", "d2", "d3"] and "alien" not in set(main.runs["model"])
    worth = main.worth.set_index("name")
    assert worth.loc["moe", "multiplier"] == pytest.approx(4.0, rel=1e-2)  # reached d3's loss with 1/4 its FLOPs
    assert worth.loc["cur", "multiplier"] == pytest.approx(1.5, rel=1e-2)
    assert worth.loc["moe", "matched_dense"] == "d1" and worth.loc["cur", "matched_dense"] == "d1"
    assert worth.loc["cur", "kind"] == "curated"
    lines = words(ladder_findings(ladder))
    assert any(line.startswith("Not compared with the trained ladder: alien (validated on another validation set")
               for line in lines)
    assert any("alien" in note for note in ladder.notes)


def test_trained_but_unevaluated_runs_still_get_a_report_with_names_escaped(tmp_path, monkeypatch):
    data = write_corpus(tmp_path / "c.txt", 300)
    small = ["--data", str(data), "--tokens", "4096", "--n-layer", "1", "--n-head", "2", "--context-length", "32",
             "--vocab-size", "300", "--batch-size", "8", "--device", "cpu", "--store", str(tmp_path / "s.db"), "--json"]
    for d, name in ((16, "small"), (24, "r<b>big")):
        assert _beyondscale(monkeypatch, "train", *small, "--d-model", str(d), "--out", str(tmp_path / name)) == 0
    assert _beyondscale(monkeypatch, "report", "--store", str(tmp_path / "s.db"), "--out", str(tmp_path / "r.html")) == 0
    page = (tmp_path / "r.html").read_text()
    assert "The trained ladder: validation loss against training FLOPs" in page
    assert "compute-equivalent multipliers need at least 4 dense rungs; got 2" in page
    assert "r&lt;b&gt;big" in page and "r<b>big" not in page


def test_a_store_without_lab_runs_has_no_ladder_sections(tmp_path, monkeypatch, capsys):
    from beyondscale.report.lab_sections import lab_sections
    from beyondscale.store import Store

    Store(tmp_path / "s.db").close()
    assert lab_sections(tmp_path / "s.db") == []
    # nothing trained and nothing evaluated: the report still refuses in one line, as before
    for store, says in ((tmp_path / "s.db", "no scored results match"), (tmp_path / "none.db", "no such store")):
        assert _beyondscale(monkeypatch, "report", "--store", str(store), "--out", str(tmp_path / "r.md")) == 2
        assert says in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "r.md").exists()


@pytest.mark.browser
def test_the_ladder_sections_render_in_a_browser(swept, monkeypatch):
    from browser import SECTIONS_JS, artifacts_dir, check_report_in_browser, find_chromium

    if find_chromium() is None:
        pytest.skip("headless Chromium not found at /usr/bin/chromium or $BEYONDSCALE_CHROMIUM")
    tmp, db, _ = swept
    assert _beyondscale(monkeypatch, "report", "--store", str(db), "--out", str(tmp / "b.html")) == 0
    res = check_report_in_browser(tmp / "b.html", artifacts_dir() / "lab_report.png",
                                  expressions={"sections": SECTIONS_JS})
    assert res["console_errors"] == [] and res["dialogs"] == [] and res["external_requests"] == []
    assert res["n_figures"] == res["n_rendered"] > 0
    lab = next(s for s in res["values"]["sections"] if s["id"] == "bias")
    assert lab["subsections"][:4] == ["The trained ladder: validation loss against training FLOPs",
                                      "What each alternative is worth in dense compute",
                                      "Generalisation gap and memorisation against size",
                                      "Expert load per layer (MoE runs)"]
    assert lab["n_plots"] == lab["n_rendered"] == 6  # ladder, curves, multipliers, gap, memorisation, load


def test_two_sweeps_into_one_store_keep_their_runs_apart_by_key(tmp_path):
    """Rung names repeat across sweeps; each run stays one row, labelled with its key."""
    from beyondscale.analysis.ladder import read_ladder
    from beyondscale.store import Store

    db = Store(tmp_path / "s.db")
    for i, flops in enumerate([1e9, 2e9, 4e9, 8e9, 1e9]):
        out = f"/sweeps/{'b' if i == 4 else 'a'}/runs/dense-{i % 4}"
        record = {"context_length": 32, "val_tokens_sha256": "same", "data": {}}
        db.conn.execute("INSERT INTO lab_training_runs VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (f"key{i}xxxxxx", "id", out, "dense", 1000 * (i + 1), 1000 * (i + 1), 8192, flops, 32,
                         2.0 + 300.0 * flops ** -0.25 + 0.01 * (i == 4), 1.0, 1.0, 0.0, "x", "h", "raw", "null", None,
                         json.dumps(record)))
    db.conn.commit()
    db.close()
    runs = read_ladder(tmp_path / "s.db", n_boot=50).main.runs
    assert len(runs) == 5 and runs["model"].is_unique
    assert {"dense-0 (key0xxxx)", "dense-0 (key4xxxx)", "dense-1"} <= set(runs["model"])
