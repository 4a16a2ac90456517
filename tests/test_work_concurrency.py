"""Two real `eval` processes on one store compute each item once and count each measurement once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

# Runs the real CLI after counting every item the engine computes (pid, model folder, item key) into
# a log, with each batch slowed down so that the two processes overlap; both start together.
WRAPPER = """
import os, sys, time
from beyondscale.engine import Engine
original = Engine.run_batch
log = open(os.environ["COUNT_LOG"], "a")
def counted(self, batch):
    time.sleep(0.2)
    results = original(self, batch)
    for item in batch:
        log.write(f"{os.getpid()}\\t{self.model.config._name_or_path}\\t{item.key()}\\n")
    log.flush()
    return results
Engine.run_batch = counted
while not os.path.exists(os.environ["GO"]):
    time.sleep(0.01)
from beyondscale.cli import main
sys.argv = ["beyondscale", *sys.argv[1:]]
main()
"""


@pytest.mark.slow  # two interpreters start (torch import) and overlap on purpose: ~10-25 s
def test_two_processes_compute_each_item_once(tiny_llama, tiny_gpt2, mc_task, rolling_task, tmp_path):
    from conftest import write_mc_task

    small = write_mc_task(tmp_path / "small", n=6, name="small_mc")
    store, log, go = tmp_path / "s.db", tmp_path / "count.log", tmp_path / "go"
    env = {**os.environ, "COUNT_LOG": str(log), "GO": str(go), "TRANSFORMERS_VERBOSITY": "error"}
    args = ["eval", "--model", str(tiny_llama), "--model", str(tiny_gpt2), "--tasks", f"{small},{rolling_task}",
            "--store", str(store), "--batch-size", "1", "--json"]
    procs = [subprocess.Popen([sys.executable, "-c", WRAPPER, *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    time.sleep(0.5)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, stderr) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, stderr
    docs = [json.loads(stdout) for stdout, _ in outs]

    lines = [line.split("\t") for line in log.read_text().splitlines()]
    computed = Counter((Path(folder).name, key) for _, folder, key in lines)
    n_items = 2 * (6 + 4)  # two models x (6 multiple-choice + 4 rolling documents)
    assert len(computed) == n_items and max(computed.values()) == 1  # every item once, none twice
    per_process = Counter(pid for pid, _, _ in lines)
    assert len(per_process) == 2, per_process  # both processes did work: they really ran side by side

    conn = sqlite3.connect(store)
    count = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
             for t in ("items", "measurements", "item_scores", "metrics", "efficiency", "claims")}
    assert count == {"items": n_items, "measurements": n_items, "item_scores": n_items, "metrics": 2 * (2 + 3),
                     "efficiency": 4, "claims": 0}
    measured = conn.execute("SELECT SUM(n_items), SUM(tokens_in) FROM measurements").fetchone()
    stored_tokens = sum(json.loads(r)["tokens_in"] for (r,) in conn.execute("SELECT result FROM items"))
    assert measured == (n_items, stored_tokens)
    # Both report the same scores, whoever computed the items.
    assert [r["metrics"] for r in docs[0]["results"]] == [r["metrics"] for r in docs[1]["results"]]
