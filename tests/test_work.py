"""The unit of work: plan what the store lacks, run_unit (pure, picklable), one idempotent writer."""

from __future__ import annotations

import os
import pickle
import sqlite3
import time

import pytest

from beyondscale import api
from beyondscale.executors import LocalExecutor
from beyondscale.models import load_model, parse_model_ref
from beyondscale.store import Store
from beyondscale.store.claims import new_owner, try_claim
from beyondscale.work import (
    BatchResult,
    FactsResult,
    LoadSettings,
    ModelJob,
    TaskJob,
    Unit,
    Writer,
    plan,
    run_unit,
)
from beyondscale.work.writer import ModelLabel


def _task_job(path, limit=None):
    from beyondscale.tasks.harness import load_tasks, task_manager
    from beyondscale.tasks.lm_eval_items import plan_items

    loaded = load_tasks([str(path)], manager=task_manager(include_defaults=False))
    (planned,) = plan_items(loaded, {"limit": limit, "fewshot_random_seed": 1234}).values()
    return TaskJob("task-key", "tiny_mc", tuple(planned.items), tuple(i.key() for i in planned.items))


def _model_job(folder):
    ref = parse_model_ref(str(folder))
    return ModelJob(ref, "model-key", ref.identity(), LoadSettings(device="cpu", batch_size=3))


def test_run_unit_is_picklable_in_and_out_and_matches_the_engine(tiny_llama, mc_task):
    from beyondscale.engine import Engine

    unit = Unit(_model_job(tiny_llama), (_task_job(mc_task, limit=7),), want_facts=True)
    shipped = pickle.loads(pickle.dumps(unit))
    assert shipped == unit
    outputs = list(run_unit(shipped))
    assert pickle.loads(pickle.dumps(outputs)) == outputs
    assert isinstance(outputs[0], FactsResult) and outputs[0].facts["params_total"] > 0
    batches = [o for o in outputs if isinstance(o, BatchResult)]
    assert [len(b.rows) for b in batches] == [3, 3, 1]  # batch_size 3 over 7 items
    got = {row[0]: row[3] for b in batches for row in b.rows}
    # Reference: the engine run directly on each item alone, no planning, no batching.
    loaded = load_model(unit.model.ref, device="cpu")
    engine = Engine(loaded.model, loaded.tokenizer, batch_size=1)
    for item, key in zip(unit.tasks[0].items, unit.tasks[0].item_keys, strict=True):
        want = engine.run_batch([item])[0]
        assert got[key]["logprobs"] == pytest.approx(want.logprobs, abs=1e-5)
        assert got[key]["doc_id"] == item.doc_id
    for b in batches:
        assert b.measurement["tokens_in"] == sum(row[3]["tokens_in"] for row in b.rows) > 0
        assert b.measurement["model_flops"] == pytest.approx(sum(row[3]["flops"] for row in b.rows))


def test_metrics_through_the_unit_equal_lm_eval_with_its_hf_backend(tiny_llama, mc_task, rolling_task, tmp_path):
    """The unit path (lm-eval's requests as Items, run by the engine, scored by lm-eval) against lm-eval run
    end to end with its own HF backend on the same task files."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    result = api.evaluate([str(tiny_llama)], [str(mc_task), str(rolling_task)], store=tmp_path / "s.db",
                          settings=api.EvalSettings(batch_size=4), show_progress=False)
    got = {r.task: r.metrics for r in result.results}
    monkey_cwd = os.getcwd()
    os.chdir(mc_task.parent)  # lm-eval reads relative data files from the working folder
    try:
        hf = HFLM(pretrained=str(tiny_llama), device="cpu", dtype="float32", batch_size=4)
        want = simple_evaluate(model=hf, tasks=["tiny_mc", "tiny_ppl"], bootstrap_iters=0,
                               task_manager=TaskManager(include_path=str(mc_task.parent), include_defaults=False))
    finally:
        os.chdir(monkey_cwd)
    for metric in ("acc", "acc_norm"):
        assert got["tiny_mc"][metric] == pytest.approx(want["results"]["tiny_mc"][f"{metric},none"], abs=1e-12)
    for metric in ("bits_per_byte", "byte_perplexity", "word_perplexity"):
        assert got["tiny_ppl"][metric] == pytest.approx(want["results"]["tiny_ppl"][f"{metric},none"], rel=1e-5)


def test_a_finished_study_plans_nothing_and_loads_no_model(tiny_llama, mc_task, tmp_path, monkeypatch):
    store = tmp_path / "s.db"
    first = api.evaluate([str(tiny_llama)], [str(mc_task)], store=store, show_progress=False)

    def no_load(*_a, **_k):
        raise AssertionError("model loaded although every item is stored")

    monkeypatch.setattr("beyondscale.models.load_model", no_load)
    again = api.evaluate([str(tiny_llama)], [str(mc_task)], store=store, show_progress=False)
    assert again.results[0].metrics == first.results[0].metrics
    assert again.results[0].resumed_items == again.results[0].n_items == 12


def test_plan_keeps_only_the_items_still_to_do(tiny_llama, mc_task, tmp_path):
    db = Store(tmp_path / "s.db")
    model, task = _model_job(tiny_llama), _task_job(mc_task)
    assert plan(db, [model], [task]) == [Unit(model, (task,), want_facts=True)]
    rows = [(k, it.doc_id, {}, {}) for k, it in zip(task.item_keys[:5], task.items[:5], strict=True)]
    db.write_batch("run", "model-key", "task-key", "b", rows, {}, "env")
    db.put_model("model-key", "m", None, {}, "id", {"params_total": 1})
    (unit,) = plan(db, [model], [task])
    assert not unit.want_facts and unit.tasks[0].item_keys == task.item_keys[5:]


def test_writer_is_idempotent(tmp_path):
    db = Store(tmp_path / "s.db")
    writer = Writer(db, "run", "env", {"m": ModelLabel("M", None, {}, "id")})
    batch = BatchResult("m", "t", "b1", (("k1", 0, {}, {"doc_id": 0}), ("k2", 1, {}, {"doc_id": 1})),
                        {"wall_s": 1.0})
    for _ in range(3):
        writer.write(batch)
        writer.write(FactsResult("m", {"params_total": 5}))
    counts = {t: db.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("items", "measurements",
                                                                                     "models")}
    assert counts == {"items": 2, "measurements": 1, "models": 1}
    assert writer.computed[("m", "t")] == 2


def test_claims_live_stale_and_dead_owners(tmp_path):
    db = Store(tmp_path / "s.db")
    me, other = new_owner(), "elsewhere:123:abc"
    db.conn.execute("INSERT INTO claims VALUES('m','t',?,?)", (other, time.time()))
    with db.transaction():
        assert not try_claim(db.conn, "m", "t", me, timeout_s=60)  # live owner on another machine
    db.conn.execute("UPDATE claims SET heartbeat=?", (time.time() - 61,))
    with db.transaction():
        assert try_claim(db.conn, "m", "t", me, timeout_s=60)  # its heartbeat stopped: taken over
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_owner = f"{socket.gethostname()}:{int(dead.stdout)}:x"
    db.conn.execute("INSERT INTO claims VALUES('m','t2',?,?)", (dead_owner, time.time()))
    with db.transaction():
        assert try_claim(db.conn, "m", "t2", me, timeout_s=60)  # a process of this machine that is gone


def test_eval_waits_for_a_live_claim_then_takes_it_over_when_stale(tiny_llama, mc_task, tmp_path):
    store = tmp_path / "s.db"
    settings = api.EvalSettings(limit=3, claim_timeout_s=1.5)
    api.evaluate([str(tiny_llama)], [str(mc_task)], store=store, settings=api.EvalSettings(limit=1),
                 show_progress=False)  # creates the keys; one item done
    conn = sqlite3.connect(store)
    (model_key, task_key), = conn.execute("SELECT model_key, task_key FROM metrics LIMIT 1")
    conn.execute("INSERT INTO claims VALUES(?,?,?,?)", (model_key, task_key, "elsewhere:1:x", time.time()))
    conn.commit()
    start = time.perf_counter()
    result = api.evaluate([str(tiny_llama)], [str(mc_task)], store=store, settings=settings, show_progress=False)
    assert time.perf_counter() - start >= 1.5
    assert result.results[0].n_items == 3 and result.results[0].resumed_items == 1
    assert conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # released


class _OtherProcessExecutor(LocalExecutor):
    """Runs each unit in a fresh interpreter (as a Ray worker would): only pickles cross over. The rest of
    the protocol (jobs, devices) is the local executor's."""

    capacity = 2

    def run(self, units):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            for outputs in pool.map(_run_to_list, list(units)):
                yield from outputs


def _run_to_list(unit):
    return list(run_unit(unit))


def test_an_executor_in_another_process_stores_the_same_scores(tiny_llama, mc_task, rolling_task, tmp_path):
    models, tasks = [str(tiny_llama)], [str(mc_task), str(rolling_task)]
    local = api.evaluate(models, tasks, store=tmp_path / "a.db", show_progress=False)
    remote = api.evaluate(models, tasks, store=tmp_path / "b.db", show_progress=False,
                          executor=_OtherProcessExecutor())
    assert [(r.model_key, r.task_key) for r in remote.results] == [(r.model_key, r.task_key) for r in local.results]
    for a, b in zip(local.results, remote.results, strict=True):
        assert b.metrics == pytest.approx(a.metrics, abs=1e-9)
        assert b.resumed_items == 0 and b.n_items == a.n_items


def test_units_finished_before_an_interrupt_keep_their_scores(tiny_llama, tiny_gpt2, mc_task, tmp_path):
    from beyondscale.executors import LocalExecutor

    class StopAtSecondModel(LocalExecutor):
        seen = 0

        def run(self, units):
            for unit in units:
                StopAtSecondModel.seen += 1
                if StopAtSecondModel.seen == 2:
                    raise KeyboardInterrupt
                yield from super().run([unit])

    store = tmp_path / "s.db"
    with pytest.raises(KeyboardInterrupt):
        api.evaluate([str(tiny_llama), str(tiny_gpt2)], [str(mc_task)], store=store, show_progress=False,
                     executor=StopAtSecondModel())
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT COUNT(DISTINCT model_key), COUNT(*) FROM metrics").fetchone() == (1, 2)
    assert conn.execute("SELECT status FROM runs").fetchone() == ("interrupted",)
    assert conn.execute("SELECT COUNT(*) FROM claims").fetchone() == (0,)
