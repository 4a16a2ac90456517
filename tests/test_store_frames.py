"""The frames analysis reads (CONTRACTS §1): keys beside labels, task versions, facts that follow identity."""

from __future__ import annotations

import json
import shutil
import time

from beyondscale import api
from beyondscale.store import Store, load_frames


def _frames(store):
    db = Store(store)
    try:
        return load_frames(db)
    finally:
        db.close()


def test_frames_carry_keys_facts_and_the_tasks_frame(tiny_llama, mc_task, tmp_path):
    store = tmp_path / "s.db"
    result = api.evaluate([f"Tiny={tiny_llama}"], [str(mc_task)], store=store, show_progress=False)
    frames = _frames(store)
    pair = result.results[0]
    for frame in (frames.scores, frames.efficiency, frames.items):
        assert {"model_key", "model", "task_key", "task"} <= set(frame.columns)
        assert set(frame["task_key"]) == {pair.task_key} and set(frame["model_key"]) == {pair.model_key}
    assert "run_id" not in frames.scores.columns
    assert list(frames.tasks.columns) == ["task_key", "task", "spec_hash", "created", "n_items"]
    assert frames.tasks.to_dict("records")[0]["n_items"] == 12
    config = json.loads((tiny_llama / "config.json").read_text())
    model = frames.models.to_dict("records")[0]
    assert model["vocab_size"] == config["vocab_size"]
    assert {"quantization", "tokenizer_key"} <= set(frames.models.columns)
    assert "ms_per_item" in frames.efficiency.columns and "latency_ms_per_item" not in frames.efficiency.columns
    measured = frames.efficiency["ms_per_item"].iloc[0]
    assert measured == pair.efficiency.get("ms_per_item", pair.efficiency.get("latency_ms_per_item"))
    assert len(frames.scores) == 2 and sorted(frames.scores["metric"]) == ["acc", "acc_norm"]


def test_editing_a_task_adds_a_version_and_keeps_the_old_scores(tiny_llama, tiny_gpt2, mc_task, tmp_path):
    store = tmp_path / "s.db"
    api.evaluate([str(tiny_llama), str(tiny_gpt2)], [str(mc_task)], store=store, show_progress=False)
    data = mc_task.with_suffix(".jsonl")
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    rows[0]["choices"][0] = "an edited choice"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    time.sleep(0.01)
    api.evaluate([str(tiny_llama)], [str(mc_task)], store=store, show_progress=False)
    frames = _frames(store)
    versions = frames.tasks.sort_values("created")
    assert list(versions["task"]) == ["tiny_mc", "tiny_mc"] and versions["task_key"].nunique() == 2
    old, new = versions["task_key"]
    per_unit = frames.scores.groupby(["model_key", "task_key"]).size()
    assert sorted(per_unit.tolist()) == [2, 2, 2]  # acc, acc_norm: one score set per (model, task version)
    models_on = {key: set(frames.scores[frames.scores["task_key"] == key]["model"]) for key in (old, new)}
    assert models_on == {old: {"tiny-llama", "tiny-gpt2"}, new: {"tiny-llama"}}


def test_a_lab_record_added_later_reaches_the_stored_facts(tiny_llama, mc_task, tmp_path):
    folder = tmp_path / "lab-model"
    shutil.copytree(tiny_llama, folder)
    store = tmp_path / "s.db"
    first = api.evaluate([str(folder)], [str(mc_task)], store=store, show_progress=False)
    assert _frames(store).models["training_tokens"].isna().all()
    # The lab's own field names (lab/record.py writes `tokens` and `train_flops`).
    (folder / "beyondscale_lab.json").write_text(json.dumps({"tokens": 1.5e6, "train_flops": 2.0e12}))
    second = api.evaluate([str(folder)], [str(mc_task)], store=store, show_progress=False)
    assert second.results[0].model_key == first.results[0].model_key  # same identity: facts were stored
    model = _frames(store).models.to_dict("records")[0]
    assert (model["training_tokens"], model["training_flops"]) == (1.5e6, 2.0e12)
