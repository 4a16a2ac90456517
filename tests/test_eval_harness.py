"""`beyondscale eval` on lm-eval tasks: stored per-document scores equal lm-eval's own HF backend, a re-run
computes nothing, --output-path writes lm-eval's own files, analyze reads the result, lm-eval's flags parse."""

from __future__ import annotations

import json
import sqlite3
import sys

import pytest

from _cli_runner import run_cli
from _lmeval_tasks import write_parity_tasks
from beyondscale import cli

pytestmark = pytest.mark.filterwarnings("ignore")
TASKS = "tiny_arc_group,tiny_gsm8k"




@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from conftest import build_tiny_model

    root = tmp_path_factory.mktemp("eval_harness")
    models = [build_tiny_model(root / name, "llama", seed=seed, initializer_range=0.3)
              for name, seed in (("tiny-a", 0), ("tiny-b", 1))]
    return root, models, write_parity_tasks(root / "tasks")


@pytest.fixture(scope="module")
def reference(setup):
    """lm-eval itself (its TaskManager, its HF backend) on model A."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    _, models, folder = setup
    hf = HFLM(pretrained=str(models[0]), device="cpu", dtype="float32", batch_size=4)
    return simple_evaluate(model=hf, tasks=TASKS.split(","), task_manager=TaskManager(include_path=str(folder)),
                           log_samples=True, bootstrap_iters=0)


def _eval_args(setup, model, store, *extra):
    _, _, folder = setup
    return ("eval", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32", "--tasks", TASKS,
            "--include_path", str(folder), "--device", "cpu", "--batch_size", "4", "--bootstrap_iters", "0",
            "--store", str(store), "--json", *extra)


@pytest.fixture(scope="module")
def stored(setup):
    """Both models evaluated through `beyondscale eval` with lm-eval's own flags, model A twice."""
    root, models, _ = setup
    mp, store, out = pytest.MonkeyPatch(), root / "s.db", root / "out"
    runs = []
    for model in (models[0], models[1], models[0]):
        mp.setattr(sys, "argv", ["beyondscale", *_eval_args(setup, model, store, "--output_path", str(out),
                                                            "--log_samples")])
        with pytest.raises(SystemExit) as done:
            cli.main()
            raise SystemExit(0)
        assert done.value.code in (0, None)
        runs.append(_counts(store))
    mp.undo()
    return store, out, runs


def _counts(store) -> dict[str, int]:
    with sqlite3.connect(store) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("lm_requests", "items", "item_scores", "metrics", "measurements", "tasks")}


def _stored_docs(store, model_name: str, task: str) -> dict[str, dict]:
    """doc_hash -> per-document values, as the store keeps them for the model and task."""
    sql = ('SELECT i.item_key, s."values" FROM item_scores s JOIN items i USING(model_key, task_key, doc_id) '
           "JOIN tasks t USING(task_key) JOIN models m USING(model_key) WHERE t.name=? AND m.name=?")
    with sqlite3.connect(store) as conn:
        return {k: json.loads(v) for k, v in conn.execute(sql, (task, model_name))}


@pytest.mark.parametrize("task", ["tiny_arc_a", "tiny_arc_b", "tiny_gsm8k"])
def test_stored_per_document_scores_equal_lm_eval_hf(stored, reference, task):
    store = stored[0]
    ours = _stored_docs(store, "tiny-a", task)
    theirs = reference["samples"][task]
    assert len(ours) == len({s["doc_hash"] for s in theirs}) > 0
    for sample in theirs:
        for metric in sample["metrics"]:
            name = metric if sample["filter"] == "none" else f"{metric},{sample['filter']}"
            value = sample[metric]
            if isinstance(value, list):  # a rolling (loglikelihood, count) pair: kept as logprob and words/bytes
                count = "words" if metric == "word_perplexity" else "bytes"
                assert (ours[sample["doc_hash"]]["logprob"], ours[sample["doc_hash"]][count]) == tuple(value)
                continue
            assert ours[sample["doc_hash"]][name] == value, (task, sample["doc_id"], name)
    with sqlite3.connect(store) as conn:
        stored_metrics = dict(conn.execute(
            "SELECT metric, value FROM metrics JOIN tasks USING(task_key) JOIN models USING(model_key) "
            "WHERE tasks.name=? AND models.name='tiny-a'", (task,)))
    for key, value in reference["results"][task].items():
        metric, _, filter_key = key.partition(",")
        if filter_key and not metric.endswith("_stderr"):
            name = metric if filter_key == "none" else f"{metric},{filter_key}"
            assert stored_metrics[name] == pytest.approx(value), (task, key)


def test_group_aggregate_stored(stored, reference):
    with sqlite3.connect(stored[0]) as conn:
        acc, n = conn.execute("SELECT value, n_items FROM metrics JOIN tasks USING(task_key) JOIN models "
                              "USING(model_key) WHERE tasks.name='tiny_arc_group' AND metric='acc' "
                              "AND models.name='tiny-a'").fetchone()
    assert acc == pytest.approx(reference["groups"]["tiny_arc_group"]["acc,none"])
    assert n == 5 + 3  # its members' documents


def test_rerun_computes_and_writes_nothing(stored):
    _, _, (first, second, again) = stored
    assert first["lm_requests"] > 0 and second["lm_requests"] > first["lm_requests"]  # model B computed its own
    assert again == second  # model A again: every answer from the store, no row added anywhere
    assert first["measurements"] == 3  # one measured share per leaf task (arc a, arc b, gsm8k)


def test_output_path_is_lm_evals_own_layout(stored, reference):
    _, out, _ = stored
    results = sorted(out.rglob("results_*.json"))
    assert len(results) == 3 and len({p.parent for p in results}) == 2  # lm-eval's folder per model, file per run
    doc = json.loads(results[0].read_text())
    assert {"results", "groups", "configs", "n-samples"} <= set(doc)
    assert set(doc["results"]) == set(reference["results"]) and "acc,none" in doc["results"]["tiny_arc_a"]
    samples = sorted(out.rglob("samples_tiny_gsm8k_*.jsonl"))
    lines = [json.loads(line) for line in samples[0].read_text().splitlines()]
    assert len(lines) == len(reference["samples"]["tiny_gsm8k"]) and "doc_hash" in lines[0]


def test_analyze_and_export_read_the_stored_result(stored, reference, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "analyze", "--store", str(stored[0]), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verdict"]
    target = stored[0].parent / "items.jsonl"
    code, _, err = run_cli(monkeypatch, capsys, "results", "export", "--items", "--store", str(stored[0]),
                           "--format", "jsonl", "--out", str(target), "--tasks", "tiny_arc_a")
    assert code == 0, err
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert {r["model"] for r in rows} == {"tiny-a", "tiny-b"} and len(rows) == 10
    assert {r["doc_key"] for r in rows} == {s["doc_hash"] for s in reference["samples"]["tiny_arc_a"]}


def test_resume_computes_only_the_missing_requests(stored, setup, tmp_path):
    """As after kill -9: half of model A's answers stored, none of its documents or scores. The re-run asks the
    engine for exactly the missing answers and stores the same per-document scores as the full run."""
    _, models, _ = setup
    store = tmp_path / "partial.db"
    with sqlite3.connect(stored[0]) as src, sqlite3.connect(store) as dst:
        src.backup(dst)
    with sqlite3.connect(store) as conn:
        model_key = conn.execute("SELECT model_key FROM models WHERE name='tiny-a'").fetchone()[0]
        before = {t: _stored_docs(store, "tiny-a", t) for t in ("tiny_arc_a", "tiny_gsm8k")}
        total = conn.execute("SELECT COUNT(*) FROM lm_requests WHERE model_key=?", (model_key,)).fetchone()[0]
        conn.execute("DELETE FROM lm_requests WHERE model_key=? AND rowid % 2 = 0", (model_key,))
        kept = conn.execute("SELECT COUNT(*) FROM lm_requests WHERE model_key=?", (model_key,)).fetchone()[0]
        for table in ("items", "item_scores", "metrics", "measurements", "efficiency"):
            conn.execute(f"DELETE FROM {table} WHERE model_key=?", (model_key,))
    assert 0 < kept < total
    from beyondscale.store.requests import RequestCache

    computed, put_many = [], RequestCache.put_many
    mp = pytest.MonkeyPatch()
    mp.setattr(RequestCache, "put_many", lambda self, pairs: (computed.extend(pairs), put_many(self, pairs)))
    mp.setattr(sys, "argv", ["beyondscale", *_eval_args(setup, models[0], store)])
    with pytest.raises(SystemExit) as done:
        cli.main()
        raise SystemExit(0)
    mp.undo()
    assert done.value.code in (0, None)
    with sqlite3.connect(store) as conn:
        run_id = conn.execute("SELECT run_id FROM runs ORDER BY created DESC LIMIT 1").fetchone()[0]
        new = conn.execute("SELECT COUNT(*) FROM lm_requests WHERE model_key=? AND run_id=?",
                           (model_key, run_id)).fetchone()[0]
        measured = conn.execute("SELECT SUM(n_items) FROM measurements WHERE model_key=?", (model_key,)).fetchone()[0]
    assert len(computed) == new == total - kept  # only the missing answers were computed, each once
    assert 0 < measured <= 5 + 3 + 3  # the documents it computed something for were measured, no more
    assert {t: _stored_docs(store, "tiny-a", t) for t in before} == before


def test_a_task_file_is_the_same_task_as_its_name_in_a_folder(stored, setup, tmp_path):
    """Identity is content: lm-eval's YAML file passed by path is the task already stored by name (run by
    lm-eval's own loop for --output_path), so nothing is computed or scored anew; the unit path only files the
    stored answers per document (items)."""
    _, models, folder = setup
    store = tmp_path / "copy.db"
    with sqlite3.connect(stored[0]) as src, sqlite3.connect(store) as dst:
        src.backup(dst)
    before = _counts(store)
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", ["beyondscale", "eval", "--model", "hf", "--model_args",
                             f"pretrained={models[0]},dtype=float32", "--tasks", str(folder / "tiny_arc_a.yaml"),
                             "--device", "cpu", "--bootstrap_iters", "0", "--store", str(store), "--json"])
    with pytest.raises(SystemExit) as done:
        cli.main()
        raise SystemExit(0)
    mp.undo()
    assert done.value.code in (0, None)
    after = _counts(store)
    assert {t: n for t, n in after.items() if t != "items"} == {t: n for t, n in before.items() if t != "items"}


def test_system_instruction_reaches_the_prompt_and_is_a_task_of_its_own(stored, setup, tmp_path):
    _, models, folder = setup
    store = tmp_path / "system.db"
    mp = pytest.MonkeyPatch()
    for extra in ((), ("--system_instruction", "Answer tersely.")):
        mp.setattr(sys, "argv", ["beyondscale", "eval", "--model", "hf", "--model_args", f"pretrained={models[0]}",
                                 "--tasks", "tiny_arc_a", "--include_path", str(folder), "--device", "cpu",
                                 "--bootstrap_iters", "0", "--store", str(store), "--json", *extra])
        with pytest.raises(SystemExit) as done:
            cli.main()
            raise SystemExit(0)
        assert done.value.code in (0, None)
    mp.undo()
    with sqlite3.connect(store) as conn:
        keys = [k for (k,) in conn.execute("SELECT task_key FROM tasks WHERE name='tiny_arc_a' ORDER BY created")]
        prompts = [json.loads(conn.execute("SELECT request FROM items WHERE task_key=? AND doc_id=0",
                                           (k,)).fetchone()[0])["context"] for k in keys]
    assert len(keys) == 2  # the same documents under another prompt: another task, never mixed
    assert "Answer tersely." not in prompts[0] and prompts[1].startswith("Answer tersely.")
