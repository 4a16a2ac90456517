"""`beyondscale train`: the folder loads in plain transformers with the recorded loss; bad input is one line."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from _lab_helpers import one_thread as _lab_one_thread
from _lab_helpers import tiny_request, write_corpus

one_thread = pytest.fixture(autouse=True)(_lab_one_thread)


def _plain_loss(folder, record) -> float:
    """Loss by plain transformers on the recorded validation ids (HF shifts the labels itself)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    ids = np.load(record["val_tokens"])
    ctx = record["context_length"]
    n = len(ids) // ctx
    windows = torch.from_numpy(ids[: n * ctx].astype(np.int64)).view(n, ctx)
    with torch.no_grad():
        return float(model(input_ids=windows, labels=windows).loss), type(model).__name__


@pytest.mark.parametrize("arch,cls", [("dense", "LlamaForCausalLM"), ("moe", "MixtralForCausalLM")])
def test_trained_folder_loads_in_plain_transformers_with_the_recorded_loss(tmp_path, arch, cls):
    from beyondscale.lab.run import train_model

    data = write_corpus(tmp_path / "c.txt")
    record = train_model(tiny_request(data, tmp_path / "m", arch, store=str(tmp_path / "s.db")))
    loss, name = _plain_loss(tmp_path / "m", record)
    assert name == cls
    assert abs(loss - record["val_loss"]) / record["val_loss"] < 1e-4
    assert record["val_loss"] < np.log(300)  # learnt something: below the uniform distribution
    saved = json.loads((tmp_path / "m" / "beyondscale_lab.json").read_text())
    assert saved["tokens"] == record.tokens == 8192 // (4 * 32) * 4 * 32
    assert "training_tokens" not in saved and "training_flops" not in saved  # one name per field
    assert (tmp_path / "m" / "tokenizer.json").is_file() and (tmp_path / "m" / "README.md").is_file()


def test_data_reads_jsonl_and_curate_folder(tmp_path):
    from beyondscale.lab.data import read_corpus

    (tmp_path / "d.jsonl").write_text('{"text": "one"}\n\n{"text": "two"}\n')
    assert read_corpus(tmp_path / "d.jsonl").texts == ["one", "two"]
    kept = tmp_path / "cur" / "kept"
    kept.mkdir(parents=True)
    (kept / "a.jsonl").write_text('{"text": "alpha"}\n')
    (tmp_path / "cur" / "summary.json").write_text('{"data_hash": "abc", "recipe": {"min_words": 3}}')
    corpus = read_corpus(tmp_path / "cur")
    assert (corpus.texts, corpus.data_hash, corpus.recipe, corpus.variant) == (["alpha"], "abc", {"min_words": 3},
                                                                               "curated")


def _cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    """Run `beyondscale train ARGS` in-process through the real entry point (error printing, exit code)."""
    from beyondscale.cli import main

    monkeypatch.setattr(sys, "argv", ["beyondscale", "train", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys):
    data = write_corpus(tmp_path / "c.txt", 40)
    (tmp_path / "empty.txt").write_text("\n\n  \n")
    small = ["--d-model", "32", "--n-layer", "1", "--n-head", "2", "--vocab-size", "300", "--device", "cpu"]
    cases = [
        (["--data", str(tmp_path / "empty.txt")], "empty corpus"),
        (["--data", str(data), "--context-length", "4096"], "smaller than one context"),
        (["--data", str(data), "--tokens", "100"], "budget too small for one step"),
        (["--data", str(data), "--arch", "moe", "--n-experts", "2", "--top-k", "3"], "num_experts_per_tok"),
    ]
    for args, message in cases:
        code, stderr = _cli(monkeypatch, capsys, *args, *small, "--out", str(tmp_path / "never"))
        assert code == 2, stderr
        assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr
        assert not (tmp_path / "never").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text("{}")
    code, stderr = _cli(monkeypatch, capsys, "--data", str(data), *small, "--out", str(other), "--tokens", "2048")
    assert code == 2 and "--resume" in stderr and "--overwrite" in stderr
    assert (other / "config.json").read_text() == "{}"
    (other / "notes.txt").write_text("mine")  # --overwrite replaces a lab run, never someone else's files
    code, stderr = _cli(monkeypatch, capsys, "--data", str(data), *small, "--out", str(other), "--tokens", "2048",
                        "--context-length", "16", "--overwrite")
    assert code == 2 and "notes.txt" in stderr
    assert (other / "config.json").read_text() == "{}" and (other / "notes.txt").read_text() == "mine"


def test_compile_is_chosen_only_for_runs_that_repay_it(monkeypatch):
    """Auto compiles long runs when a compiler exists; explicit flags win; no compiler means eager."""
    from beyondscale.lab import train

    monkeypatch.setattr(train, "compiler_available", lambda device: True)
    assert train.use_compile(None, train.COMPILE_MIN_STEPS, "cpu") is True
    assert train.use_compile(None, train.COMPILE_MIN_STEPS - 1, "cpu") is False
    assert train.use_compile(False, 10**6, "cpu") is False
    assert train.use_compile(True, 1, "cpu") is True
    monkeypatch.setattr(train, "compiler_available", lambda device: False)
    assert train.use_compile(None, 10**6, "cpu") is False


def test_a_failing_compiler_falls_back_to_eager_with_a_warning(monkeypatch):
    """A backend failure (no C++ compiler on the machine) must not end a training run."""
    import torch

    from beyondscale.lab import train

    def broken(model):
        def call(**inputs):
            raise torch._dynamo.exc.BackendCompilerFailed(lambda *a: None, RuntimeError("no g++"), None)
        return call

    monkeypatch.setattr(torch, "compile", broken)
    model = torch.nn.Linear(3, 2)
    forward = train.compiled_or_eager(lambda **kw: model(kw["input"]))
    x = torch.ones(1, 3)
    with pytest.warns(UserWarning, match="training eagerly"):
        out = forward(input=x)
    assert torch.equal(out, model(x))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["moe"])  # the MoE model holds the dense layers too; one cold compile in CI
def test_compiled_training_follows_the_eager_losses(tmp_path, arch):
    """The compiled loop is the same function: per-step losses (and the MoE's balance loss, computed from
    router statistics the compiled blocks leave behind) agree with eager to float tolerance."""
    from dataclasses import replace

    from _lab_helpers import tiny_request, write_corpus
    from beyondscale.lab.run import train_model
    from beyondscale.lab.train import TrainConfig

    data = write_corpus(tmp_path / "c.txt")
    runs = {}
    for flag in (False, True):
        req = tiny_request(data, tmp_path / f"m{flag}", arch, tokens=4096, train=TrainConfig(batch_size=4, compile=flag))
        runs[flag] = train_model(replace(req, store=None))
    assert runs[True]["compiled"] is True and runs[False]["compiled"] is False
    eager = [p["loss"] for p in runs[False]["loss_curve"]]
    fast = [p["loss"] for p in runs[True]["loss_curve"]]
    assert len(eager) == len(fast) > 10
    assert max(abs(a - b) for a, b in zip(eager, fast, strict=True)) < 2e-3
    assert abs(runs[True]["val_loss"] - runs[False]["val_loss"]) < 2e-3
    if arch == "moe":
        balance = [[p["balance"] for p in runs[flag]["loss_curve"]] for flag in (False, True)]
        assert max(abs(a - b) for a, b in zip(*balance, strict=True)) < 2e-3
        for compiled, eager in zip(runs[True]["expert_load"], runs[False]["expert_load"], strict=True):
            assert compiled == pytest.approx(eager, abs=0.02)
