"""Training records reach the store (one row per run, the curve in its own table); distillation counts the teacher."""

from __future__ import annotations

import math
import sqlite3

import pytest
import torch

from _lab_helpers import one_thread as _lab_one_thread
from _lab_helpers import tiny_request, write_corpus

one_thread = pytest.fixture(autouse=True)(_lab_one_thread)


def test_record_lands_in_the_store_once_with_its_curve(tmp_path):
    from beyondscale.lab.record import store_record
    from beyondscale.lab.run import train_model

    db = tmp_path / "s.db"
    record = train_model(tiny_request(write_corpus(tmp_path / "c.txt"), tmp_path / "m", "moe", tokens=2048,
                                      store=str(db)))
    store_record(db, tmp_path / "m", record)  # a second write replaces, never duplicates
    conn = sqlite3.connect(db)
    runs = conn.execute("SELECT model_key, tokens, train_flops, val_loss, arch FROM lab_training_runs").fetchall()
    assert runs == [(record["model_key"], 2048, record["train_flops"], record["val_loss"], "moe")]
    steps = conn.execute("SELECT step, loss FROM training_curve WHERE kind='train' ORDER BY step").fetchall()
    assert [s for s, _ in steps] == list(range(1, 17))
    assert [round(loss, 9) for _, loss in steps] == [round(p["loss"], 9) for p in record["loss_curve"]]
    val = conn.execute("SELECT step, loss FROM training_curve WHERE kind='val' ORDER BY step").fetchall()
    assert val[-1] == (16, pytest.approx(record["val_loss"]))
    loads = conn.execute("SELECT layer, SUM(load) FROM lab_expert_load GROUP BY layer").fetchall()
    assert [(layer, round(total, 5)) for layer, total in loads] == [(0, 1.0), (1, 1.0)]
    from beyondscale.store import Store
    from beyondscale.store.training import stored_training_record, training_tables

    with Store(db) as store:
        tables = training_tables(store)
        back = stored_training_record(store, record.model_key)
    assert (len(tables.runs), len(tables.curve), len(tables.expert_load)) == (1, 16 + len(val), 2 * 4)
    # Read back typed: the same figures, the curves from their table.
    assert (back.tokens, back.train_flops, back.val_loss) == (2048, record.train_flops, record.val_loss)
    assert [p["step"] for p in back.loss_curve] == list(range(1, 17)) and back.expert_load == record.expert_load


def test_distillation_loss_and_teacher_flops(tmp_path):
    from beyondscale.lab.flops import forward_flops
    from beyondscale.lab.losses import distill_loss
    from beyondscale.lab.run import train_model

    s, t = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.0, 2.0, 0.0]])
    p = torch.softmax(t / 2, -1)
    by_hand = float((p * (p.log() - torch.log_softmax(s / 2, -1))).sum()) * 4
    assert float(distill_loss(s, t, 2.0)) == pytest.approx(by_hand)

    data = write_corpus(tmp_path / "c.txt")
    teacher = train_model(tiny_request(data, tmp_path / "teacher", tokens=2048))
    alone = train_model(tiny_request(data, tmp_path / "alone", tokens=2048, tokenizer=str(tmp_path / "teacher")))
    student = train_model(tiny_request(data, tmp_path / "student", tokens=2048, distill_from=str(tmp_path / "teacher")))
    from transformers import AutoConfig

    expected_teacher = forward_flops(AutoConfig.from_pretrained(tmp_path / "teacher"), 2048, 32)
    assert student["distill"]["teacher_flops"] == pytest.approx(expected_teacher)
    assert student["train_flops"] == pytest.approx(alone["train_flops"] + expected_teacher)
    assert math.isfinite(student["val_loss"]) and student["val_loss"] != alone["val_loss"]
    assert teacher["tokens"] == student["tokens"]
