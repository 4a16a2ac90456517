"""Prompt building: lm-eval's rendering rules, few-shot sampling, gold handling, the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from beyondscale.errors import UserError
from beyondscale.tasks import build_items, build_task, spec_from_dict
from beyondscale.tasks.spec import FewshotConfig, TaskSpec


def make_spec(tmp_path: Path, splits: dict[str, list[dict]], **fields: Any) -> TaskSpec:
    files = {}
    for split, docs in splits.items():
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
        files[split] = str(path)
    base: dict[str, Any] = {
        "task": "demo",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": files},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "Q: {{q}}\nA:",
        "doc_to_target": "gold",
        "doc_to_choice": "choices",
    }
    base.update(fields)
    return spec_from_dict({k: v for k, v in base.items() if v is not None})


def qa(i: int) -> dict:
    return {"q": f"question {i}", "choices": [f"no{i}", f"yes{i}"], "gold": 1}


POOL = [qa(i) for i in range(20)]


def test_multiple_choice_item_shape(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, {"test": POOL[:2]})
    items = build_items(spec)
    assert len(items) == 2
    it = items[0]
    assert it.doc_id == 0 and it.output_type == "multiple_choice"
    assert it.context == "Q: question 0\nA:"
    assert it.continuations == (" no0", " yes0")
    assert it.choices == ("no0", "yes0")
    assert it.gold == 1 and it.contexts == ()


def test_fewshot_format_delimiters_and_description(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        {"test": POOL[:1], "train": POOL[1:2]},
        training_split="train",
        num_fewshot=1,
        description="Answer well.\n\n",
        target_delimiter=" =>",
        fewshot_delimiter="\n--\n",
    )
    (it,) = build_items(spec)
    assert it.context == "Answer well.\n\nQ: question 1\nA: =>yes1\n--\nQ: question 0\nA:"
    assert it.continuations == (" =>no0", " =>yes0")


def test_fewshot_seeded_determinism(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, {"test": POOL[:5], "train": POOL}, training_split="train", num_fewshot=3)
    a = [it.context for it in build_items(spec, seed=1234)]
    b = [it.context for it in build_items(spec, seed=1234)]
    c = [it.context for it in build_items(spec, seed=4321)]
    assert a == b
    assert a != c
    # lm-eval's sampler is one Random(seed) advanced doc by doc: --limit keeps the first prompts as they were
    assert [it.context for it in build_items(spec, seed=1234, limit=2)] == a[:2]


def test_fewshot_from_eval_split_excludes_current_doc(tmp_path: Path) -> None:
    docs = POOL[:6]
    spec = make_spec(tmp_path, {"test": docs}, fewshot_split="test", num_fewshot=5)
    for seed in range(25):
        built = build_task(spec, seed=seed)
        for it in built.items:
            own = f"Q: question {it.doc_id}\nA: yes{it.doc_id}"
            assert own not in it.context
            assert it.context.count("\nA: yes") == 5  # always exactly n shots
            assert it.doc_id not in built.info.fewshot_doc_ids[it.doc_id]


def test_build_info_records_seed_and_ids(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, {"test": POOL[:4], "train": POOL}, training_split="train", num_fewshot=2)
    built = build_task(spec, seed=7, limit=3)
    info = built.info
    assert info.seed == 7 and info.num_fewshot == 2 and info.split == "test"
    assert info.doc_ids == [0, 1, 2] and info.n_docs_in_split == 4
    assert info.fewshot_source == "split:train" and info.sampler == "default"
    for doc_id, shots in info.fewshot_doc_ids.items():
        assert len(shots) == 2
        for i in shots:
            assert f"Q: question {i}\nA: yes{i}" in built.items[doc_id].context
    assert json.loads(json.dumps(info.to_json()))["fewshot_doc_ids"]["0"] == info.fewshot_doc_ids[0]


def test_num_fewshot_override_and_first_n(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        {"test": POOL[:2], "train": POOL[5:9]},
        training_split="train",
        fewshot_config={"sampler": "first_n"},
    )
    assert build_items(spec)[0].context == "Q: question 0\nA:"
    ctx = build_items(spec, num_fewshot=2)[0].context
    assert ctx == "Q: question 5\nA: yes5\n\nQ: question 6\nA: yes6\n\nQ: question 0\nA:"


def test_inline_fewshot_samples(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        {"test": POOL[:1]},
        num_fewshot=1,
        fewshot_config={"sampler": "first_n", "samples": [{"q": "shot", "choices": ["x", "y"], "gold": 0}]},
    )
    assert build_items(spec)[0].context == "Q: shot\nA: x\n\nQ: question 0\nA:"


def test_limit(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, {"test": POOL})
    assert [it.doc_id for it in build_items(spec, limit=3)] == [0, 1, 2]
    with pytest.raises(UserError, match="limit"):
        build_items(spec, limit=0)


def test_too_few_fewshot_docs(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, {"test": POOL[:2], "train": POOL[:2]}, training_split="train", num_fewshot=3)
    with pytest.raises(UserError, match="num_fewshot=3"):
        build_items(spec)


# --- gold -----------------------------------------------------------------------------------------


def test_gold_out_of_range_names_task_and_doc(tmp_path: Path) -> None:
    docs = [qa(0), {"q": "bad", "choices": ["a", "b"], "gold": 2}]
    with pytest.raises(UserError) as err:
        build_items(make_spec(tmp_path, {"test": docs}))
    assert "task demo" in str(err.value) and "doc 1" in str(err.value) and "out of range" in str(err.value)


def test_gold_as_choice_text_and_lists(tmp_path: Path) -> None:
    docs = [{"q": "x", "choices": ["red", "blue"], "answer": "blue", "golds": [0, 1]}]
    assert build_items(make_spec(tmp_path, {"test": docs}, doc_to_target="answer"))[0].gold == 1
    assert build_items(make_spec(tmp_path, {"test": docs}, doc_to_target="{{answer}}"))[0].gold == 1
    assert build_items(make_spec(tmp_path, {"test": docs}, doc_to_target="golds"))[0].gold == (0, 1)
    # a rendered digit string becomes an index (lm-eval: isdigit + doc_to_choice -> literal_eval)
    assert build_items(make_spec(tmp_path, {"test": docs}, doc_to_target="{{golds[0]}}"))[0].gold == 0
    # a literal int target
    assert build_items(make_spec(tmp_path, {"test": docs}, doc_to_target=1))[0].gold == 1
    with pytest.raises(UserError, match="not one of the choices"):
        build_items(make_spec(tmp_path, {"test": docs}, doc_to_target="{{q}}"))


def test_choices_from_list_literal_and_dict(tmp_path: Path) -> None:
    docs = [{"q": "x", "a": "it's", "b": 'say "hi"', "gold": 0}]
    it = build_items(make_spec(tmp_path, {"test": docs}, doc_to_choice="{{[a, b]}}"))[0]
    assert it.choices == ("it's", 'say "hi"')
    it = build_items(make_spec(tmp_path, {"test": docs}, doc_to_choice=["yes", "no"]))[0]
    assert it.continuations == (" yes", " no")
    it = build_items(make_spec(tmp_path, {"test": docs}, doc_to_choice={"A": "yes", "B": "no"}))[0]
    assert it.choices == ("yes", "no")


# --- templates -------------------------------------------------------------------------------------


def test_missing_field_names_template_and_field(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, {"test": POOL[:1]}, doc_to_text="Q: {{question}}")
    with pytest.raises(UserError) as err:
        build_items(spec)
    msg = str(err.value)
    assert "doc_to_text" in msg and "Q: {{question}}" in msg and "'question' is undefined" in msg
    assert "doc 0" in msg


@pytest.mark.parametrize(
    "tmpl",
    [
        "{{ q.__class__ }}",
        "{{ q.__class__.__mro__[1].__subclasses__() }}",
        "{{ choices.append('x') }}",
        "{{ 'a' * 100000000 }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_sandbox_refuses_escapes(tmp_path: Path, tmpl: str) -> None:
    spec = make_spec(tmp_path, {"test": POOL[:1]}, doc_to_text=tmpl)
    with pytest.raises(UserError, match="doc_to_text"):
        build_items(spec)


def test_trailing_newline_kept_and_filters(tmp_path: Path) -> None:
    docs = [{"q": "a  b", "choices": ["x"], "gold": 0}]
    it = build_items(make_spec(tmp_path, {"test": docs}, doc_to_text="{{ q | regex_replace(' +', ' ') }}\n"))[
        0
    ]
    assert it.context == "a b\n"


# --- other output types ----------------------------------------------------------------------------


def test_loglikelihood_continuation_is_the_target_as_is(tmp_path: Path) -> None:
    docs = [{"text": "the cat sat"}]
    spec = make_spec(
        tmp_path,
        {"test": docs},
        output_type="loglikelihood",
        doc_to_text="{{text.split(' ')[:-1]|join(' ')}}",
        doc_to_target="{{' '+text.split(' ')[-1]}}",
        doc_to_choice=None,
    )
    (it,) = build_items(spec)
    assert (it.context, it.continuations, it.gold) == ("the cat", (" sat",), None)


def test_rolling_uses_doc_to_target(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        {"test": [{"page": "Hello , world"}]},
        output_type="loglikelihood_rolling",
        doc_to_text="",
        doc_to_target="{{ page | wikitext_detokenizer }}",
        doc_to_choice=None,
        num_fewshot=3,  # ignored: rolling items have no context
    )
    (it,) = build_items(spec)
    assert (it.text, it.context, it.continuations) == ("Hello, world", "", ())


def test_generate_until_defaults_and_gold(tmp_path: Path) -> None:
    docs = [{"q": "2+2", "a": "4", "alts": ["4", "four"]}]
    spec = make_spec(
        tmp_path, {"test": docs}, output_type="generate_until", doc_to_target="a", doc_to_choice=None
    )
    (it,) = build_items(spec)
    assert it.until == ("\n\n",) and it.max_gen_toks == 256 and it.gold == "4"
    assert it.context == "Q: 2+2\nA:"
    spec = make_spec(
        tmp_path,
        {"test": docs},
        output_type="generate_until",
        doc_to_target="alts",
        doc_to_choice=None,
        generation_kwargs={"until": ["\n", "Q:"], "max_gen_toks": 8},
    )
    (it,) = build_items(spec)
    assert it.until == ("\n", "Q:") and it.max_gen_toks == 8 and it.gold == ("4", "four")
    spec = make_spec(
        tmp_path,
        {"test": [{"q": "x", "choices": ["no", "yes"], "gold": 1}]},
        output_type="generate_until",
        generation_kwargs={"until": "END"},
    )
    (it,) = build_items(spec)
    assert it.gold == "yes" and it.until == ("END",)


def test_partial_evaluation_items(tmp_path: Path) -> None:
    docs = [{"sentence": "Tom hugged _ warmly.", "option1": "Ann", "option2": "Bob", "answer": "2"}]
    spec = make_spec(
        tmp_path,
        {"test": docs},
        doc_to_text="{{ {'1': 0, '2': 1}[answer] }}",
        doc_to_target="{{ sentence | winogrande_suffix }}",
        doc_to_choice="{{ [sentence | winogrande_prefix(option1), sentence | winogrande_prefix(option2)] }}",
    )
    (it,) = build_items(spec)
    assert it.context == ""
    assert it.contexts == ("Tom hugged Ann", "Tom hugged Bob")
    assert it.continuations == (" warmly.",)
    assert it.gold == 1


def test_process_docs_builtin_applied(tmp_path: Path) -> None:
    doc = {
        "activity_label": "Baking",
        "ctx_a": "A cake is in the oven.",
        "ctx_b": "the baker",
        "endings": ["waits [title] patiently.", "leaves.", "sings.", "sleeps."],
        "label": "0",
    }
    spec = make_spec(
        tmp_path,
        {"test": [doc]},
        process_docs="hellaswag_process_docs",
        doc_to_text="{{query}}",
        doc_to_target="{{label}}",
    )
    (it,) = build_items(spec)
    assert it.context == "Baking: A cake is in the oven. The baker"
    assert it.choices == ("waits. patiently.", "leaves.", "sings.", "sleeps.")
    assert it.gold == 0


def test_fewshot_config_object_overrides(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, {"test": POOL[:1], "dev": POOL[3:4]})
    spec = spec.model_copy(
        update={"num_fewshot": 1, "fewshot_config": FewshotConfig(split="dev", doc_to_text="Shot {{q}}:")}
    )
    assert build_items(spec)[0].context == "Shot question 3: yes3\n\nQ: question 0\nA:"
