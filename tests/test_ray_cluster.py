"""A real multi-node Ray cluster on loopback (a head and separate worker nodes, each its own raylet):
the CLI joins it with --ray-address, and a worker node that dies mid-unit has its unit finished on
another node, every item stored once, scores equal to the local loop's."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest

ray = pytest.importorskip("ray")

from beyondscale import api  # noqa: E402
from beyondscale.executors import RayExecutor  # noqa: E402
from beyondscale.work import BatchResult  # noqa: E402


def _cluster(dashboard: bool):
    from ray.cluster_utils import Cluster

    # The head holds no CPU: every unit runs on a worker node, which the test can take away.
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": dashboard})
    yield c
    if ray.is_initialized():
        ray.shutdown()
    c.shutdown()


@pytest.fixture()
def cluster():
    yield from _cluster(dashboard=False)


@pytest.fixture()
def watched_cluster():
    """With the dashboard, whose state API says which node ran each task."""
    yield from _cluster(dashboard=True)


def _units_on(cluster, n: int) -> list:
    """The cluster's own record of the units it ran (Ray tasks of `_run_guarded`), once all n finished."""
    from ray.util.state import list_tasks

    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    deadline = time.time() + 60  # task events reach the state API a moment after the tasks end
    while True:
        tasks = list_tasks(filters=[("func_or_class_name", "=", "_run_guarded")], detail=True,
                           raise_on_missing_output=False)
        if (len(tasks) >= n and all(t.state == "FINISHED" for t in tasks)) or time.time() > deadline:
            return tasks
        time.sleep(0.5)


@pytest.mark.slow  # starts raylets (several seconds each), the dashboard and a CLI driver process
def test_the_cli_joins_a_running_cluster(watched_cluster, tiny_llama, tiny_gpt2, mc_task, tmp_path):
    cluster = watched_cluster
    workers = {cluster.add_node(num_cpus=1).node_id, cluster.add_node(num_cpus=1).node_id}
    store = tmp_path / "s.db"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "beyondscale.cli",
            "eval",
            "-m",
            str(tiny_llama),
            "-m",
            str(tiny_gpt2),
            "-t",
            str(mc_task),
            "--store",
            str(store),
            "--device",
            "cpu",
            "--batch-size",
            "4",
            "--executor",
            "ray",
            "--ray-address",
            cluster.address,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        # Were --ray-address ignored, RAY_ADDRESS=local would have the CLI start a Ray of its own.
        env={**os.environ, "OMP_NUM_THREADS": "1", "RAY_ADDRESS": "local"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The cluster ran the two units (one per model), on its worker nodes, in the processes the unit logs name.
    units = _units_on(cluster, 2)
    assert len(units) == 2 and {t.state for t in units} == {"FINISHED"}, units
    assert {t.node_id for t in units} <= workers
    (run_id,) = [p.name for p in (tmp_path / "s.db.logs").iterdir()]
    logged = {int(m) for log in (tmp_path / "s.db.logs" / run_id).glob("*.log")
              for m in re.findall(r"attempt 1 on \S+ pid (\d+)", log.read_text())}
    assert logged == {t.worker_pid for t in units}
    local = api.evaluate(
        [str(tiny_llama), str(tiny_gpt2)],
        [str(mc_task)],
        store=tmp_path / "local.db",
        settings=api.EvalSettings(batch_size=4, device="cpu"),
        show_progress=False,
    )
    conn = sqlite3.connect(store)
    got = dict(
        ((m, t, k), v)
        for m, t, k, v in conn.execute("SELECT model_key, task_key, metric, value FROM metrics")
    )
    want = {
        (r.model_key, r.task_key, k): v
        for r in local.results
        for k, v in r.metrics.items()
        if not k.endswith("_stderr")
    }
    assert got.keys() == want.keys() and [got[k] for k in want] == pytest.approx(
        list(want.values()), abs=1e-6
    )


@pytest.mark.slow  # a node is removed mid-unit and another added: ~20-40 s
def test_a_node_lost_mid_unit_is_retried_on_another_node(cluster, tiny_llama, mc_task, tmp_path):
    victim = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)

    class LoseTheNode(RayExecutor):
        lost = False

        def run(self, units):
            for output in super().run(units):
                yield output
                if isinstance(output, BatchResult) and not self.lost:
                    type(self).lost = True
                    cluster.remove_node(victim, allow_graceful=False)
                    cluster.add_node(num_cpus=1)

    settings = api.EvalSettings(batch_size=1, device="cpu")
    result = api.evaluate(
        [str(tiny_llama)],
        [str(mc_task)],
        store=tmp_path / "s.db",
        settings=settings,
        show_progress=False,
        executor=LoseTheNode(max_retries=2, backlog=1),
    )
    assert LoseTheNode.lost and result.failed == []
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT item_key) FROM items").fetchone() == (12, 12)
    assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone() == (12,)
    (log,) = (tmp_path / "s.db.logs" / result.run_id).glob("*.log")
    assert "worker died" in log.read_text() and "attempt 2 on" in log.read_text()
    local = api.evaluate(
        [str(tiny_llama)], [str(mc_task)], store=tmp_path / "local.db", settings=settings, show_progress=False
    )
    assert result.results[0].metrics == pytest.approx(local.results[0].metrics, abs=1e-6)
