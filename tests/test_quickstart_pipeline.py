"""The whole study at a tiny size, in-process, with two tiny local models standing in for the real ones.

Checks what `make run` promises apart from the wall time: every stage runs, the verdict's figures are the
run's own (recomputed here from the store, not read from the study's objects), a second run trains,
evaluates and probes nothing, and the report opens in Chromium with every section filled.
Slow (about a minute on 2 busy cores): marked `slow`.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path

import pytest

from beyondscale import api
from beyondscale.corpora.stdlib_prose import load_corpus
from beyondscale.lab.configs import Shape
from beyondscale.quickstart.plan import StudyPlan
from browser import SECTIONS_JS, artifacts_dir, check_report_in_browser, find_chromium
from conftest import build_tiny_model

pytestmark = pytest.mark.slow


def tiny_plan() -> StudyPlan:
    shapes = [Shape(d_model=d, n_layer=n, n_head=h, context_length=128) for d, n, h in
              ((8, 1, 1), (16, 1, 2), (32, 1, 2), (48, 2, 2))]
    return StudyPlan(shapes=shapes, tokens=2048, batch_size=8, vocab_size=320, pool_bytes=120_000,
                     heldout_docs=3, qs_sizes={"qs_bpb": 2, "qs_nextsent": 4, "qs_pattern": 2}, probe_texts=2,
                     probe_real_models=True)


def prose_corpus(path: Path) -> Path:
    """English prose documents of several lines each (stdlib docstrings: on every machine, not copied)."""
    docs = [d.text for d in load_corpus().documents[:1200]]
    rows = [{"text": "\n".join(docs[i:i + 4])} for i in range(0, len(docs), 4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _bpb_from_store(store: Path, name: str) -> float:
    """The held-out bits per byte of a model, straight from the metrics table."""
    with sqlite3.connect(store) as c:
        (value,) = c.execute(
            "SELECT m.value FROM metrics m JOIN models d ON d.model_key = m.model_key JOIN tasks t ON "
            "t.task_key = m.task_key WHERE d.name = ? AND t.name = 'heldout_source_bpb' AND m.metric = "
            "'bits_per_byte'", (name,)).fetchone()
    return value


def _counts(store: Path) -> tuple[int, int, list[float]]:
    with sqlite3.connect(store) as c:
        units = c.execute("SELECT COUNT(*) FROM run_units WHERE items_computed > 0").fetchone()[0]
        probes = c.execute("SELECT created FROM probe_results ORDER BY created").fetchall()
        runs = c.execute("SELECT COUNT(*) FROM lab_training_runs").fetchone()[0]
    return units, runs, [p[0] for p in probes]


def test_study_end_to_end_then_reuse_then_browser(tmp_path: Path) -> None:
    real = {"tiny-llama": f"tiny-llama={build_tiny_model(tmp_path / 'tiny-llama', 'llama')}",
            "tiny-gpt2": f"tiny-gpt2={build_tiny_model(tmp_path / 'tiny-gpt2', 'gpt2', n_embd=64, n_layer=3)}"}
    store, report, work = tmp_path / "s.db", tmp_path / "report.html", tmp_path / "study"
    kw = dict(store=store, out=report, work_dir=work, corpus=str(prose_corpus(tmp_path / "c.jsonl")),
              plan=tiny_plan(), real_models=real, show_progress=False)
    t0 = time.perf_counter()
    first = api.quickstart(**kw)
    first_s = time.perf_counter() - t0
    assert list(first.stage_seconds) == ["corpus", "curate", "train", "evaluate", "probes", "analyze", "report"]

    # the verdict's first line quotes the two largest dense rungs' held-out bpb, as the store holds them
    b2, b3 = _bpb_from_store(store, "dense-2-d32"), _bpb_from_store(store, "dense-3-d48")
    assert f"from {b2:.3f} to {b3:.3f}" in first.verdict[0]
    runs = {Path(r["out"]).parent for r in first.training_records.values()}
    assert len(runs) == 1 and runs.pop().parent.parent == (work / "ladder").resolve()  # one folder, named by its content
    records = {p.name: json.loads((p / "beyondscale_lab.json").read_text())
               for p in (Path(next(iter(first.training_records.values()))["out"]).parent).iterdir()}
    assert set(records) == {"dense-0-d8", "dense-1-d16", "dense-2-d32", "dense-3-d48", "moe-8x2-d16", "curated-d16"}
    per_doubling = (b2 - b3) / math.log2(records["dense-3-d48"]["params_total"] / records["dense-2-d32"]["params_total"])
    assert f"{abs(per_doubling):.3f} bits per byte {'less' if per_doubling >= 0 else 'more'} per doubling" in first.verdict[0]
    assert records["curated-d16"]["tokens"] == records["dense-1-d16"]["tokens"]  # equal tokens
    moe = records["moe-8x2-d16"]
    assert moe["params_active"] < moe["params_total"] and len(moe["expert_load"][0]) == 8
    assert any(line.startswith("Architecture: moe-8x2-d16 (") and "dense-1-d16, the dense rung it matches" in line
               for line in first.verdict)
    assert any(line.startswith("Data: curated-d16 (curated data)") for line in first.verdict)
    assert any(line.startswith("tiny-gpt2 (") and "ladder's curve" in line for line in first.verdict)

    units, runs, probes = _counts(store)
    again = api.quickstart(**kw)
    assert _counts(store) == (units, runs, probes)  # nothing evaluated, trained or probed again
    assert again.verdict == first.verdict
    assert sum(again.stage_seconds.values()) < first_s

    if find_chromium() is None:
        pytest.skip("chromium not installed: `make test` installs it")
    res = check_report_in_browser(report, artifacts_dir() / "study_tiny_report.png", expressions={"sections": SECTIONS_JS})
    assert res["console_errors"] == [] and res["external_requests"] == [] and res["dialogs"] == []
    assert res["n_figures"] > 0 and res["n_rendered"] == res["n_figures"]
    sections = {s["id"]: s for s in res["values"]["sections"]}
    for sid in ("verdict", "leaderboard", "returns", "paired", "pareto", "calibration", "efficiency", "bias"):
        assert sections[sid]["empty"] == [] and sections[sid]["height"] > 50, sections[sid]
    assert {"The study: corpus, curation and the trained ladder", "Returns over the ladder: the fitted law",
            "What the MoE and curated data are worth in dense compute", "The real models against the ladder's curve",
            "Bias and prediction depth against size", "The MoE's routing map"} <= set(sections["bias"]["subsections"])
