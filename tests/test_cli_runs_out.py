"""What leaves through the command line: `eval --tracker mlflow` logs the run (read back with MLflow's own
client), a tracker that is not known or has unknown keys stops before any work, and `results export --items`
writes one row per (model, task, document) whose mean equals the stored score."""

from __future__ import annotations

import sqlite3
import sys

import pandas as pd
import pytest

from beyondscale.cli import main


def _cli(monkeypatch, capfd, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["beyondscale", *args])
    capfd.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def test_eval_with_mlflow_logs_the_scores(tiny_llama, mc_task, tmp_path, monkeypatch, capfd) -> None:
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    uri, store = f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "s.db"
    code, _, err = _cli(monkeypatch, capfd, "eval", "-m", f"tiny={tiny_llama}", "-t", str(mc_task), "--store",
                        str(store), "--device", "cpu", "--tracker", "mlflow", "--tracker-args",
                        f"tracking_uri={uri},experiment_name=cli")
    assert code == 0, err
    client = MlflowClient(uri)
    runs = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("cli").experiment_id])}
    with sqlite3.connect(store) as conn:
        (acc,) = conn.execute("SELECT value FROM metrics WHERE metric='acc'").fetchone()
    assert runs["tiny"].data.metrics["tiny_mc/acc"] == pytest.approx(acc)


@pytest.mark.parametrize(("args", "flag"), [(["--tracker", "neptune"], "--tracker neptune"),
                                            (["--tracker", "mlflow", "--tracker-args", "colour=red"], "colour"),
                                            (["--tracker-args", "project=x"], "--tracker-args")])
def test_bad_tracker_flags_stop_before_any_work(tiny_llama, mc_task, tmp_path, monkeypatch, capfd, args,
                                                flag) -> None:
    store = tmp_path / "s.db"
    code, _, err = _cli(monkeypatch, capfd, "eval", "-m", str(tiny_llama), "-t", str(mc_task), "--store", str(store),
                        *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and flag in lines[0], lines
    assert not store.exists()


def test_items_export_reproduces_the_stored_score(tiny_llama, mc_task, tmp_path, monkeypatch, capfd) -> None:
    pytest.importorskip("pyarrow")
    store, out = tmp_path / "s.db", tmp_path / "items.parquet"
    assert _cli(monkeypatch, capfd, "eval", "-m", f"tiny={tiny_llama}", "-t", str(mc_task), "--store", str(store),
                "--device", "cpu")[0] == 0
    code, _, err = _cli(monkeypatch, capfd, "results", "export", "--items", "--store", str(store), "--out", str(out))
    assert code == 0, err
    items = pd.read_parquet(out)
    with sqlite3.connect(store) as conn:
        (acc,) = conn.execute("SELECT value FROM metrics WHERE metric='acc'").fetchone()
    assert len(items) == 12 and items["acc"].mean() == pytest.approx(acc)
    code, _, err = _cli(monkeypatch, capfd, "results", "export", "--items", "--store", str(store), "--out",
                        str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(tmp_path) in err
