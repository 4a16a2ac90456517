"""Who drives an evaluation: the unit path where every document's requests are one engine Item, lm-eval's own
loop where they are not (sampled generation, repeats), and the user told when an executor cannot follow."""

from __future__ import annotations

import json
import sqlite3

import pytest

from beyondscale import api
from beyondscale.errors import UserError


def _sampled_task(folder):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"prompt": f"Count on from {i}:", "answer": f" {i + 1}"} for i in range(3)]
    (folder / "sampled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = folder / "sampled.yaml"
    path.write_text(
        "task: sampled\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: sampled.jsonl\ntest_split: test\n"
        "output_type: generate_until\ndoc_to_text: '{{prompt}}'\ndoc_to_target: '{{answer}}'\nrepeats: 2\n"
        "generation_kwargs:\n  until: ['\\n']\n  max_gen_toks: 3\n  do_sample: true\n  temperature: 1.0\n"
        "filter_list:\n  - name: first\n    filter:\n      - function: take_first\n"
        "metric_list:\n  - metric: exact_match\n", encoding="utf-8")
    return path


def test_a_plain_task_runs_as_units_with_lm_evals_identity(tiny_llama, mc_task, tmp_path):
    store = tmp_path / "s.db"
    result = api.evaluate([str(tiny_llama)], [str(mc_task)], store=store, show_progress=False)
    assert result.succeeded == 1 and result.results[0].n_items == 12
    with sqlite3.connect(store) as conn:
        info = json.loads(conn.execute("SELECT build FROM run_units").fetchone()[0])
        request = json.loads(conn.execute("SELECT request FROM items LIMIT 1").fetchone()[0])
        answers = conn.execute("SELECT COUNT(*) FROM lm_requests").fetchone()[0]
    assert info["lm_eval_identity"]["name"] == "tiny_mc" and info["doc_ids"] == list(range(12))
    assert request["output_type"] == "multiple_choice" and request["context"].startswith("Question:")
    assert answers == 12 * 4  # each answer shared per request for lm-eval's own loop


def test_sampled_repeats_go_to_lm_evals_loop_and_are_never_cached(tiny_llama, tmp_path):
    task = _sampled_task(tmp_path / "tasks")
    store = tmp_path / "s.db"
    result = api.evaluate([str(tiny_llama)], [str(task)], store=store, show_progress=False)
    assert result.results[0].n_items == 3 and "exact_match,first" in result.results[0].metrics
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT COUNT(*) FROM lm_requests").fetchone()[0] == 0  # sampled: repeats must differ


def test_an_executor_that_cannot_follow_lm_evals_loop_is_one_line(tiny_llama, tmp_path):
    task = _sampled_task(tmp_path / "tasks")
    with pytest.raises(UserError, match="--executor: .* run in this process only"):
        api.evaluate([str(tiny_llama)], [str(task)], store=tmp_path / "s.db", show_progress=False,
                     executor=object())
    assert not (tmp_path / "s.db").exists()
