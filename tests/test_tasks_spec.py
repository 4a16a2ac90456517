"""TaskSpec parsing: lm-eval fields, includes, defaults, and every construct we refuse."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from beyondscale.errors import UserError
from beyondscale.tasks import TaskSpec, list_builtin_tasks, load_task, spec_from_dict

BASE = """\
task: demo
dataset_path: json
dataset_kwargs:
  data_files:
    test: data.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "Q: {{q}}\\nA:"
doc_to_target: gold
doc_to_choice: choices
"""


def write(tmp_path: Path, text: str, name: str = "task.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_builtin_tasks_listed_and_load() -> None:
    names = list_builtin_tasks()
    for name in (
        "arc_easy",
        "arc_challenge",
        "hellaswag",
        "piqa",
        "winogrande",
        "lambada_openai",
        "sciq",
        "wikitext",
    ):
        assert name in names
        spec = load_task(name)
        assert spec.name == name
        assert spec.source_path is not None and spec.source_path.name == f"{name}.yaml"
        assert len(spec.spec_hash()) == 32


def test_parse_fields_and_defaults(tmp_path: Path) -> None:
    spec = load_task(str(write(tmp_path, BASE)))
    assert isinstance(spec, TaskSpec)
    assert spec.target_delimiter == " " and spec.fewshot_delimiter == "\n\n"
    assert spec.doc_to_text == "Q: {{q}}\nA:"
    assert spec.metric_names() == ["acc", "acc_norm"]
    assert spec.eval_split() == "test"
    # relative data_files resolve against the YAML file's folder
    assert spec.dataset_kwargs == {"data_files": {"test": str(tmp_path.resolve() / "data.jsonl")}}


@pytest.mark.parametrize(
    ("output_type", "expected"),
    [
        ("multiple_choice", ["acc", "acc_norm"]),
        ("loglikelihood", ["perplexity", "acc"]),
        ("loglikelihood_rolling", ["word_perplexity", "byte_perplexity", "bits_per_byte"]),
        ("generate_until", ["exact_match"]),
    ],
)
def test_default_metrics_follow_lm_eval(output_type: str, expected: list[str]) -> None:
    spec = spec_from_dict(
        {
            "task": "t",
            "dataset_path": "some/hub",
            "test_split": "test",
            "output_type": output_type,
            "doc_to_text": "{{x}}",
            "doc_to_target": "{{y}}",
            "doc_to_choice": "{{[y]}}",
        }
    )
    assert spec.metric_names() == expected


def test_metric_list_kwargs_and_generation_settings(tmp_path: Path) -> None:
    text = BASE.replace("output_type: multiple_choice", "output_type: generate_until") + textwrap.dedent(
        """\
        generation_kwargs:
          until: "</s>"
          max_gen_toks: 32
          do_sample: false
          temperature: 0.0
        metric_list:
          - metric: exact_match
            aggregation: mean
            higher_is_better: true
            ignore_case: true
            ignore_punctuation: false
        filter_list:
          - name: none
            filter:
              - function: take_first
        tag: [a, b]
        group: g
        should_decontaminate: true
        doc_to_decontamination_query: "{{q}}"
        metadata: {version: 2.0}
        """
    )
    spec = load_task(str(write(tmp_path, text)))
    assert spec.metric_names() == ["exact_match"]
    assert spec.metric_kwargs("exact_match") == {"ignore_case": True, "ignore_punctuation": False}
    assert spec.generation_settings() == (("</s>",), 32)
    with pytest.raises(UserError, match="not one of"):
        spec.metric_kwargs("bleu")


def test_generation_defaults_are_lm_eval_defaults() -> None:
    spec = spec_from_dict(
        {
            "task": "t",
            "dataset_path": "x/y",
            "test_split": "test",
            "doc_to_text": "{{x}}",
            "doc_to_target": "{{y}}",
            "fewshot_delimiter": "\n##\n",
        }
    )
    assert spec.output_type == "generate_until"  # lm-eval's default output type
    assert spec.generation_settings() == (("\n##\n",), 256)


def test_include_merges_underneath(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", BASE + "num_fewshot: 3\n", name="base.yaml")
    child = write(tmp_path, "include: sub/base.yaml\ntask: child\nnum_fewshot: 1\n")
    spec = load_task(str(child))
    assert spec.task == "child" and spec.num_fewshot == 1
    # data_files are relative to the file that wrote them (the included one)
    assert spec.dataset_kwargs["data_files"]["test"] == str((tmp_path / "sub" / "data.jsonl").resolve())


def test_include_cycle_and_missing(tmp_path: Path) -> None:
    write(tmp_path, "include: b.yaml\ntask: a\n", name="a.yaml")
    write(tmp_path, "include: a.yaml\ntask: b\n", name="b.yaml")
    with pytest.raises(UserError, match="cycle"):
        load_task(str(tmp_path / "a.yaml"))
    with pytest.raises(UserError, match="nope.yaml.*not found"):
        load_task(str(write(tmp_path, "include: nope.yaml\ntask: c\n", name="c.yaml")))


def test_unknown_builtin_name_suggests_close_matches() -> None:
    with pytest.raises(UserError, match="did you mean arc_easy") as err:
        load_task("arc_esy")
    assert "built-in tasks:" in str(err.value)
    with pytest.raises(UserError, match="not found"):
        load_task("missing/file.yaml")


# --- refusals ---------------------------------------------------------------------------------------


def test_function_tag_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "process_docs: !function utils.process_docs\n")
    with pytest.raises(UserError) as err:
        load_task(str(path))
    msg = str(err.value)
    assert str(path) in msg
    assert "`!function` (code execution) is not allowed" in msg
    assert "hellaswag_process_docs" in msg and "Jinja template" in msg


@pytest.mark.parametrize(
    "line",
    [
        "doc_to_text: !custom foo\n",
        "doc_to_text: !!python/object/apply:os.system ['echo hi']\n",
        "doc_to_text: !!python/name:os.system\n",
    ],
)
def test_other_tags_are_refused(tmp_path: Path, line: str) -> None:
    path = write(tmp_path, BASE.replace('doc_to_text: "Q: {{q}}\\nA:"\n', line))
    with pytest.raises(UserError, match="not allowed"):
        load_task(str(path))


def test_unknown_field_named_with_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "doc_to_txt: x\n")
    with pytest.raises(UserError) as err:
        load_task(str(path))
    assert "unknown field `doc_to_txt`" in str(err.value)
    assert "doc_to_text" in str(err.value)
    assert f"{path.resolve()}:11" in str(err.value)  # file and line of the offending key


def test_unknown_nested_field(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "generation_kwargs:\n  until: [x]\n  beam_size: 4\n")
    with pytest.raises(UserError, match=r"unknown field `generation_kwargs.beam_size`"):
        load_task(str(path))


@pytest.mark.parametrize("field", ["task", "dataset_path"])
def test_missing_required_field(tmp_path: Path, field: str) -> None:
    text = "\n".join(line for line in BASE.splitlines() if not line.startswith(f"{field}:"))
    with pytest.raises(UserError, match=f"missing required field `{field}`"):
        load_task(str(write(tmp_path, text)))


def test_missing_choice_and_split(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="missing required field `doc_to_choice`"):
        load_task(str(write(tmp_path, BASE.replace("doc_to_choice: choices\n", ""))))
    with pytest.raises(UserError, match="test_split` or `validation_split"):
        load_task(str(write(tmp_path, BASE.replace("test_split: test\n", ""))))


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        ("repeats: 5\n", r"`repeats: 5` is not supported"),
        ("generation_kwargs:\n  do_sample: true\n", r"do_sample: true` is not supported"),
        ("process_docs: my_module.fn\n", r"not a built-in process_docs.*hellaswag_process_docs"),
        ("process_results: foo\n", r"`process_results: foo` is not a built-in"),
        ("num_fewshot: two\n", r"field `num_fewshot`"),
        ("num_fewshot: -1\n", r"field `num_fewshot`"),
        ("fewshot_config:\n  sampler: balanced\n", r"fewshot_config.sampler"),
        (
            "filter_list:\n  - name: x\n    filter:\n      - function: regex\n",
            r"filter `regex`.*not supported",
        ),
        ("output_type: ranking\n", r"field `output_type`"),
    ],
)
def test_refused_values(tmp_path: Path, extra: str, pattern: str) -> None:
    text = BASE.replace("output_type: multiple_choice\n", "") if extra.startswith("output_type") else BASE
    if extra.startswith("output_type"):
        text += "output_type: ranking\n"
    else:
        text += extra
    with pytest.raises(UserError, match=pattern):
        load_task(str(write(tmp_path, text)))


def test_remote_code_refused(tmp_path: Path) -> None:
    text = BASE.replace("dataset_path: json", "dataset_path: someone/data").replace(
        "dataset_kwargs:\n", "dataset_kwargs:\n  trust_remote_code: true\n"
    )
    with pytest.raises(UserError, match="trust_remote_code"):
        load_task(str(write(tmp_path, text)))
    with pytest.raises(UserError, match="loading script"):
        load_task(str(write(tmp_path, BASE.replace("dataset_path: json", "dataset_path: ./loader.py"))))


def test_bad_jinja_reports_file_field_and_line(tmp_path: Path) -> None:
    text = BASE.replace('doc_to_text: "Q: {{q}}\\nA:"', 'doc_to_text: "line one\\nQ: {{ q }\\nA:"')
    path = write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_task(str(path))
    msg = str(err.value)
    assert str(path.resolve()) in msg
    assert "doc_to_text" in msg
    assert "line 2" in msg


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "metadata: [unclosed\n")
    with pytest.raises(UserError, match=r"task.yaml:\d+: invalid YAML"):
        load_task(str(path))


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="mapping"):
        load_task(str(write(tmp_path, "- a\n- b\n")))
