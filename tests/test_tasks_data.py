"""Task data: local json/csv/parquet files (relative to the YAML), errors, and the content hash."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from beyondscale.errors import UserError
from beyondscale.tasks import build_items, load_task, spec_from_dict
from beyondscale.tasks import data as tdata

DOCS = [
    {"q": "2+2?", "choices": ["3", "4"], "gold": 1},
    {"q": "Sky colour?", "choices": ["blue", "green"], "gold": 0},
    {"q": "Ice is?", "choices": ["hot", "cold"], "gold": 1},
]

TASK = """\
task: demo
dataset_path: {builder}
dataset_kwargs:
  data_files:
    test: {files}
test_split: test
output_type: multiple_choice
doc_to_text: "Q: {{{{q}}}}\\nA:"
doc_to_target: gold
doc_to_choice: choices
"""


def write_jsonl(path: Path, docs: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")


def make_task(folder: Path, builder: str, files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "task.yaml"
    path.write_text(TASK.format(builder=builder, files=files), encoding="utf-8")
    return path


def check_items(spec_path: Path) -> None:
    items = build_items(load_task(str(spec_path)))
    assert [it.context for it in items] == ["Q: 2+2?\nA:", "Q: Sky colour?\nA:", "Q: Ice is?\nA:"]
    assert [it.gold for it in items] == [1, 0, 1]
    assert items[0].continuations == (" 3", " 4")


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an unrelated, empty cwd: paths must resolve against the YAML, and nothing lands here."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_jsonl_relative_to_yaml(tmp_path: Path, elsewhere: Path) -> None:
    write_jsonl(tmp_path / "proj" / "data" / "test.jsonl", DOCS)
    check_items(make_task(tmp_path / "proj", "json", "data/test.jsonl"))
    assert list(elsewhere.iterdir()) == []  # no cache written into the user's cwd


def test_csv_relative_to_yaml(tmp_path: Path, elsewhere: Path) -> None:
    (tmp_path / "proj" / "data").mkdir(parents=True)
    rows = [{"q": d["q"], "a": d["choices"][0], "b": d["choices"][1], "gold": d["gold"]} for d in DOCS]
    pd.DataFrame(rows).to_csv(tmp_path / "proj" / "data" / "test.csv", index=False)
    path = make_task(tmp_path / "proj", "csv", "data/test.csv")
    path.write_text(path.read_text().replace("doc_to_choice: choices", 'doc_to_choice: "{{[a, b]}}"'))
    check_items(path)
    assert list(elsewhere.iterdir()) == []


def test_parquet_relative_to_yaml(tmp_path: Path, elsewhere: Path) -> None:
    (tmp_path / "proj" / "data").mkdir(parents=True)
    pd.DataFrame(DOCS).to_parquet(tmp_path / "proj" / "data" / "test.parquet")
    check_items(make_task(tmp_path / "proj", "parquet", "data/test.parquet"))
    assert list(elsewhere.iterdir()) == []


def test_data_files_as_string_list_and_glob(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", DOCS[:2])
    write_jsonl(tmp_path / "b.jsonl", DOCS[2:])
    base = {
        "task": "t",
        "dataset_path": "json",
        "test_split": "train",  # a bare path or list is the `train` split, as in `datasets`
        "output_type": "multiple_choice",
        "doc_to_text": "Q: {{q}}\nA:",
        "doc_to_target": "gold",
        "doc_to_choice": "choices",
    }
    for files in (
        [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")],
        str(tmp_path / "*.jsonl"),
    ):
        spec = spec_from_dict({**base, "dataset_kwargs": {"data_files": files}})
        assert [it.gold for it in build_items(spec)] == [1, 0, 1]
    spec = spec_from_dict(
        {**base, "dataset_kwargs": {"data_files": str(tmp_path / "a.jsonl")}, "test_split": "test"}
    )
    with pytest.raises(UserError, match="split `test` is not in dataset_kwargs.data_files"):
        build_items(spec)


def test_json_array_and_field_and_key_alignment(tmp_path: Path) -> None:
    (tmp_path / "arr.json").write_text(json.dumps([{"q": "a", "x": 1}, {"q": "b"}]), encoding="utf-8")
    (tmp_path / "obj.json").write_text(json.dumps({"rows": [{"q": "c"}]}), encoding="utf-8")
    spec = spec_from_dict(
        {
            "task": "t",
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(tmp_path / "arr.json")}},
            "test_split": "test",
            "output_type": "loglikelihood_rolling",
            "doc_to_target": "{{q}}{{x}}",
        }
    )
    assert tdata.load_split(spec, "test") == [{"q": "a", "x": 1}, {"q": "b", "x": None}]
    assert [it.text for it in build_items(spec)] == ["a1", "bNone"]
    spec2 = spec.model_copy(
        update={"dataset_kwargs": {"data_files": {"test": str(tmp_path / "obj.json")}, "field": "rows"}}
    )
    assert tdata.load_split(spec2, "test") == [{"q": "c"}]


def _spec_for(path: Path):
    return spec_from_dict(
        {
            "task": "t",
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(path)}},
            "test_split": "test",
            "output_type": "loglikelihood_rolling",
            "doc_to_target": "{{text}}",
        }
    )


def test_non_utf8_jsonl_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(UserError) as err:
        build_items(_spec_for(path))
    assert str(path) in str(err.value) and "line 2" in str(err.value) and "UTF-8" in str(err.value)


def test_invalid_json_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": oops}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.jsonl:2: invalid JSON"):
        build_items(_spec_for(path))


def test_empty_dataset(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(UserError, match="has no documents"):
        build_items(_spec_for(path))


def test_missing_data_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        build_items(_spec_for(tmp_path / "nope.jsonl"))


def test_unsupported_local_kwarg(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    write_jsonl(path, [{"text": "a"}])
    spec = _spec_for(path).model_copy(
        update={"dataset_kwargs": {"data_files": {"test": str(path)}, "columns": ["text"]}}
    )
    with pytest.raises(UserError, match="dataset_kwargs.columns is not supported"):
        build_items(spec)


def test_spec_hash_tracks_data_bytes_not_location(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    write_jsonl(folder / "data" / "test.jsonl", DOCS)
    path = make_task(folder, "json", "data/test.jsonl")
    h1 = load_task(str(path)).spec_hash()
    assert load_task(str(path)).spec_hash() == h1  # stable

    moved = tmp_path / "moved"
    os.rename(folder, moved)
    assert load_task(str(moved / "task.yaml")).spec_hash() == h1  # paths are not hashed

    write_jsonl(moved / "data" / "test.jsonl", [*DOCS, {"q": "new", "choices": ["a", "b"], "gold": 0}])
    h2 = load_task(str(moved / "task.yaml")).spec_hash()
    assert h2 != h1  # data bytes are

    text = (moved / "task.yaml").read_text().replace("Q: ", "Question: ")
    (moved / "task.yaml").write_text(text)
    assert load_task(str(moved / "task.yaml")).spec_hash() not in (h1, h2)  # so is the template


def test_hub_path_calls_datasets_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake(path: str, name: str | None, split: str, kwargs: dict) -> list[dict]:
        calls.append((path, name, split, kwargs))
        return [{"text": "hello"}]

    monkeypatch.setattr(tdata, "load_hub_split", fake)
    spec = spec_from_dict(
        {
            "task": "t",
            "dataset_path": "org/data",
            "dataset_name": "cfg",
            "dataset_kwargs": {"revision": "abc"},
            "test_split": "test",
            "output_type": "loglikelihood_rolling",
            "doc_to_target": "{{text}}",
        }
    )
    assert [it.text for it in build_items(spec)] == ["hello"]
    assert calls == [("org/data", "cfg", "test", {"revision": "abc"})]
    h = spec.spec_hash()
    other = spec.model_copy(update={"dataset_kwargs": {"revision": "def"}})
    assert other.spec_hash() != h  # hub data is identified by path, name, split and revision


def test_yaml_in_subfolder_with_dict_of_lists(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d" / "t1.jsonl", DOCS[:1])
    write_jsonl(tmp_path / "d" / "t2.jsonl", DOCS[1:])
    path = tmp_path / "task.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            task: demo
            dataset_path: json
            dataset_kwargs:
              data_files:
                test: [d/t1.jsonl, d/t2.jsonl]
            test_split: test
            output_type: multiple_choice
            doc_to_text: "Q: {{q}}\\nA:"
            doc_to_target: gold
            doc_to_choice: choices
            """
        )
    )
    check_items(path)
