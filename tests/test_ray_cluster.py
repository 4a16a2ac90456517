"""A real multi-node Ray cluster on loopback (a head and separate worker nodes, each its own raylet):
the CLI joins it with --ray-address, and a worker node that dies mid-unit has its unit finished on
another node, every item stored once, scores equal to the local loop's."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

ray = pytest.importorskip("ray")

from beyondscale import api  # noqa: E402
from beyondscale.executors import RayExecutor  # noqa: E402
from beyondscale.work import BatchResult  # noqa: E402


@pytest.fixture()
def cluster():
    from ray.cluster_utils import Cluster

    # The head holds no CPU: every unit runs on a worker node, which the test can take away.
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    yield c
    if ray.is_initialized():
        ray.shutdown()
    c.shutdown()


@pytest.mark.slow  # starts raylets (several seconds each) and a CLI driver process
def test_the_cli_joins_a_running_cluster(cluster, tiny_llama, tiny_gpt2, mc_task, tmp_path):
    cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1)
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
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
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
