"""`beyondscale explain ...` in-process: the lens JSON contract, stored rows, HTML escaping, one-line errors."""

from __future__ import annotations

import json

import pytest

from beyondscale.interpret import results
from test_bias_cli import call


def test_lens_json_contract_and_store(monkeypatch, capsys, tiny_llama, tmp_path):
    store = tmp_path / "s.db"
    code, out, _ = call(monkeypatch, capsys, "explain", "lens", "--model", str(tiny_llama), "--text",
                        "the cat sat on the mat", "--json", "--store", str(store))
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"model", "n_layers", "layers", "prediction_depth"}
    assert [r["layer"] for r in doc["layers"]] == list(range(doc["n_layers"] + 1))
    assert set(doc["layers"][0]) == {"layer", "kl_to_final", "top1_agrees", "p_final_top1"}
    assert doc["layers"][-1]["kl_to_final"] == pytest.approx(0, abs=1e-6) and doc["layers"][-1]["top1_agrees"] == 1
    frame = results.probe_frame(store, "logit_lens")
    assert len(frame) == 1 and frame.iloc[0]["summary"]["prediction_depth"] == doc["prediction_depth"]


def test_attribute_html_escapes_text(monkeypatch, capsys, tiny_llama, tmp_path):
    html = tmp_path / "a.html"
    code, out, _ = call(monkeypatch, capsys, "explain", "attribute", "--model", str(tiny_llama), "--text",
                        "the <script>x</script> cat", "--target", " sat", "--html", str(html), "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc["attributions"]) == {"gradient_x_input", "integrated_gradients", "feature_ablation"}
    assert len(doc["attention_entropy"]) == 2
    page = html.read_text()
    assert "<script>" not in page and "&lt;" in page and "&gt;" in page


def test_transparency_json(monkeypatch, capsys, tiny_llama):
    code, out, _ = call(monkeypatch, capsys, "explain", "transparency", "--model", str(tiny_llama), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["total"] == len(doc["items"]) and "FMTI" in doc["label"]


@pytest.mark.parametrize(("args", "message"), [
    (("lens", "--text", " "), "--text: empty text"),
    (("attribute", "--text", "the cat", "--target", ""), "--target: empty target"),
    (("routing", "--text", "the cat"), "not a Mixtral-style MoE"),
    (("lens", "--text", "the cat " * 200), "longer than the model's context of 256"),
])
def test_bad_input_one_line(monkeypatch, capsys, tiny_llama, args, message):
    code, out, err = call(monkeypatch, capsys, "explain", args[0], "--model", str(tiny_llama), *args[1:])
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_lens_over_a_task(monkeypatch, capsys, tiny_llama, mc_task):
    """Depth averaged over a task's documents: the mean of the single-document runs (text = context + gold)."""
    code, out, _ = call(monkeypatch, capsys, "explain", "lens", "--model", str(tiny_llama), "--task", str(mc_task),
                        "--limit", "3", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["n_texts"] == 3
    choices = ["fox jumps", "dog jumps", "bird jumps", "arrow jumps", "banana jumps"]
    singles = []
    for i in range(3):
        text = f"Question: Which word comes next in sentence {i}: the quick brown\nAnswer: {choices[i + i % 4]}"
        _, out, _ = call(monkeypatch, capsys, "explain", "lens", "--model", str(tiny_llama), "--text", text, "--json")
        singles.append(json.loads(out)["prediction_depth"])
    assert doc["prediction_depth_item_mean"] == pytest.approx(sum(singles) / 3)


def test_default_store_and_dash(monkeypatch, capsys, tiny_llama, tmp_path):
    """Like every command, results land in ./beyondscale.db unless --store - is given."""
    import os

    call(monkeypatch, capsys, "explain", "transparency", "--model", str(tiny_llama), "--json")
    assert len(results.probe_frame(os.path.join(os.getcwd(), "beyondscale.db"), "transparency")) == 1
    call(monkeypatch, capsys, "explain", "transparency", "--model", str(tiny_llama), "--json", "--store", "-")
    assert not os.path.exists(os.path.join(os.getcwd(), "beyondscale.db"))
    folder = tmp_path / "no-config"
    folder.mkdir()
    code, out, err = call(monkeypatch, capsys, "explain", "transparency", "--model", str(folder), "--json")
    assert code == 0 and json.loads(out)["met"] == 0 and "not stored" in err
