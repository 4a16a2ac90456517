"""Transparency checklist on crafted folders: every item met, then each one switched off on its own."""

from __future__ import annotations

import json

import pytest

from beyondscale.interpret import transparency as tr

FULL_CARD = """---
license: apache-2.0
datasets:
  - example/crafted-corpus
---
# Crafted model

## Intended Use
Research on small language models.

## Limitations
It makes things up and knows little.

## Training Data
A crafted corpus of short English sentences.

## Evaluation
Accuracy 0.41 on a crafted task.

## Environmental Impact
Trained for 2 GPU hours; about 0.3 kg CO2e.
"""

TEMPLATE_BODY = "<!-- Provide a longer summary. -->\n\n[More Information Needed]\n"
ALL_ITEMS = {"config_present", "tokenizer_present", "weights_safetensors", "licence", "model_card_present",
             "card_intended_use", "card_limitations", "card_training_data", "card_evaluation",
             "card_environmental_impact", "training_compute_recorded", "training_data_recorded"}


def make_folder(path, card=FULL_CARD, files=("config.json", "tokenizer.json", "model.safetensors")):
    path.mkdir()
    for name in files:
        (path / name).write_text("{}")
    if card is not None:
        (path / "README.md").write_text(card)
    return path


def blank(card, heading):
    """Replace a section's body with the Hugging Face template's placeholder."""
    head, rest = card.split(f"## {heading}\n", 1)
    tail = rest.split("\n## ", 1)
    return head + f"## {heading}\n" + TEMPLATE_BODY + ("\n## " + tail[1] if len(tail) > 1 else "")


def unmet(doc):
    return {i["item"] for i in doc["items"] if not i["met"]}


def test_everything_met(tmp_path):
    doc = tr.check_folder(make_folder(tmp_path / "m"))
    assert {i["item"] for i in doc["items"]} == ALL_ITEMS
    assert unmet(doc) == set() and doc["score"] == 1.0
    assert "not an FMTI score" in doc["label"]


CASES = {
    "config_present": {"files": ("tokenizer.json", "model.safetensors")},
    "tokenizer_present": {"files": ("config.json", "model.safetensors")},
    "weights_safetensors": {"files": ("config.json", "tokenizer.json", "pytorch_model.bin")},
    "licence": {"card": FULL_CARD.replace("license: apache-2.0\n", "")},
    "card_intended_use": {"card": blank(FULL_CARD, "Intended Use")},
    "card_limitations": {"card": blank(FULL_CARD, "Limitations")},
    "card_training_data": {"card": blank(FULL_CARD, "Training Data")},
    "card_evaluation": {"card": FULL_CARD.replace("## Evaluation\nAccuracy 0.41 on a crafted task.\n", "")},
    "card_environmental_impact": {"card": blank(FULL_CARD, "Environmental Impact")},
    "training_data_recorded": {"card": FULL_CARD.replace("datasets:\n  - example/crafted-corpus\n", "")},
}


@pytest.mark.parametrize("item", sorted(CASES))
def test_each_item_off(tmp_path, item):
    doc = tr.check_folder(make_folder(tmp_path / "m", **CASES[item]))
    expected = {item} | ({"training_compute_recorded"} if item == "card_environmental_impact" else set())
    assert unmet(doc) == expected
    assert doc["score"] == pytest.approx(1 - len(expected) / len(ALL_ITEMS))


def test_compute_off_and_from_lab_record(tmp_path):
    card = FULL_CARD.replace("Trained for 2 GPU hours; about", "Emissions were about")
    assert unmet(tr.check_folder(make_folder(tmp_path / "a", card=card))) == {"training_compute_recorded"}
    folder = make_folder(tmp_path / "b", card=card.replace("datasets:\n  - example/crafted-corpus\n", ""))
    (folder / "beyondscale_lab.json").write_text(json.dumps({"train_flops": 1.5e15, "data": {"data_hash": "ab12"}}))
    assert unmet(tr.check_folder(folder)) == set()


def test_no_card_and_licence_file(tmp_path):
    folder = make_folder(tmp_path / "m", card=None)
    doc = tr.check_folder(folder)
    assert unmet(doc) == ALL_ITEMS - {"config_present", "tokenizer_present", "weights_safetensors"}
    (folder / "LICENSE").write_text("MIT")
    assert "licence" not in unmet(tr.check_folder(folder))


def test_template_lines_are_missing(tmp_path):
    """The Hugging Face card template's labelled placeholders do not count as content."""
    template = ("## Environmental Impact\n<!-- Total emissions -->\n- **Hardware Type:** [More Information Needed]\n"
                "- **Hours used:** [More Information Needed]\n")
    card = FULL_CARD.split("## Environmental Impact")[0] + template
    assert tr.meaningful(template.split("\n", 1)[1]) == ""
    assert unmet(tr.check_folder(make_folder(tmp_path / "m", card=card))) == {
        "card_environmental_impact", "training_compute_recorded"}


def test_gguf_metadata(tmp_path):
    """A GGUF file's own metadata answers config, tokenizer and licence; weights are not safetensors."""
    gguf = pytest.importorskip("gguf")
    import numpy as np

    def write(path, license_):
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_name("crafted")
        if license_:
            w.add_license(license_)
        w.add_tokenizer_model("gpt2")
        w.add_tensor("x", np.zeros((2, 2), dtype=np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path

    (tmp_path / "README.md").write_text(FULL_CARD.replace("license: apache-2.0\n", ""))
    doc = tr.check(str(write(tmp_path / "m.gguf", "mit")))
    assert unmet(doc) == {"weights_safetensors"}
    assert unmet(tr.check(str(write(tmp_path / "n.gguf", None)))) == {"weights_safetensors", "licence"}
