"""A sweep trains its ladder, its records reach the store, every model is evaluated and the analysis runs."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest

from _lab_helpers import one_thread as _lab_one_thread
from _lab_helpers import write_corpus

one_thread = pytest.fixture(autouse=True)(_lab_one_thread)


@pytest.fixture()
def tiny_preset(monkeypatch):
    from beyondscale.lab import sweep
    from beyondscale.lab.configs import Shape

    preset = sweep.Preset(dense=[Shape(d_model=d, n_layer=1, n_head=2, context_length=32) for d in (16, 24, 32, 48)],
                          tokens=8192, vocab_size=300, batch_size=8, lr=3e-3, eval_limit=5, memorisation_samples=8,
                          n_experts=4)
    monkeypatch.setitem(sweep.PRESETS, "tiny", preset)
    return preset


def _curated_folder(path, raw_lines):
    """A stand-in for a `beyondscale curate` output: the longer documents kept, with a recipe."""
    kept = path / "kept"
    kept.mkdir(parents=True)
    docs = [d for d in raw_lines if len(d.split()) >= 8]
    (kept / "part-0.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    (path / "summary.json").write_text(json.dumps({"data_hash": "abc123", "recipe": {"min_words": 8}}))
    return path


def test_sweep_records_reach_the_store_and_the_analysis(tmp_path, tiny_preset, capsys):
    from beyondscale.lab.sweep import run_sweep

    raw = write_corpus(tmp_path / "raw.txt", 1500)
    curated = _curated_folder(tmp_path / "cur", raw.read_text().split("\n\n"))
    db = tmp_path / "s.db"
    doc = run_sweep(str(raw), str(tmp_path / "sw"), preset="tiny", curated=str(curated), store=str(db), device="cpu",
                    show_progress=False)
    kinds = [r["kind"] for r in doc["rungs"]]
    assert kinds == ["dense"] * 4 + ["moe", "curated", "distilled"]
    conn = sqlite3.connect(db)
    stored = dict(conn.execute("SELECT model_key, val_loss FROM lab_training_runs").fetchall())
    assert {r["model_key"]: r["val_loss"] for r in doc["rungs"]} == stored
    evaluated = {k for (k,) in conn.execute("SELECT DISTINCT model_key FROM item_scores")}
    assert set(stored) <= evaluated  # every trained model went through the eval unit of work
    assert conn.execute("SELECT data_variant, recipe FROM lab_training_runs WHERE arch='dense' AND "
                        "data_variant='curated'").fetchone() == ("curated", '{"min_words": 8}')
    moe, matched = doc["rungs"][4], doc["rungs"][1]  # MoE at dense-1's active size: experts half as wide
    assert abs(moe["params_active"] - matched["params_active"]) <= 4 * 24  # differs by the router (d x experts)
    mults = {m["name"]: m for m in doc["compute_equivalent"]["multipliers"]}
    assert set(mults) == {r["name"] for r in doc["rungs"] if r["kind"] != "dense"}
    for m in mults.values():
        assert m["multiplier"] > 0 and (m["low"] <= m["multiplier"] <= m["high"] or math.isinf(m["multiplier"]))
    assert set(doc["compute_equivalent_clean"]["multipliers"][0]) == set(doc["compute_equivalent"]["multipliers"][0])
    for r in doc["rungs"]:
        assert r["val_loss_clean"] > 0
        assert r["memorisation"]["samples"] == 8 and r["eval"]["heldout_ppl/bits_per_byte"] > 0
        assert r["generalisation_gap"] == pytest.approx(r["val_loss"] - r["train_loss"])
    # one shared validation set: the same held-out documents for raw and curated runs
    val_sources = {json.loads((tmp_path / "sw" / "runs" / r["name"] / "lab" / "data.json").read_text())["val_data_hash"]
                   for r in doc["rungs"]}
    assert len(val_sources) == 1
    from beyondscale.lab.train_cli import _print_sweep

    _print_sweep(doc)
    assert "worth in dense compute" in capsys.readouterr().out
    again = run_sweep(str(raw), str(tmp_path / "sw"), preset="tiny", curated=str(curated), store=str(db),
                      device="cpu", show_progress=False)  # resumes: nothing retrained, nothing duplicated
    assert [r["val_loss"] for r in again["rungs"]] == [r["val_loss"] for r in doc["rungs"]]
    assert conn.execute("SELECT COUNT(*) FROM lab_training_runs").fetchone() == (7,)


def test_held_out_documents_leave_the_curated_training_set_even_when_curation_edited_them(tmp_path):
    from beyondscale.lab.data import read_corpus
    from beyondscale.lab.sweep import prepare_data

    raw = tmp_path / "raw.jsonl"
    rows = [{"id": f"d{i}", "text": f"doc {i}\n\nsecond line {i}"} for i in range(40)]
    copies = [{"id": f"copy{i}", "text": r["text"]} for i, r in enumerate(rows)]  # every doc twice, other ids
    raw.write_text("".join(json.dumps(r) + "\n" for r in rows + copies))
    kept = tmp_path / "cur" / "kept"
    kept.mkdir(parents=True)  # curation kept the first 20 documents and collapsed their blank lines
    (kept / "p.jsonl").write_text("".join(json.dumps({"id": f"d{i}", "text": f"doc {i}\nsecond line {i}"}) + "\n"
                                          for i in range(20)))
    paths = prepare_data(read_corpus(raw), read_corpus(tmp_path / "cur"), tmp_path / "data")
    val = read_corpus(paths["val"]).texts
    held = {int(t.split()[1]) for t in val}
    assert len(val) == 8  # 10% of 80
    raw_train = read_corpus(paths["raw"]).texts
    assert not held & {int(t.split()[1]) for t in raw_train}  # neither the held-out docs nor their copies
    assert len(raw_train) == 80 - 2 * len(held)
    cur_train = read_corpus(paths["curated"]).texts
    assert sorted(int(t.split()[1]) for t in cur_train) == sorted(set(range(20)) - held)
    assert sorted(read_corpus(paths["val_clean"]).texts) == sorted(t for t in set(val) if int(t.split()[1]) < 20)
