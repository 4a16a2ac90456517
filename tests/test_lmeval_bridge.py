"""The bridge to lm-eval's task library: names, folders, code guard, bad input as one line, content keys."""

from __future__ import annotations

import json

import pytest

from _lmeval_tasks import _jsonl, arc_rows, hellaswag_rows, override
from beyondscale.errors import UserError
from beyondscale.tasks import harness

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture()
def folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    override(tmp_path, "tiny_arc", "arc/arc_easy.yaml", {"test": _jsonl(data / "arc.jsonl", arc_rows(4))})
    override(tmp_path, "tiny_hellaswag", "hellaswag/hellaswag.yaml",
             {"validation": _jsonl(data / "hs.jsonl", hellaswag_rows(3))})
    return tmp_path


def manager(path, **kwargs):
    return harness.task_manager(path, include_defaults=False, **kwargs)


def test_installed_names_groups_and_tags_listed_and_unknown_name_gets_nearest():
    full = harness.task_manager()
    kinds = {t.name: t.kind for t in harness.list_tasks("arc_", manager=full)}
    assert kinds["arc_easy"] == "task"
    assert {t.name: t.kind for t in harness.list_tasks("mmlu", manager=full)}["mmlu"] == "group"
    assert {t.name: t.kind for t in harness.list_tasks("ai2_arc", manager=full)}["ai2_arc"] == "tag"
    assert len(full.all_tasks) > 10_000
    with pytest.raises(UserError, match=r"--tasks arc_esy: .*nearest: arc_easy"):
        harness.load_tasks("arc_esy", manager=full)


def test_folder_names_comma_separated_and_yaml_file(folder):
    m = manager(folder)
    loaded = harness.load_tasks("tiny_arc, tiny_hellaswag", manager=m)
    assert sorted(loaded.tasks) == ["tiny_arc", "tiny_hellaswag"]
    one = harness.load_tasks(str(folder / "tiny_arc.yaml"), manager=m)
    assert list(one.tasks) == ["tiny_arc"]
    assert [t.name for t in harness.list_tasks("tiny_*", manager=m)] == ["tiny_arc", "tiny_hellaswag"]
    with pytest.raises(UserError, match="nearest: tiny_hellaswag"):
        harness.load_tasks("tiny_hellaswg", manager=m)
    with pytest.raises(UserError, match="--include-path"):
        harness.task_manager(folder / "nope")


def _user_function_task(tmp_path):
    marker = tmp_path / "imported.txt"
    (tmp_path / "utils.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n\n"
        "def process_docs(dataset):\n    return dataset.map(lambda d: {**d, 'question': d['question'].upper()})\n")
    data = _jsonl(tmp_path / "arc.jsonl", arc_rows(3))
    override(tmp_path, "user_code", "arc/arc_easy.yaml", {"test": data}, "process_docs: !function utils.process_docs\n")
    return marker


def test_user_function_needs_allow_task_code(tmp_path):
    marker = _user_function_task(tmp_path)
    with pytest.raises(UserError) as err:
        harness.load_tasks("user_code", manager=manager(tmp_path))
    msg = str(err.value)
    assert "user_code.yaml" in msg and "utils.process_docs" in msg and "--allow-task-code" in msg
    assert "\n" not in msg and not marker.exists()  # nothing of the file's code ran
    loaded = harness.load_tasks("user_code", manager=manager(tmp_path, allow_task_code=True))
    assert marker.exists()
    assert loaded.tasks["user_code"].eval_docs[0]["question"].isupper()


def test_group_with_missing_member(folder):
    (folder / "g.yaml").write_text("group: tiny_group\ntask:\n  - tiny_arc\n  - tiny_arcc\n")
    with pytest.raises(UserError, match=r"group 'tiny_group' .*'tiny_arcc'.*nearest: tiny_arc"):
        harness.load_tasks("tiny_group", manager=manager(folder))


def test_hub_dataset_offline_names_it_and_says_how_to_use_local_files(tmp_path, monkeypatch):
    import datasets

    calls = []

    def offline(*args, **kwargs):
        calls.append(kwargs)
        raise ConnectionError("Couldn't reach 'someorg/some_data' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    (tmp_path / "hub.yaml").write_text(
        "task: hub_task\ndataset_path: someorg/some_data\ndataset_name: cfg\ntest_split: test\n"
        "output_type: multiple_choice\ndoc_to_text: '{{q}}'\ndoc_to_target: 0\ndoc_to_choice: ['a', 'b']\n")
    with pytest.raises(UserError) as err:
        harness.load_tasks("hub_task", manager=manager(tmp_path))
    assert calls == [{"path": "someorg/some_data", "name": "cfg"}]
    msg = str(err.value)
    assert "'someorg/some_data'" in msg and "dataset_path" in msg and "data_files" in msg and "\n" not in msg


def test_refused_config_and_bad_limit(tmp_path):
    (tmp_path / "mm.yaml").write_text("task: mm\ndataset_path: json\noutput_type: generate_until\n"
                                      "doc_to_text: '{{q}}'\ndoc_to_image: image\n")
    with pytest.raises(UserError, match="multimodal"):
        harness.load_tasks("mm", manager=manager(tmp_path))
    with pytest.raises(UserError, match="--limit 1.5"):
        harness.run_harness(object(), harness.HarnessTasks({}, {}, {}, [], None), limit=1.5)


def test_templates_are_sandboxed(tmp_path):
    data = _jsonl(tmp_path / "arc.jsonl", arc_rows(2))
    override(tmp_path, "escape", "arc/arc_easy.yaml", {"test": data},
             "doc_to_text: \"{{ question.__class__.__mro__[1].__subclasses__() }}\"\n")
    with pytest.raises(UserError, match="escape.*unsafe"):
        harness.load_tasks("escape", manager=manager(tmp_path))


def test_task_key_is_content_and_item_key_is_lm_evals_doc_hash(folder, tmp_path_factory, tiny_llama):
    from beyondscale.engine.lm_eval_model import BeyondscaleLM

    loaded = harness.load_tasks("tiny_arc", manager=manager(folder))
    task = loaded.tasks["tiny_arc"]
    first = harness.task_identity(task, fewshot_seed=1234)
    assert first.n_docs == 4 and first.lm_eval_version

    other = tmp_path_factory.mktemp("copy")
    rows = [json.loads(line) for line in (folder / "data" / "arc.jsonl").read_text().splitlines()]
    override(other, "tiny_arc", "arc/arc_easy.yaml", {"test": _jsonl(other / "moved.jsonl", rows)})
    moved = harness.task_identity(harness.load_tasks("tiny_arc", manager=manager(other)).tasks["tiny_arc"], 1234)
    assert moved.key == first.key  # same content at another path: the same task

    rows[2]["question"] += "?"
    _jsonl(other / "moved.jsonl", rows)
    changed = harness.task_identity(harness.load_tasks("tiny_arc", manager=manager(other)).tasks["tiny_arc"], 1234)
    assert changed.key != first.key and changed.config_key == first.config_key
    assert harness.task_identity(task, fewshot_seed=7).key != first.key
    task.set_config(key="num_fewshot", value=2)
    assert harness.task_identity(task, fewshot_seed=1234).config_key != first.config_key

    lm = BeyondscaleLM(pretrained=str(tiny_llama), device="cpu", dtype="float32")
    out = harness.run_harness(lm, harness.load_tasks("tiny_arc", manager=manager(folder)), bootstrap_iters=0)
    hashes = sorted(s["doc_hash"] for s in out["samples"]["tiny_arc"])
    assert hashes == sorted(harness.doc_key(d) for d in task.eval_docs)
