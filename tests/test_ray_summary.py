"""Failure semantics shared by both executors, shown with the local one (no Ray needed): a unit whose
model does not load fails alone, is reported once with its cause, the others are stored and scored, the
run exits 1; unit logs are kept next to the store and printed by `results logs`; `local` never imports
Ray; bad executor flags are one-line errors (exit 2)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from beyondscale import api, cli


def _broken_copy(model, tmp_path):
    """A tokenizer that does not parse: found only when its unit loads it (a corrupt weights file is
    refused before any unit runs, see test_evaluator_refusals)."""
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    (broken / "tokenizer.json").write_text("{ not json", encoding="utf-8")
    (broken / "tokenizer_config.json").write_text("{ not json", encoding="utf-8")
    return broken


def _main(monkeypatch, *args):
    monkeypatch.setattr("sys.argv", ["beyondscale", *args])
    try:
        cli.main()
    except SystemExit as exit_info:
        return exit_info.code
    return 0


def test_a_failed_unit_ends_alone_and_the_run_exits_1(
    tiny_llama, tiny_gpt2, mc_task, tmp_path, monkeypatch, capsys
):
    broken, store = _broken_copy(tiny_llama, tmp_path), tmp_path / "s.db"
    code = _main(
        monkeypatch,
        "eval",
        "-m",
        str(tiny_llama),
        "-m",
        f"broken={broken}",
        "-m",
        str(tiny_gpt2),
        "-t",
        str(mc_task),
        "--store",
        str(store),
        "--device",
        "cpu",
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "units: 2 succeeded, 0 skipped (already stored), 1 failed" in out
    assert out.count("cannot load model folder") == 1 and "failed: broken · tiny_mc: " in out
    conn = sqlite3.connect(store)
    # the models after the broken one were still evaluated and scored
    assert conn.execute("SELECT COUNT(DISTINCT model_key) FROM metrics").fetchone() == (2,)
    assert conn.execute("SELECT status FROM run_units WHERE status='failed'").fetchall() == [("failed",)]
    # a second run skips what is stored and fails the broken model again, once
    code = _main(
        monkeypatch,
        "eval",
        "-m",
        str(tiny_llama),
        "-m",
        f"broken={broken}",
        "-m",
        str(tiny_gpt2),
        "-t",
        str(mc_task),
        "--store",
        str(store),
        "--device",
        "cpu",
    )
    assert code == 1 and "units: 0 succeeded, 2 skipped (already stored), 1 failed" in capsys.readouterr().out
    assert _main(monkeypatch, "results", "logs", "latest", "--store", str(store), "--model", "broken") == 0
    log = capsys.readouterr().out
    assert "attempt 1 on" in log and "Traceback" in log and "failed: " in log and "tiny-llama" not in log


def test_unit_logs_of_a_good_run(tiny_llama, mc_task, tmp_path):
    result = api.evaluate([str(tiny_llama)], [str(mc_task)], store=tmp_path / "s.db", show_progress=False)
    (log,) = (tmp_path / "s.db.logs" / result.run_id).glob("*.log")
    text = log.read_text()
    assert f"pid {os.getpid()} " in text and "tiny_mc (12 items)" in text and "12 items computed" in text
    assert (result.succeeded, result.skipped, result.failed) == (1, 0, [])


def test_bad_executor_flags_are_one_line_errors(tiny_llama, mc_task, tmp_path, monkeypatch, capsys):
    base = ["eval", "-m", str(tiny_llama), "-t", str(mc_task), "--store", str(tmp_path / "s.db")]
    assert _main(monkeypatch, *base, "--executor", "dask") == 2
    assert "--executor dask: expected local or ray" in capsys.readouterr().err
    assert _main(monkeypatch, *base, "--ray-address", "auto") == 2
    assert "--ray-address: only with --executor ray" in capsys.readouterr().err
    assert _main(monkeypatch, "results", "logs", "--store", str(tmp_path / "none.db")) == 2
    assert not (tmp_path / "s.db").exists()  # refused before anything was stored


def test_bench_keeps_the_good_models_rows_and_names_the_broken_one(tiny_llama, tmp_path):
    from beyondscale.errors import UserError

    broken, store = _broken_copy(tiny_llama, tmp_path), tmp_path / "s.db"
    with pytest.raises(UserError, match=r"bench: 1 failed \(broken: .*cannot load model folder"):
        api.bench(
            [str(tiny_llama), f"broken={broken}"],
            prompt_tokens=(8,),
            new_tokens=2,
            repetitions=1,
            warmup=0,
            store=store,
            settings=api.EvalSettings(device="cpu"),
        )
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT COUNT(*) FROM benchmarks").fetchone() == (1,)
    assert conn.execute("SELECT status FROM runs").fetchone() == ("failed",)


def test_the_local_executor_never_imports_ray(tiny_llama, mc_task, tmp_path):
    code = (
        f"import sys; from beyondscale import api; api.evaluate([{str(tiny_llama)!r}], [{str(mc_task)!r}], "
        f"store={str(tmp_path / 's.db')!r}, settings=api.EvalSettings(limit=2), show_progress=False); "
        "import beyondscale.cli; print('ray' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"
