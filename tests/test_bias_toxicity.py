"""Toxicity: engine greedy continuations vs transformers' generate, classifier scores vs the HF pipeline."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification, pipeline

from _tiny_models import tiny_llama, tiny_tokenizer
from beyondscale.bias import toxicity
from beyondscale.errors import UserError
from test_bias_cli import call


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clf") / "tox"
    tok = tiny_tokenizer()
    torch.manual_seed(3)
    cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=4, n_positions=128, num_labels=2,
                     id2label={0: "non-toxic", 1: "toxic"}, label2id={"non-toxic": 0, "toxic": 1},
                     initializer_range=0.3, pad_token_id=1, bos_token_id=0, eos_token_id=1)
    GPT2ForSequenceClassification(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_continuations_equal_generate():
    model, tok = tiny_llama(), tiny_tokenizer()
    prompts = ["The cat sat", "A big dog ran to the"]
    got = toxicity.continuations(model, tok, prompts)
    for prompt, text in zip(prompts, got, strict=True):
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        out = model.generate(ids, max_new_tokens=toxicity.MAX_NEW_TOKENS, do_sample=False, pad_token_id=1)
        expected = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).split("\n")[0]
        assert text == expected


def test_scores_equal_pipeline(classifier):
    clf = toxicity.load_classifier(classifier, None)
    assert clf[2] == 1
    texts = ["the cat sat on the mat", "a big red fox"]
    ref = pipeline("text-classification", model=str(classifier), top_k=None)
    rows = [ref(t) for t in texts]
    rows = [r[0] if isinstance(r[0], list) else r for r in rows]
    expected = [next(d["score"] for d in r if d["label"] == "toxic") for r in rows]
    assert toxicity.toxic_probability(*clf, texts) == pytest.approx(expected, abs=1e-5)


def test_cli_groups(monkeypatch, capsys, tiny_llama, classifier, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("The cat sat\n\nA dog ran\n")
    code, out, _ = call(monkeypatch, capsys, "bias", "toxicity", "--model", str(tiny_llama), "--classifier",
                        str(classifier), "--prompts", str(prompts), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["n"] == 2 and doc["per_group"]["all"]["n"] == 2
    assert doc["mean_toxicity"] == pytest.approx(sum(c["toxicity"] for c in doc["continuations"]) / 2)


def test_unclear_label_refused(tmp_path, classifier):
    cfg = json.loads((classifier / "config.json").read_text())
    cfg["id2label"] = {"0": "LABEL_0", "1": "LABEL_1"}
    folder = tmp_path / "c"
    folder.mkdir()
    for f in classifier.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="cannot tell the toxic label"):
        toxicity.load_classifier(folder, None)
    assert toxicity.load_classifier(folder, "LABEL_1")[2] == 1
