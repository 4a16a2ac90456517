"""Shared fixtures: tiny random-init HF models saved as ordinary folders, and JSONL task fixtures.

Nothing is downloaded: the tokenizer is the byte-level BPE of `_tiny_models`, trained in the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

# One intra-op thread. This 2-core machine is shared (CI beside other work): with a second thread every
# parallel op waits for the busy core. Measured back to back at load ~5: 11 files of tiny models 79-91 s with
# two threads, 42-44 s with one; the real-model files (interpret_real, models_quiet) 48 s -> 25 s.
# BEYONDSCALE_TEST_THREADS=2 gives a machine of its own its second core back.
torch.set_num_threads(int(os.environ.get("BEYONDSCALE_TEST_THREADS", "1")))

TEXT = (
    "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step. "
    "To be or not to be, that is the question. All that glitters is not gold. The early bird catches the worm. "
    "Knowledge is power. Time flies like an arrow; fruit flies like a banana. Count: one, two, three, four, five. "
    "Alphabet: a b c d e f g h i j k l m n o p q r s t u v w x y z. Python is a programming language. "
) * 8


def save_tokenizer(path: Path):
    """The engine tests' byte-level BPE tokenizer (trained here, no download), saved as a HF tokenizer."""
    from _tiny_models import tiny_tokenizer

    tok = tiny_tokenizer()
    tok.save_pretrained(path)
    return tok


def build_tiny_model(path: Path, arch: str = "llama", seed: int = 0, **overrides) -> Path:
    """Save a random-init causal LM (llama | gpt2 | mixtral) with its tokenizer to `path`."""
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, MixtralConfig

    path.mkdir(parents=True, exist_ok=True)
    tok = save_tokenizer(path)
    common = {"vocab_size": len(tok), "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
              "pad_token_id": tok.convert_tokens_to_ids("<pad>")}
    if arch == "llama":
        cls, defaults = LlamaConfig, {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                      "num_attention_heads": 4, "num_key_value_heads": 2,
                                      "max_position_embeddings": 256, "tie_word_embeddings": True}
    elif arch == "gpt2":
        cls, defaults = GPT2Config, {"n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 256}
    elif arch == "mixtral":
        cls, defaults = MixtralConfig, {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
                                        "num_attention_heads": 4, "num_key_value_heads": 2, "num_local_experts": 4,
                                        "num_experts_per_tok": 2, "max_position_embeddings": 256,
                                        "tie_word_embeddings": False}
    else:
        raise ValueError(arch)
    config = cls(**{**defaults, **common, **overrides})
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama", "llama")


@pytest.fixture(scope="session")
def tiny_llama_big(tmp_path_factory) -> Path:
    """A second, larger member of the same family (for analysis across sizes)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama-big", "llama", seed=1,
                            hidden_size=64, intermediate_size=128)


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-gpt2", "gpt2")


def write_mc_task(folder: Path, n: int = 12, name: str = "tiny_mc") -> Path:
    """A JSONL multiple-choice task in lm-evaluation-harness YAML form."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    words = ["fox", "dog", "bird", "arrow", "banana", "gold", "step", "question"]
    for i in range(n):
        rows.append({"question": f"Which word comes next in sentence {i}: the quick brown",
                     "choices": [f"{words[(i + j) % len(words)]} jumps" for j in range(4)], "label": i % 4})
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / f"{name}.yaml").write_text(
        f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {name}.jsonl\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: \"Question: {{question}}\\nAnswer:\"\n"
        "doc_to_target: label\ndoc_to_choice: choices\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n",
        encoding="utf-8",
    )
    return folder / f"{name}.yaml"


def write_rolling_task(folder: Path, n: int = 4, name: str = "tiny_ppl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"text": TEXT[i * 50: i * 50 + 400]} for i in range(n)]
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / f"{name}.yaml").write_text(
        f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {name}.jsonl\n"
        "test_split: test\noutput_type: loglikelihood_rolling\ndoc_to_text: ''\ndoc_to_target: '{{text}}'\n",
        encoding="utf-8",
    )
    return folder / f"{name}.yaml"


@pytest.fixture()
def mc_task(tmp_path) -> Path:
    return write_mc_task(tmp_path / "tasks")


@pytest.fixture()
def rolling_task(tmp_path) -> Path:
    return write_rolling_task(tmp_path / "tasks")
