"""`beyondscale import lm-eval`: lm-eval's own command line runs two tiny models on local data and saves its
output (`--output_path --log_samples`: EvaluationTracker, task metadata holding the model_args); the import is checked against those files,
read here independently (json + sqlite3), and against lm-eval's own numbers."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import sys
from pathlib import Path
from unittest import mock

import pytest

from _lmeval_tasks import INSTALLED, write_parity_tasks
from beyondscale import api, cli

TASKS = ["tiny_arc_a", "tiny_gsm8k", "tiny_wikitext"]
TABLES = ("models", "tasks", "runs", "run_units", "items", "item_scores", "metrics")


def run_lm_eval(model: Path, task_dir: Path, out: Path, tasks: list[str], samples: dict | None = None) -> Path:
    """lm-eval's own command line, in this process: `lm_eval run --model hf ... --output_path out --log_samples`."""
    from lm_eval.__main__ import cli_evaluate

    argv = ["lm_eval", "run", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
            "--tasks", ",".join(tasks), "--include_path", str(task_dir), "--output_path", str(out), "--log_samples",
            "--device", "cpu"]
    if samples:
        argv += ["--samples", json.dumps(samples)]
    with mock.patch.object(sys, "argv", argv):
        cli_evaluate()
    return out


def _installed_indexed_once():
    """lm-eval's `TaskIndex.build`, with its own installed task folder indexed by the first call only.

    Each `lm_eval run` indexes the ~12,000 installed task files again (~6 s, 90% of a run here); the files
    do not change between the runs below, and its task factory deep-copies an entry before using it, so
    a shared index gives each run what it would have built. Other folders (--include_path) are indexed
    on every call, as lm-eval does, and merged the same way: later paths override earlier ones."""
    from lm_eval.tasks._index import TaskIndex

    build = TaskIndex.build
    installed: dict[str, object] = {}

    def build_once(paths, *, resolve_includes=True):
        index: dict[str, object] = {}
        for root in paths:
            if Path(root) == INSTALLED and resolve_includes:
                if not installed:
                    installed.update(build([root], resolve_includes=True))
                index.update(installed)
            else:
                index.update(build([root], resolve_includes=resolve_includes))
        return index

    return mock.patch.object(TaskIndex, "build", staticmethod(build_once))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_llama, tiny_llama_big) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lmeval_runs")
    task_dir = write_parity_tasks(root / "tasks")
    with _installed_indexed_once():
        return _lm_eval_runs(root, task_dir, tiny_llama, tiny_llama_big)


def _lm_eval_runs(root: Path, task_dir: Path, tiny_llama: Path, tiny_llama_big: Path) -> dict[str, Path]:
    return {
        "small": run_lm_eval(tiny_llama, task_dir, root / "small", TASKS),
        "big": run_lm_eval(tiny_llama_big, task_dir, root / "big", ["tiny_arc_a", "tiny_wikitext"]),
        "half1": run_lm_eval(tiny_llama, task_dir, root / "half1", ["tiny_arc_a", "tiny_wikitext"],
                             {"tiny_arc_a": [0, 1], "tiny_wikitext": [0]}),
        "half2": run_lm_eval(tiny_llama, task_dir, root / "half2", ["tiny_arc_a", "tiny_wikitext"],
                             {"tiny_arc_a": [2, 3, 4], "tiny_wikitext": [1, 2]}),
    }


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["beyondscale", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    got = capsys.readouterr()
    return code, got.out, got.err


def _snapshot(db: Path) -> dict[str, list]:
    with sqlite3.connect(db) as conn:
        return {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}"))) for t in TABLES}


def _samples(folder: Path) -> dict[str, list[dict]]:
    return {p.name.split("_20")[0][len("samples_"):]: [json.loads(line) for line in p.read_text().splitlines()]
            for p in folder.rglob("samples_*.jsonl")}


def _results(folder: Path) -> dict:
    return json.loads(next(folder.rglob("results_*.json")).read_text())


def test_item_scores_equal_lm_eval_samples(runs, tmp_path):
    db = tmp_path / "s.db"
    summary = api.import_lm_eval(runs["small"], store=db)
    assert summary.runs_new == 1 and {u["task"] for u in summary.units} == set(TASKS)
    conn = sqlite3.connect(db)
    names = dict(conn.execute("SELECT task_key, name FROM tasks"))
    stored = {(names[t], d): json.loads(v) for t, d, v in conn.execute('SELECT task_key, doc_id, "values" FROM item_scores')}
    keys = {(names[t], d): k for t, d, k in conn.execute("SELECT task_key, doc_id, item_key FROM items")}
    n_checked = 0
    for task, rows in _samples(runs["small"]).items():
        for row in rows:
            suffix = "" if row["filter"] == "none" else f",{row['filter']}"
            for metric in row["metrics"]:
                if isinstance(row[metric], list):  # a rolling task's (loglikelihood, bytes) pair
                    assert stored[(task, row["doc_id"])]["logprob"] == row[metric][0]
                    continue
                assert stored[(task, row["doc_id"])][metric + suffix] == pytest.approx(row[metric], abs=0)
                n_checked += 1
            assert keys[(task, row["doc_id"])] == row["doc_hash"]
    assert n_checked >= 5 * 2 + 3 * 2  # acc/acc_norm on 5 docs, exact_match under two filters on 3 docs
    lm = _results(runs["small"])
    metrics = {(names[t], m): (v, s, n) for t, m, v, s, n in conn.execute("SELECT task_key, metric, value, stderr, "
                                                                          "n_items FROM metrics")}
    assert metrics[("tiny_arc_a", "acc")] == (lm["results"]["tiny_arc_a"]["acc,none"],
                                              lm["results"]["tiny_arc_a"]["acc_stderr,none"], 5)
    em = lm["results"]["tiny_gsm8k"]["exact_match,strict-match"]
    assert metrics[("tiny_gsm8k", "exact_match,strict-match")][0] == em
    rolling = [v for (task, _), v in stored.items() if task == "tiny_wikitext"]
    bpb = -sum(v["logprob"] for v in rolling) / math.log(2) / sum(v["bytes"] for v in rolling)
    assert len(rolling) == 3 and bpb == pytest.approx(lm["results"]["tiny_wikitext"]["bits_per_byte,none"], rel=1e-12)
    facts = json.loads(conn.execute("SELECT facts FROM models").fetchone()[0])
    assert facts["params_total"] == lm["config"]["model_num_parameters"] and facts["weights_hashed"] is False
    assert facts["identity_source"] == "lm-eval run: model_args" and facts["lm_eval_identity"]["backend"] == "hf"


def test_two_models_paired_by_document(runs, tmp_path, monkeypatch, capsys):
    db = tmp_path / "two.db"
    for name in ("small", "big"):
        code, _, err = _cli(monkeypatch, capsys, "import", "lm-eval", str(runs[name]), "--store", str(db),
                            "--name", f"tiny-{name}")
        assert code == 0, err
    analysis, frames = api.analyze(db)
    assert set(frames.models["model"]) == {"tiny-small", "tiny-big"}
    paired = analysis.paired
    arc = paired[(paired["task"] == "tiny_arc_a") & (paired["metric"] == "acc")]
    assert len(arc) == 1 and int(arc["n_items"].iloc[0]) == 5
    assert set(paired[paired["task"] == "tiny_wikitext"]["metric"]) == {"bits_per_byte"}
    small, big = (_samples(runs[n])["tiny_arc_a"] for n in ("small", "big"))
    by_hash = {r["doc_hash"]: r["acc"] for r in small}
    diff = sum(r["acc"] - by_hash[r["doc_hash"]] for r in big) / 5  # joined on lm-eval's doc_hash, here
    assert abs(float(arc["effect"].iloc[0])) == pytest.approx(abs(diff))


def test_reimport_adds_nothing(runs, tmp_path):
    db = tmp_path / "re.db"
    api.import_lm_eval(runs["small"], store=db)
    before = _snapshot(db)
    again = api.import_lm_eval(runs["small"], store=db)
    assert (again.runs_new, again.items_new) == (0, 0)
    assert _snapshot(db) == before


def test_two_folders_of_one_model_merge_by_document(runs, tmp_path):
    db = tmp_path / "merge.db"
    api.import_lm_eval(runs["half1"], store=db)
    api.import_lm_eval(runs["half2"], store=db)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM models").fetchone() == (1,)
    value, stderr, n = conn.execute("SELECT value, stderr, n_items FROM metrics m JOIN tasks t USING(task_key) "
                                    "WHERE t.name='tiny_arc_a' AND metric='acc'").fetchone()
    full = _results(runs["small"])["results"]["tiny_arc_a"]  # lm-eval on all 5 documents at once
    assert n == 5
    assert value == pytest.approx(full["acc,none"]) and stderr == pytest.approx(full["acc_stderr,none"])
    full_bpb = _results(runs["small"])["results"]["tiny_wikitext"]["bits_per_byte,none"]
    assert conn.execute("SELECT value, n_items FROM metrics m JOIN tasks t USING(task_key) WHERE "
                        "t.name='tiny_wikitext' AND metric='bits_per_byte'").fetchone() == (pytest.approx(full_bpb), 3)


def test_without_samples_aggregates_only(runs, tmp_path):
    folder = tmp_path / "agg"
    folder.mkdir()
    shutil.copy(next(runs["big"].rglob("results_*.json")), folder)
    db = tmp_path / "agg.db"
    summary = api.import_lm_eval(folder, store=db)
    assert any("paired tests are impossible" in n for n in summary.notes)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM item_scores").fetchone() == (0,)
    lm = _results(runs["big"])["results"]["tiny_arc_a"]
    assert conn.execute("SELECT value, n_items FROM metrics m JOIN tasks t USING(task_key) WHERE t.name='tiny_arc_a' "
                        "AND metric='acc'").fetchone() == (lm["acc,none"], 5)
    api.import_lm_eval(runs["small"], store=db)  # beside a model with per-document scores: no paired test
    analysis, _ = api.analyze(db)
    assert analysis.paired.empty and "no per-item results" in analysis.recommendation["reason"]


def test_without_a_parameter_count_says_so(runs, tmp_path):
    folder = _copy(runs["big"], tmp_path / "np")
    path = next(folder.rglob("results_*.json"))
    data = json.loads(path.read_text())
    del data["config"]["model_num_parameters"]
    path.write_text(json.dumps(data))
    summary = api.import_lm_eval(folder, store=tmp_path / "np.db")
    assert any("no model_num_parameters" in n for n in summary.notes)
    facts = json.loads(sqlite3.connect(tmp_path / "np.db").execute("SELECT facts FROM models").fetchone()[0])
    assert facts["params_total"] is None and "absent" in facts["params_source"]


def _copy(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    return dest


def _bad_no_results(runs, tmp_path):
    folder = _copy(runs["big"], tmp_path / "bad")
    for path in folder.rglob("results_*.json"):
        path.unlink()
    return folder, "no lm-eval results file"


def _bad_samples_count(runs, tmp_path):
    folder = _copy(runs["big"], tmp_path / "bad")
    path = next(folder.rglob("samples_tiny_arc_a_*.jsonl"))
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    return folder, "n-samples"


def _bad_json(runs, tmp_path):
    folder = _copy(runs["big"], tmp_path / "bad")
    path = next(folder.rglob("results_*.json"))
    path.write_text(path.read_text()[:200])
    return folder, "not readable JSON"


def _bad_document(runs, tmp_path):
    """Consistent within itself (task_hashes recomputed), but document 0 is not the store's document 0."""
    from lm_eval.utils import hash_string

    folder = _copy(runs["big"], tmp_path / "bad")
    path = next(folder.rglob("samples_tiny_arc_a_*.jsonl"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["doc_hash"] = "0" * 64
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    results_path = next(folder.rglob("results_*.json"))
    data = json.loads(results_path.read_text())
    data["task_hashes"]["tiny_arc_a"] = hash_string("".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"]
                                                            for r in rows))
    results_path.write_text(json.dumps(data))
    return folder, "not the same documents"


def _bad_name_for_two_models(runs, tmp_path):
    folder = tmp_path / "bad"
    for name in ("small", "big"):
        shutil.copytree(runs[name], folder / name)
    return folder, "--name"


@pytest.mark.parametrize("make_bad", [_bad_no_results, _bad_samples_count, _bad_json, _bad_document,
                                      _bad_name_for_two_models])
def test_bad_input_one_line_exit_2_store_unchanged(runs, tmp_path, monkeypatch, capsys, make_bad):
    db = tmp_path / "keep.db"
    api.import_lm_eval(runs["small"], store=db)
    before = _snapshot(db)
    folder, says = make_bad(runs, tmp_path)
    code, _, err = _cli(monkeypatch, capsys, "import", "lm-eval", str(folder), "--store", str(db), "--name", "m")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err
    assert _snapshot(db) == before
