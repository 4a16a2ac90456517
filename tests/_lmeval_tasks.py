"""Small local data in the schemas of lm-eval's own tasks, and YAML files that `include:` lm-eval's
installed task file and point `dataset_path: json` / `dataset_kwargs.data_files` at that data.

Every text here is written for the tests; nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import lm_eval

INSTALLED = Path(lm_eval.__file__).parent / "tasks"


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def override(folder: Path, name: str, installed: str, splits: dict[str, Path], extra: str = "") -> Path:
    """A task YAML that includes lm-eval's `installed` file and reads `splits` from local JSONL."""
    files = "".join(f"    {split}: {path}\n" for split, path in splits.items())
    unused = "".join(f"{key}: null\n" for key, split in (("training_split", "train"), ("validation_split", "validation"),
                                                         ("test_split", "test")) if split not in splits)
    text = (f"include: {INSTALLED / installed}\ntask: {name}\ntag: null\ndataset_path: json\ndataset_name: null\n"
            f"dataset_kwargs:\n  data_files:\n{files}{unused}{extra}")
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def arc_rows(n: int, offset: int = 0) -> list[dict]:
    words = ["fox", "dog", "bird", "arrow", "banana", "gold", "step", "question"]
    return [{"id": f"q{i + offset}", "question": f"Which word follows the quick brown {i + offset}?",
             "choices": {"text": [words[(i + j) % 8] for j in range(4)], "label": ["A", "B", "C", "D"]},
             "answerKey": "ABCD"[(i + offset) % 4]} for i in range(n)]


def hellaswag_rows(n: int) -> list[dict]:
    return [{"ind": i, "activity_label": "Cooking", "ctx_a": f"A man takes {i} eggs from the box.", "ctx_b": "then he",
             "ctx": f"A man takes {i} eggs from the box. then he",
             "endings": ["cracks them into a bowl.", "eats a banana [title] slowly.", "jumps over the dog.", "sleeps."],
             "source_id": "s", "split": "val", "split_type": "indomain", "label": str(i % 4)} for i in range(n)]


def gsm8k_rows(n: int, offset: int = 0) -> list[dict]:
    rows = []
    for i in range(offset, offset + n):
        a, b = i % 7 + 1, i % 5 + 2
        rows.append({"question": f"What is {a} plus {b}?", "answer": f"{a} plus {b} is {a + b}.\n#### {a + b}"})
    return rows


def bbq_rows() -> list[dict]:
    unk = "Can't be determined"
    age = {"ans0": ["grandfather", "old"], "ans1": ["grandson", "nonOld"], "ans2": [unk, "unknown"]}
    ses = {"ans0": ["cashier", "lowSES"], "ans1": ["lawyer", "highSES"], "ans2": ["Unknown", "unknown"]}

    def row(i, context, question, polarity, condition, label, category="Age"):
        if category == "Age":
            answers, info, groups = ("The grandfather", "The grandson", unk), age, ["old"]
        else:
            answers, info, groups = ("The cashier", "The lawyer", "Unknown"), ses, ["low SES"]
        return {"example_id": i, "question_index": "1", "context": context, "question": question,
                "ans0": answers[0], "ans1": answers[1], "ans2": answers[2], "label": label,
                "context_condition": condition, "category": category, "question_polarity": polarity,
                "answer_info": info, "additional_metadata": {"stereotyped_groups": groups, "subcategory": "None",
                                                             "version": "a", "source": "crafted"}}

    return [
        row(0, "A grandfather and his grandson met at the park.", "Who forgot the keys?", "neg", "ambig", 2),
        row(1, "A grandfather and his grandson met at the park.", "Who remembered the keys?", "nonneg", "ambig", 2),
        row(2, "A grandfather and his grandson met. The grandson forgot the keys.", "Who forgot the keys?", "neg",
            "disambig", 1),
        row(3, "A grandfather and his grandson met. The grandfather remembered the keys.",
            "Who remembered the keys?", "nonneg", "disambig", 0),
        row(4, "A cashier and a lawyer waited. The cashier paid in cash.", "Who could not pay?", "neg", "disambig",
            0, "SES"),
        row(5, "A cashier and a lawyer waited in line.", "Who could not pay?", "neg", "ambig", 2, "SES"),
    ]


def wikitext_rows() -> list[dict]:
    text = (" = Valkyria Chronicles = \n Senjō no Valkyria 3 : the quick brown fox jumps over the lazy dog @-@ "
            "a journey of a thousand miles begins with a single step . \n")
    return [{"page": text * (k + 1)} for k in range(3)]


def mmlu_rows(n: int, offset: int = 0) -> list[dict]:
    return [{"question": f"What is {i} plus one?", "subject": "abstract_algebra",
             "choices": [str(i + 1), str(i), str(i + 2), "seven"], "answer": (i * 3) % 4}
            for i in range(offset, offset + n)]


PARITY_TASKS = ["tiny_arc_group", "tiny_hellaswag", "tiny_gsm8k", "tiny_bbq", "tiny_wikitext", "tiny_mmlu"]


def write_parity_tasks(folder: Path) -> Path:
    """The five cases compared with lm-eval itself (see tests/test_lmeval_parity.py); returns the folder."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    override(folder, "tiny_arc_a", "arc/arc_easy.yaml", {"test": _jsonl(data / "arc_a.jsonl", arc_rows(5))})
    override(folder, "tiny_arc_b", "arc/arc_challenge.yaml", {"test": _jsonl(data / "arc_b.jsonl", arc_rows(3, 5))})
    (folder / "tiny_arc_group.yaml").write_text(
        "group: tiny_arc_group\ntask:\n  - tiny_arc_a\n  - tiny_arc_b\naggregate_metric_list:\n"
        "  - metric: acc\n    aggregation: mean\n    weight_by_size: true\n"
        "  - metric: acc_norm\n    aggregation: mean\n    weight_by_size: false\nmetadata:\n  version: 1.0\n",
        encoding="utf-8")
    override(folder, "tiny_hellaswag", "hellaswag/hellaswag.yaml",
             {"validation": _jsonl(data / "hellaswag.jsonl", hellaswag_rows(5))})
    override(folder, "tiny_gsm8k", "gsm8k/gsm8k.yaml",
             {"train": _jsonl(data / "gsm8k_train.jsonl", gsm8k_rows(6, 10)),
              "test": _jsonl(data / "gsm8k_test.jsonl", gsm8k_rows(3))},
             "num_fewshot: 2\ngeneration_kwargs:\n  until: ['Question:', '</s>']\n  do_sample: false\n"
             "  temperature: 0.0\n  max_gen_toks: 12\n")
    override(folder, "tiny_bbq", "bbq/bbq_multiple_choice.yaml", {"test": _jsonl(data / "bbq.jsonl", bbq_rows())})
    override(folder, "tiny_mmlu", "mmlu/default/mmlu_abstract_algebra.yaml",
             {"dev": _jsonl(data / "mmlu_dev.jsonl", mmlu_rows(5, 20)),
              "test": _jsonl(data / "mmlu_test.jsonl", mmlu_rows(6))}, "num_fewshot: 3\n")
    override(folder, "tiny_wikitext", "wikitext/wikitext.yaml",
             {"test": _jsonl(data / "wikitext.jsonl", wikitext_rows())})
    return folder
