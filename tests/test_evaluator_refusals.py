"""A model the user points at that cannot load stops `eval` with one line and exit 2, and leaves no empty run:
a corrupt weights file before anything starts, an unreadable tokenizer as soon as its unit fails."""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from beyondscale.cli import main


def _run_cli(argv: list[str], monkeypatch, capfd) -> tuple[int, list[str]]:
    monkeypatch.setattr(sys, "argv", ["beyondscale", *argv])
    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capfd.readouterr()
    return exit_info.value.code, [line for line in captured.err.splitlines() if line.strip()]


def _runs(store: Path) -> list[tuple]:
    if not store.exists():
        return []
    with sqlite3.connect(store) as conn:
        return conn.execute("SELECT run_id FROM runs").fetchall() + conn.execute("SELECT * FROM run_units").fetchall()


def test_corrupt_weights_stop_before_any_run(tiny_llama, mc_task, tmp_path, monkeypatch, capfd) -> None:
    model = tmp_path / "corrupt"
    shutil.copytree(tiny_llama, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    store = tmp_path / "s.db"
    code, lines = _run_cli(["eval", "--model", str(model), "--tasks", str(mc_task), "--store", str(store),
                            "--device", "cpu"], monkeypatch, capfd)
    assert code == 2 and len(lines) == 1, lines
    assert "model.safetensors: not a valid safetensors file" in lines[0] and "Traceback" not in lines[0]
    assert _runs(store) == []


def test_unreadable_tokenizer_leaves_no_empty_run(tiny_llama, mc_task, tmp_path, monkeypatch, capfd) -> None:
    model = tmp_path / "badtok"
    shutil.copytree(tiny_llama, model)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (model / name).exists():
            (model / name).write_text("{ not json", encoding="utf-8")
    store = tmp_path / "s.db"
    code, lines = _run_cli(["eval", "--model", str(model), "--tasks", str(mc_task), "--store", str(store),
                            "--device", "cpu"], monkeypatch, capfd)
    assert code == 2, lines
    assert lines[-1].startswith("error: --model ") and "Traceback" not in "\n".join(lines)
    assert _runs(store) == []  # the run it started is discarded: nothing was computed
