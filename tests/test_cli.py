"""End to end through the real CLI: JSON output, export, bad input, and resume after a hard kill.

A real process where the test is about one (stdout of a fresh interpreter holding only the JSON document;
the evaluation killed with SIGKILL); the commands after it run `main()` in this process (no interpreter
start-up, ~4 s each), on the same store and with the same arguments."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _cli_runner import run_cli

BIN = [sys.executable, "-m", "beyondscale.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "TRANSFORMERS_VERBOSITY": "error"}


def run(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*BIN, *args], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


def store_rows(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def in_process(monkeypatch, capfd, *args: str) -> str:
    """`beyondscale ARGS` through `main()` in this process; its stdout (exit status 0 asserted)."""
    code, out, err = run_cli(monkeypatch, capfd, *args)
    assert code == 0, f"exit {code}\nstdout:{out}\nstderr:{err}"
    return out


def test_eval_json_and_export(tiny_llama, mc_task, rolling_task, tmp_path, monkeypatch, capfd):
    store = tmp_path / "s.db"
    proc = run("eval", "--model", f"Tiny={tiny_llama}", "--tasks", f"{mc_task},{rolling_task}", "--store",
               str(store), "--json", "--limit", "6")
    doc = json.loads(proc.stdout)  # stdout holds only the JSON document
    assert {r["task"] for r in doc["results"]} == {"tiny_mc", "tiny_ppl"}
    mc = next(r for r in doc["results"] if r["task"] == "tiny_mc")
    assert mc["model"] == "Tiny" and mc["n_items"] == 6
    assert 0.0 <= mc["metrics"]["acc"] <= 1.0 and "acc_stderr" in mc["metrics"] and "acc_norm" in mc["metrics"]
    assert mc["efficiency"]["energy_source"] == "estimate:tdp"
    out = tmp_path / "r.csv"
    in_process(monkeypatch, capfd, "results", "export", doc["run_id"], "--store", str(store), "--format", "csv",
               "--out", str(out))
    header = out.read_text().splitlines()[0].split(",")
    assert {"model", "task", "metric", "value", "stderr", "params_total", "joules_per_token", "energy_source"} <= set(
        header
    )
    shown = in_process(monkeypatch, capfd, "results", "show", "latest", "--store", str(store), "--json")
    assert len(json.loads(shown)) == 5  # acc, acc_norm + three rolling metrics


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "./no/such/model"], "no such file or folder"),
        (["--tasks", "arc_easyy"], "arc_easy"),
        (["--tasks", "{bad_yaml}"], "nonsense_field"),
        (["--limit", "0"], "--limit"),
        (["--batch-size", "many"], "--batch-size"),
        (["--region", "XX-nowhere"], "region"),
        (["--cpu-watts", "-5"], "cpu-watts"),
    ],
)
def test_bad_input_one_line_exit_2(args, message, tiny_llama, mc_task, tmp_path, monkeypatch, capfd):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text(mc_task.read_text() + "nonsense_field: 1\n")
    store = tmp_path / "s.db"
    base = {"--model": str(tiny_llama), "--tasks": str(mc_task), "--store": str(store)}
    given = dict(zip(args[::2], args[1::2], strict=True))
    full = []
    for key, value in {**base, **given}.items():
        full += [key, value.replace("{bad_yaml}", str(bad_yaml))]
    code, stderr = run_in_process(monkeypatch, capfd, "eval", *full)
    assert code == 2, stderr
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    assert message in lines[0]
    assert not store.exists()  # rejected before anything was opened or written


def run_in_process(monkeypatch, capfd, *args: str) -> tuple[int, str]:
    """The CLI's `main()` in this process (no interpreter start-up): exit code and stderr."""
    from beyondscale.cli import main

    monkeypatch.setattr(sys, "argv", ["beyondscale", *args])
    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capfd.readouterr().err


def test_foreign_store_is_refused_and_untouched(tiny_llama, mc_task, tmp_path, monkeypatch, capfd):
    store = tmp_path / "notes.db"
    store.write_text("my notes\n")
    code, stderr = run_in_process(monkeypatch, capfd, "eval", "--model", str(tiny_llama), "--tasks", str(mc_task),
                                  "--store", str(store))
    assert code == 2 and "not a beyondscale database" in stderr
    assert store.read_text() == "my notes\n"


# The real CLI with every batch slowed down (0.2 s each, 8 s for 40 items), so the kill lands mid-evaluation
# however fast the machine is.
SLOW_EVAL = """
import sys, time
from beyondscale.engine import Engine
original = Engine.run_batch
def slowed(self, batch):
    time.sleep(0.2)
    return original(self, batch)
Engine.run_batch = slowed
from beyondscale.cli import main
sys.argv = ["beyondscale", *sys.argv[1:]]
main()
"""


def test_resume_after_kill(tiny_llama, tmp_path, monkeypatch, capfd):
    from conftest import write_mc_task

    task = write_mc_task(tmp_path / "tasks", n=40)
    store = tmp_path / "s.db"
    args = ["eval", "--model", str(tiny_llama), "--tasks", str(task), "--store", str(store), "--batch-size", "1",
            "--json"]
    proc = subprocess.Popen([sys.executable, "-c", SLOW_EVAL, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if store.exists():
            try:
                done = store_rows(store, "items")
            except sqlite3.OperationalError:
                continue
            if done >= 3:
                break
    if proc.poll() is not None:
        _, err = proc.communicate()
        pytest.fail(f"evaluation ended (exit {proc.returncode}, {done} items stored) before it could be killed: "
                    f"{err.decode()[-2000:]}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = store_rows(store, "items")
    assert 3 <= partial < 40

    resumed = json.loads(in_process(monkeypatch, capfd, *args))
    assert store_rows(store, "items") == 40
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT COUNT(DISTINCT item_key) FROM items").fetchone()[0] == 40
    assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 40  # one per batch of 1
    assert conn.execute("SELECT COUNT(*) FROM item_scores").fetchone()[0] == 40  # one score set, not one per run
    assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 2
    assert conn.execute("SELECT SUM(items_computed) FROM run_units").fetchone()[0] == 40 - partial
    conn.close()
    in_process(monkeypatch, capfd, *args)  # the same command once more: nothing to compute, no score rows added
    assert store_rows(store, "item_scores") == 40 and store_rows(store, "metrics") == 2

    fresh = json.loads(in_process(monkeypatch, capfd, *[a if a != str(store) else str(tmp_path / "fresh.db")
                                                         for a in args]))
    got, want = resumed["results"][0]["metrics"], fresh["results"][0]["metrics"]
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-9)


def test_fit_cli_json_recovers_constants(tmp_path, monkeypatch, capfd):
    import numpy as np

    from beyondscale.cli import main

    rows = ["params,tokens,loss,run_name"]
    for n in (1e7, 3e7, 1e8, 3e8, 1e9):
        for d in (1e9, 3e9, 1e10, 3e10):
            rows.append(f"{n},{d},{1.8 + 400 / n**0.34 + 2000 / d**0.37},run")  # extra column ignored
    data = tmp_path / "points.csv"
    data.write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(sys, "argv", ["beyondscale", "fit", "--data", str(data), "--json"])
    capfd.readouterr()
    main()
    doc = json.loads(capfd.readouterr().out)
    assert doc["n_points"] == 20
    for key, true in {"floor": 1.8, "A": 400, "alpha": 0.34, "B": 2000, "beta": 0.37}.items():
        assert doc[key] == pytest.approx(true, rel=0.05), key
    # N_opt minimises the fitted loss along C = 6 N D (brute force over a fine grid of N).
    c = doc["compute_optimal"][1]
    grid = np.logspace(6, 13, 200_001)
    loss = doc["A"] / grid ** doc["alpha"] + doc["B"] / (c["C"] / (6 * grid)) ** doc["beta"]
    assert c["N_opt"] == pytest.approx(grid[np.argmin(loss)], rel=1e-3)

    monkeypatch.setattr(sys, "argv", ["beyondscale", "fit", "--data", str(tmp_path / "missing.csv")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and "missing.csv" in capfd.readouterr().err
