"""`beyondscale eval` on lm-eval tasks refuses bad input in one line, exit 2, before any model loads and
without creating the store; lm-eval's flags parse in both spellings."""

from __future__ import annotations

import pytest

from _cli_runner import run_cli
from _lmeval_tasks import _jsonl, arc_rows, override
from beyondscale import cli
from beyondscale.errors import UserError

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture()
def folder(tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    override(tasks, "tiny_arc", "arc/arc_easy.yaml", {"test": _jsonl(tmp_path / "arc.jsonl", arc_rows(4))})
    return tasks


def _refused(monkeypatch, capsys, tmp_path, folder, *args: str, model_args: str = "pretrained=/no/such/model") -> str:
    store = tmp_path / "s.db"
    code, out, err = run_cli(monkeypatch, capsys, "eval", "--model", "hf", "--model_args", model_args,
                             "--include_path", str(folder), "--store", str(store), *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert "Traceback" not in err and out == "" and not store.exists()
    return lines[0]


def test_unknown_task_names_the_nearest(monkeypatch, capsys, tmp_path, folder):
    line = _refused(monkeypatch, capsys, tmp_path, folder, "--tasks", "tiny_arcc")
    assert "--tasks tiny_arcc" in line and "nearest: tiny_arc" in line


def test_group_with_a_missing_member(monkeypatch, capsys, tmp_path, folder):
    (folder / "g.yaml").write_text("group: tiny_group\ntask:\n  - tiny_arc\n  - tiny_arx\n")
    line = _refused(monkeypatch, capsys, tmp_path, folder, "--tasks", "tiny_group")
    assert "tiny_group" in line and "tiny_arx" in line and "nearest: tiny_arc" in line


def test_hub_dataset_while_offline(monkeypatch, capsys, tmp_path, folder):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'someorg/some_data' on the Hub (offline mode is enabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    (folder / "hub.yaml").write_text(
        "task: hub_task\ndataset_path: someorg/some_data\ntest_split: test\noutput_type: multiple_choice\n"
        "doc_to_text: '{{q}}'\ndoc_to_target: 0\ndoc_to_choice: ['a', 'b']\n")
    line = _refused(monkeypatch, capsys, tmp_path, folder, "--tasks", "hub_task")
    assert "'someorg/some_data'" in line and "dataset_path" in line and "data_files" in line


def test_task_code_without_allow_task_code(monkeypatch, capsys, tmp_path, folder):
    marker = tmp_path / "ran.txt"
    (folder / "utils.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n\n"
                                     "def process_docs(dataset):\n    return dataset\n")
    override(folder, "user_code", "arc/arc_easy.yaml", {"test": _jsonl(tmp_path / "u.jsonl", arc_rows(3))},
             "process_docs: !function utils.process_docs\n")
    line = _refused(monkeypatch, capsys, tmp_path, folder, "--tasks", "user_code")
    assert "user_code.yaml" in line and "utils.process_docs" in line and "--allow-task-code" in line
    assert not marker.exists()


@pytest.mark.parametrize(("model_args", "words"), [
    ("pretrained", ["--model_args", "key=value"]),
    ("pretrained=x,,dtype=float32", ["--model_args", "key=value"]),
    ("dtype=float32", ["pretrained="]),
    ("pretrained=x,flux_capacitor=1", ["flux_capacitor"]),
    ("pretrained=x,batch_size=big", ["batch_size"]),
])
def test_malformed_model_args(monkeypatch, capsys, tmp_path, folder, model_args, words):
    line = _refused(monkeypatch, capsys, tmp_path, folder, "--tasks", "tiny_arc", model_args=model_args)
    assert all(w in line for w in words), line


@pytest.mark.parametrize("value", ["1.5", "0", "-3", "abc"])
def test_limit_is_a_count_or_a_fraction(monkeypatch, capsys, tmp_path, folder, value):
    line = _refused(monkeypatch, capsys, tmp_path, folder, "--tasks", "tiny_arc", "--limit", value)
    assert "--limit" in line


def test_output_path_that_is_a_file(monkeypatch, capsys, tmp_path, folder):
    (tmp_path / "results.txt").write_text("x")
    line = _refused(monkeypatch, capsys, tmp_path, folder, "--tasks", "tiny_arc", "--output_path",
                    str(tmp_path / "results.txt"))
    assert "--output-path" in line and "results.txt" in line


def test_model_hf_needs_model_args(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "eval", "--model", "hf", "--tasks", "arc_easy",
                           "--store", str(tmp_path / "s.db"))
    assert code == 2 and "--model_args pretrained=" in err and not (tmp_path / "s.db").exists()


def _settings_from(monkeypatch, capsys, *args: str):
    seen = {}

    def capture(models, tasks, **kwargs):
        seen.update(models=models, tasks=tasks, settings=kwargs["settings"])
        raise UserError("captured")

    monkeypatch.setattr(cli.api, "evaluate", capture)
    code, _, err = run_cli(monkeypatch, capsys, "eval", *args)
    assert code == 2 and "captured" in err, err
    return seen


def test_lm_eval_flags_in_both_spellings(monkeypatch, capsys, tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    common = ["--model", "hf", "--tasks", "arc_easy,hellaswag", "--device", "cpu", "--limit", "0.25"]
    values = {"model_args": "pretrained=/m,revision=r1,dtype=bfloat16", "include_path": str(folder),
              "num_fewshot": "3", "batch_size": "8", "output_path": str(tmp_path / "out"),
              "system_instruction": "Be brief.", "gen_kwargs": "temperature=0", "bootstrap_iters": "10"}
    switches = ["log_samples", "apply_chat_template", "allow_task_code", "trust_remote_code"]
    parsed = []
    for spell in (lambda n: n.replace("_", "-"), lambda n: n):
        args = [*common]
        for name, value in values.items():
            args += [f"--{spell(name)}", value]
        args += [f"--{spell(name)}" for name in switches]
        parsed.append(_settings_from(monkeypatch, capsys, *args))
    dashed, underscored = parsed
    assert dashed == underscored
    s = dashed["settings"]
    assert dashed["models"] == ["/m@r1"] and dashed["tasks"] == ["arc_easy", "hellaswag"]
    assert (s.dtype, s.num_fewshot, s.batch_size, s.limit, s.bootstrap_iters) == ("bfloat16", 3, 8, 0.25, 10)
    assert s.log_samples and s.apply_chat_template and s.allow_task_code and s.trust_remote_code
    assert (s.include_path, s.output_path, s.system_instruction, s.gen_kwargs) == (
        str(folder), str(tmp_path / "out"), "Be brief.", "temperature=0")
    short = _settings_from(monkeypatch, capsys, "-m", "hf", "-a", "pretrained=/m,gguf_file=w.gguf", "-t", "arc_easy",
                           "-f", "2", "-b", "4", "-L", "7", "-o", str(tmp_path / "o2"))
    assert short["models"] == ["/m/w.gguf"] and short["settings"].limit == 7 and short["settings"].num_fewshot == 2


def test_tasks_lists_lm_eval_groups_and_tags(monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "tasks", "arc_", "--json")
    assert code == 0, err
    import json

    kinds = {row["name"]: row["kind"] for row in json.loads(out)}
    assert kinds["arc_easy"] == "task" and kinds["arc_challenge"] == "task"
    code, out, _ = run_cli(monkeypatch, capsys, "tasks", "ai2_arc")
    assert code == 0 and "ai2_arc  (tag)" in out
