"""Analysis on a real store: a task's data is edited and one model re-evaluated. The paired test must use
only the version both models have (its items, counted by hand), and the verdict and report must say so."""

from __future__ import annotations

import json
import time

from beyondscale import api
from beyondscale.analysis import analyze
from beyondscale.report import render_markdown
from beyondscale.store import Store, load_frames


def test_edited_task_paired_on_the_common_version(tiny_llama, tiny_gpt2, mc_task, tmp_path):
    store = tmp_path / "s.db"
    api.evaluate([str(tiny_llama), str(tiny_gpt2)], [str(mc_task)], store=store, show_progress=False)
    data = mc_task.with_suffix(".jsonl")
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    rows[0]["choices"][0] = "an edited choice"
    rows = rows[:-2]  # the edit also drops two items: the versions have different item sets
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    time.sleep(0.01)
    api.evaluate([str(tiny_llama)], [str(mc_task)], store=store, show_progress=False)
    db = Store(store)
    try:
        f = load_frames(db)
    finally:
        db.close()
    old, new = f.tasks.sort_values("created")["task_key"]
    an = analyze(f.models, f.scores, f.efficiency, f.items, task_versions=f.tasks, n_boot=100)
    assert set(an.paired["task_key"]) == {old}
    assert (an.paired["n_items"] == 12).all()  # the original 12 items, not the edited 10
    lacking = set(f.models["model"]) - set(f.scores[f.scores["task_key"] == new]["model"])
    assert len(lacking) == 1
    (gpt2,) = lacking
    sentence = f"{gpt2} was not scored on the current version of tiny_mc"
    assert any(sentence in v for v in an.verdict)
    md = render_markdown(an, models=f.models, scores=f.scores, efficiency=f.efficiency)
    assert sentence in md and "(older version)" in md
