"""kill -9 in the middle of `beyondscale eval` on an lm-eval task, then the same command again: only the answers
the killed process had not stored are computed, and the stored scores equal an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from _lmeval_tasks import _jsonl, arc_rows, override
from beyondscale import cli

pytestmark = pytest.mark.filterwarnings("ignore")
N_DOCS = 120


def _count(store) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM lm_requests").fetchone()[0]
    except sqlite3.Error:
        return 0


def _args(model, folder, store) -> list[str]:
    """--output_path: lm-eval's own loop drives (the unit path's kill -9 is test_cli's)."""
    return ["eval", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32", "--tasks", "tiny_kill",
            "--include_path", str(folder), "--device", "cpu", "--batch_size", "1", "--bootstrap_iters", "0",
            "--store", str(store), "--json", "--output_path", str(folder.parent / f"out-{store.stem}")]


def _run_here(args: list[str]) -> None:
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", ["beyondscale", *args])
    try:
        with pytest.raises(SystemExit) as done:
            cli.main()
            raise SystemExit(0)
    finally:
        mp.undo()
    assert done.value.code in (0, None)


def _scores(store) -> dict[str, str]:
    with sqlite3.connect(store) as conn:
        return dict(conn.execute('SELECT i.item_key, s."values" FROM item_scores s '
                                 "JOIN items i USING(model_key, task_key, doc_id)"))


def test_kill_9_then_rerun_computes_only_what_is_missing(tmp_path):
    from beyondscale.store.requests import RequestCache
    from conftest import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny", "llama", initializer_range=0.3)
    folder = tmp_path / "tasks"
    folder.mkdir()
    override(folder, "tiny_kill", "arc/arc_easy.yaml", {"test": _jsonl(tmp_path / "arc.jsonl", arc_rows(N_DOCS))})
    store = tmp_path / "killed.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "beyondscale.cli", *_args(model, folder, store)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from beyondscale.tasks import harness

    harness._installed_index()  # this process's index of lm-eval's task files, built while the child starts
    deadline = time.monotonic() + 240
    while _count(store) < 8 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = _count(store)
    assert 0 < kept < 4 * N_DOCS, kept  # killed mid-run, some answers stored
    computed, put_many = [], RequestCache.put_many
    mp = pytest.MonkeyPatch()
    mp.setattr(RequestCache, "put_many", lambda self, pairs: (computed.extend(pairs), put_many(self, pairs)))
    try:
        _run_here(_args(model, folder, store))
    finally:
        mp.undo()
    assert len(computed) == 4 * N_DOCS - kept == _count(store) - kept
    fresh = tmp_path / "fresh.db"
    _run_here(_args(model, folder, fresh))
    ours, theirs = _scores(store), _scores(fresh)
    assert len(ours) == N_DOCS and ours.keys() == theirs.keys()
    for key, values in theirs.items():
        a, b = json.loads(ours[key]), json.loads(values)
        assert a == b, key
