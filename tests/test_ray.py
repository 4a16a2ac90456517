"""The Ray executor on a local loopback cluster: same stored rows as the local loop, a killed worker is
retried and every item stored once, a resumed driver computes only what is missing, a unit whose code
fails is reported once and never retried, two drivers on one store never compute the same items."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import threading

import pytest

ray = pytest.importorskip("ray")

from beyondscale import api  # noqa: E402
from beyondscale.executors import RayExecutor  # noqa: E402
from beyondscale.work import BatchResult, UnitLog  # noqa: E402

SETTINGS = dict(batch_size=4, device="cpu")


@pytest.fixture(scope="module")
def cluster():
    """One small loopback cluster for the module (starting one costs seconds)."""
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    yield
    ray.shutdown()


def _rows(store, table, cols):
    conn = sqlite3.connect(store)
    try:
        return sorted(conn.execute(f"SELECT {cols} FROM {table}").fetchall())
    finally:
        conn.close()


def _assert_same_results(a, b):
    """Row for row: the same items (results to float tolerance), batches, score rows and metrics."""
    items_a, items_b = (
        _rows(a, "items", "model_key, task_key, item_key, result"),
        _rows(b, "items", "model_key, task_key, item_key, result"),
    )
    assert [r[:3] for r in items_a] == [r[:3] for r in items_b] and items_a
    for ra, rb in zip(items_a, items_b, strict=True):
        ja, jb = __import__("json").loads(ra[3]), __import__("json").loads(rb[3])
        assert ja.keys() == jb.keys()
        for key in ja:
            if isinstance(ja[key], list) and ja[key] and isinstance(ja[key][0], float):
                assert jb[key] == pytest.approx(ja[key], abs=1e-5)
    assert _rows(a, "measurements", "model_key, task_key, batch_key, n_items") == _rows(
        b, "measurements", "model_key, task_key, batch_key, n_items"
    )
    assert _rows(a, "item_scores", "model_key, task_key, doc_id, pred, gold, correct") == _rows(
        b, "item_scores", "model_key, task_key, doc_id, pred, gold, correct"
    )
    ma, mb = (
        _rows(a, "metrics", "model_key, task_key, metric, value, n_items"),
        _rows(b, "metrics", "model_key, task_key, metric, value, n_items"),
    )
    assert [r[:3] + r[4:] for r in ma] == [r[:3] + r[4:] for r in mb] and ma
    assert [r[3] for r in mb] == pytest.approx([r[3] for r in ma], abs=1e-6)


@pytest.mark.slow  # 2 models x 2 tasks twice, and Ray's workers import torch: 10-20 s on 2 busy cores
def test_matrix_on_ray_equals_the_local_loop(cluster, tiny_llama, tiny_gpt2, mc_task, rolling_task, tmp_path):
    models, tasks = [str(tiny_llama), str(tiny_gpt2)], [str(mc_task), str(rolling_task)]
    settings = api.EvalSettings(**SETTINGS)
    api.evaluate(models, tasks, store=tmp_path / "local.db", settings=settings, show_progress=False)
    remote = api.evaluate(
        models,
        tasks,
        store=tmp_path / "ray.db",
        settings=settings,
        show_progress=False,
        executor=RayExecutor(),
    )
    assert (remote.succeeded, remote.skipped, remote.failed) == (4, 0, [])
    _assert_same_results(tmp_path / "local.db", tmp_path / "ray.db")
    # Each unit ran in a Ray worker, not in this process, and its log says so.
    logs = list((tmp_path / "ray.db.logs" / remote.run_id).glob("*.log"))
    assert len(logs) == 2
    for log in logs:
        text = log.read_text()
        assert "submitted to Ray: num_cpus=1.0, num_gpus=0.0" in text and "done" in text
        assert f"pid {os.getpid()} " not in text


class _KillOnce(RayExecutor):
    """SIGKILLs the worker of the first unit right after its first batch reaches the driver."""

    killed: list[int] = []

    def run(self, units):
        pids: dict[str, int] = {}
        for output in super().run(units):
            if isinstance(output, UnitLog) and (m := re.search(r" pid (\d+) ", output.text)):
                pids[output.model_key] = int(m.group(1))
            yield output
            if isinstance(output, BatchResult) and not self.killed:
                self.killed.append(pids[output.model_key])
                os.kill(pids[output.model_key], signal.SIGKILL)


def test_a_killed_worker_is_retried_and_every_item_is_stored_once(cluster, tiny_llama, mc_task, tmp_path):
    settings = api.EvalSettings(batch_size=1, device="cpu")  # 12 batches: the kill lands mid-unit
    local = api.evaluate(
        [str(tiny_llama)], [str(mc_task)], store=tmp_path / "local.db", settings=settings, show_progress=False
    )
    executor = _KillOnce(max_retries=1, backlog=1)  # the worker may run at most one batch ahead
    result = api.evaluate(
        [str(tiny_llama)],
        [str(mc_task)],
        store=tmp_path / "ray.db",
        settings=settings,
        show_progress=False,
        executor=executor,
    )
    assert len(executor.killed) == 1 and result.failed == []
    conn = sqlite3.connect(tmp_path / "ray.db")
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT item_key) FROM items").fetchone() == (12, 12)
    assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone() == (12,)  # one per batch, none twice
    assert result.results[0].metrics == pytest.approx(local.results[0].metrics, abs=1e-6)
    (log,) = (tmp_path / "ray.db.logs" / result.run_id).glob("*.log")
    text = log.read_text()
    assert "worker died (WorkerCrashedError" in text and "attempt 2 on" in text
    # The retry computed only what had not come back: fewer than all 12 items.
    redo = int(re.search(r"retrying the (\d+) items", text).group(1))
    assert 0 < redo < 12


def test_workers_that_keep_dying_fail_the_unit_after_the_retries(cluster, tiny_llama, mc_task, tmp_path):
    class KillAlways(_KillOnce):
        def run(self, units):
            self.killed = []  # kill every attempt's worker
            for output in RayExecutor.run(self, units):
                yield output
                if isinstance(output, UnitLog) and (m := re.search(r" pid (\d+) ", output.text)):
                    os.kill(int(m.group(1)), signal.SIGKILL)

    result = api.evaluate(
        [str(tiny_llama)],
        [str(mc_task)],
        store=tmp_path / "s.db",
        settings=api.EvalSettings(batch_size=1, device="cpu"),
        show_progress=False,
        executor=KillAlways(max_retries=1, backlog=1),
    )
    (failure,) = result.failed
    assert failure.attempts == 2 and "worker died 2 times (retries: 1)" in failure.cause
    assert not failure.user_error and result.results == []


class _Recording(RayExecutor):
    """Records (model key, item key) of every item it is given (what this driver asked Ray to compute)."""

    def __init__(self, *a, stop_after_units=None, **k):
        super().__init__(*a, **k)
        self.given: list[str] = []
        self.stop_after_units = stop_after_units

    def run(self, units):
        units = list(units)
        for unit in units:
            self.given += [(unit.model.model_key, key) for t in unit.tasks for key in t.item_keys]
        yield from super().run(units)
        if self.stop_after_units is not None:
            self.stop_after_units -= len(units)
            if self.stop_after_units <= 0:
                raise KeyboardInterrupt  # the driver is stopped once these units are stored


def test_a_stopped_driver_resumes_with_only_the_missing_units(
    cluster, tiny_llama, tiny_gpt2, mc_task, tmp_path
):
    models, tasks = [str(tiny_llama), str(tiny_gpt2)], [str(mc_task)]
    settings = api.EvalSettings(**SETTINGS)
    store = tmp_path / "s.db"
    first = _Recording(capacity=1, stop_after_units=1)
    with pytest.raises(KeyboardInterrupt):
        api.evaluate(models, tasks, store=store, settings=settings, show_progress=False, executor=first)
    stored = set(_rows(store, "items", "model_key, item_key"))
    assert len(first.given) == 12 and stored == set(first.given)  # one of two models done
    second = _Recording()
    result = api.evaluate(models, tasks, store=store, settings=settings, show_progress=False, executor=second)
    assert len(second.given) == 12 and not set(second.given) & stored  # only the other model's items
    assert (result.succeeded, result.skipped) == (1, 1)
    local = tmp_path / "local.db"
    api.evaluate(models, tasks, store=local, settings=settings, show_progress=False)
    _assert_same_results(local, store)


def test_a_model_that_does_not_load_fails_once_and_the_run_exits_non_zero(
    cluster, tiny_llama, mc_task, tmp_path, monkeypatch, capsys
):
    from beyondscale import cli

    broken = tmp_path / "broken"  # a tokenizer that does not parse: found when its unit loads it
    shutil.copytree(tiny_llama, broken)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_text("{ not json", encoding="utf-8")
    store = tmp_path / "s.db"
    monkeypatch.setattr(
        "sys.argv",
        [
            "beyondscale",
            "eval",
            "-m",
            str(tiny_llama),
            "-m",
            f"broken={broken}",
            "-t",
            str(mc_task),
            "--store",
            str(store),
            "--device",
            "cpu",
            "--executor",
            "ray",
            "--max-retries",
            "3",
        ],
    )
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 1
    err = capsys.readouterr()
    assert err.out.count("cannot load model folder") == 1  # reported once, in the summary
    assert "units: 1 succeeded, 0 skipped (already stored), 1 failed" in err.out
    assert "failed: broken · tiny_mc: " in err.out and "UserError" not in err.out
    (log,) = (store.with_name("s.db.logs")).glob("*/broken-*.log")
    assert log.read_text().count("attempt ") == 1  # ran once: never retried
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT COUNT(DISTINCT model_key) FROM metrics").fetchone() == (1,)
    assert conn.execute("SELECT status FROM runs").fetchone() == ("failed",)


def test_two_drivers_on_one_store_never_compute_the_same_items(
    cluster, tiny_llama, tiny_gpt2, tiny_llama_big, mc_task, rolling_task, tmp_path
):
    models = [str(tiny_llama), str(tiny_gpt2), str(tiny_llama_big)]
    tasks = [str(mc_task), str(rolling_task)]
    settings = api.EvalSettings(**SETTINGS)
    store = tmp_path / "s.db"
    executors = [_Recording(capacity=1), _Recording(capacity=1)]
    results, errors = [None, None], []

    def drive(i):
        try:
            results[i] = api.evaluate(
                models, tasks, store=store, settings=settings, show_progress=False, executor=executors[i]
            )
        except BaseException as error:  # noqa: BLE001 - re-raised below in the test thread
            errors.append(error)

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    a, b = executors[0].given, executors[1].given
    assert len(a) + len(b) == 3 * (12 + 4) and not set(a) & set(b)  # each item asked of Ray exactly once
    assert a and b  # both drivers took a share
    assert results[0].succeeded + results[1].succeeded == 6
    local = tmp_path / "local.db"
    api.evaluate(models, tasks, store=local, settings=settings, show_progress=False)
    _assert_same_results(local, store)


def test_bench_on_ray_stores_the_same_rows_as_locally(cluster, tiny_llama, tiny_gpt2, tmp_path):
    kwargs = dict(
        prompt_tokens=(8, 16), new_tokens=3, repetitions=1, warmup=0, settings=api.EvalSettings(device="cpu")
    )
    local = api.bench([str(tiny_llama), str(tiny_gpt2)], store=tmp_path / "local.db", **kwargs)
    remote = api.bench(
        [str(tiny_llama), str(tiny_gpt2)], store=tmp_path / "ray.db", executor=RayExecutor(), **kwargs
    )
    cols = ["model", "prompt_tokens", "new_tokens"]
    assert remote[cols].values.tolist() == local[cols].values.tolist()
    for table, cols in (
        ("benchmarks", "model_key, prompt_tokens, new_tokens"),
        ("models", "model_key, facts"),
    ):
        assert _rows(tmp_path / "ray.db", table, cols) == _rows(tmp_path / "local.db", table, cols)


def test_a_unit_no_node_can_hold_fails_at_once_with_the_flag_to_set(cluster, tiny_llama, mc_task, tmp_path):
    from beyondscale.errors import UserError
    from beyondscale.executors import Resources

    store = tmp_path / "s.db"
    # the only unit fails on the user's setting before any work: one line naming the flag, and no empty run
    with pytest.raises(UserError) as err:
        api.evaluate([str(tiny_llama)], [str(mc_task)], store=store, show_progress=False,
                     settings=api.EvalSettings(**SETTINGS),
                     executor=RayExecutor(resources=Resources(memory_gb=100_000)))
    assert re.fullmatch(r"--model \S+: needs 100000\.00 GiB per unit but the largest Ray node offers \d+\.\d\d; "
                        r"set --ray-memory-gb", str(err.value)), str(err.value)
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)
