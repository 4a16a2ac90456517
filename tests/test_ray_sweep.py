"""A tiny training ladder through the Ray executor: runs train in Ray workers (the distilled run after its
teacher), the driver alone writes the store, and the stored rows equal a local sweep's row for row."""

from __future__ import annotations

import sqlite3

import pytest

from _lab_helpers import one_thread as _lab_one_thread
from _lab_helpers import write_corpus

ray = pytest.importorskip("ray")
one_thread = pytest.fixture(autouse=True)(_lab_one_thread)


@pytest.fixture()
def tiny_preset(monkeypatch):
    from beyondscale.lab import sweep
    from beyondscale.lab.configs import Shape

    preset = sweep.Preset(
        dense=[Shape(d_model=d, n_layer=1, n_head=2, context_length=32) for d in (16, 24, 32)],
        tokens=4096,
        vocab_size=300,
        batch_size=8,
        lr=3e-3,
        eval_limit=5,
        memorisation_samples=8,
        n_experts=4,
    )
    monkeypatch.setitem(sweep.PRESETS, "tiny", preset)
    return preset


def _rows(db, sql):
    conn = sqlite3.connect(db)
    try:
        return sorted(conn.execute(sql).fetchall())
    finally:
        conn.close()


@pytest.mark.slow  # two tiny ladders (local and Ray) plus a cluster start: ~30-60 s on 2 cores
def test_a_ladder_on_ray_stores_what_the_local_sweep_stores(tmp_path, tiny_preset, monkeypatch):
    from beyondscale.executors import RayExecutor
    from beyondscale.lab.sweep import run_sweep

    raw = write_corpus(tmp_path / "raw.txt", 600)
    local = run_sweep(
        str(raw),
        str(tmp_path / "local"),
        preset="tiny",
        store=str(tmp_path / "local.db"),
        device="cpu",
        show_progress=False,
    )

    def not_here(*_a, **_k):
        raise AssertionError("a run trained in the driver, not in a Ray worker")

    monkeypatch.setattr(
        "beyondscale.lab.run.train_model", not_here
    )  # this process only; workers import their own
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    try:
        remote = run_sweep(
            str(raw),
            str(tmp_path / "ray"),
            preset="tiny",
            store=str(tmp_path / "ray.db"),
            device="cpu",
            show_progress=False,
            executor=RayExecutor(),
        )
    finally:
        ray.shutdown()
    assert [r["name"] for r in remote["rungs"]] == [r["name"] for r in local["rungs"]]
    # Same weights (model keys are content hashes of the weights), same losses, same stored rows.
    assert [r["model_key"] for r in remote["rungs"]] == [r["model_key"] for r in local["rungs"]]
    assert [r["val_loss"] for r in remote["rungs"]] == pytest.approx(
        [r["val_loss"] for r in local["rungs"]], abs=1e-6
    )
    for sql in (
        "SELECT model_key, arch, params_total, tokens, train_flops FROM lab_training_runs",
        "SELECT model_key, kind, step, tokens FROM training_curve",
        "SELECT model_key, task_key, item_key FROM items",
        "SELECT model_key, task_key, metric, n_items FROM metrics",
    ):
        assert _rows(tmp_path / "ray.db", sql) == _rows(tmp_path / "local.db", sql), sql
    assert len(_rows(tmp_path / "ray.db", "SELECT model_key FROM lab_training_runs")) == 5
