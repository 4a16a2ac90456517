"""Loading a model (and converting a GGUF file) prints no progress bars or library warnings into the
study's output; the libraries' own settings are restored afterwards."""

from __future__ import annotations

import os
import warnings

import pytest
from transformers.utils import logging as hf_logging

from beyondscale.models import load_model, parse_model_ref
from beyondscale.models.load import quiet_loading


def test_folder_load_prints_nothing(tiny_llama, capfd) -> None:
    capfd.readouterr()
    load_model(parse_model_ref(str(tiny_llama)), device="cpu")
    out, err = capfd.readouterr()
    assert out == "" and err == "", err[-500:]


def test_gguf_conversion_bar_and_warnings_are_silenced(capfd) -> None:
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    before = (hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity())
    capfd.readouterr()
    with quiet_loading():
        for _ in gguf_utils.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."):
            pass
        hf_logging.get_logger("transformers.modeling_utils").warning("a library warning")
        warnings.warn("a library UserWarning", UserWarning, stacklevel=1)
    out, err = capfd.readouterr()
    assert out == "" and err == "", err
    assert (hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()) == before
    for _ in gguf_utils.tqdm(range(1), desc="after", disable=None):  # the library's own object is back
        pass
    assert gguf_utils.tqdm.__module__.startswith("tqdm")


def read_each_file_once(monkeypatch) -> None:
    """gguf's reader parses a file's header on construction (~2.5 s for SmolLM2's 49k-token vocabulary), and
    transformers builds one for the config, one for the tokenizer and one for the weights, beyondscale one for
    the file type: one per file serves all four (read-only memory map, nothing printed while parsing)."""
    import gguf

    readers: dict[tuple[str, str], gguf.GGUFReader] = {}
    build = gguf.GGUFReader

    def read_once(path, mode="r"):
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = build(path, mode)
        return readers[key]

    monkeypatch.setattr(gguf, "GGUFReader", read_once)


@pytest.mark.slow
def test_real_gguf_conversion_is_quiet(tmp_path, monkeypatch, capfd) -> None:
    from beyondscale.quickstart.packaged import smollm2_gguf_path

    monkeypatch.setenv("BEYONDSCALE_CACHE", str(tmp_path))
    read_each_file_once(monkeypatch)
    path = smollm2_gguf_path()
    capfd.readouterr()
    loaded = load_model(parse_model_ref(str(path)), device="cpu")
    out, err = capfd.readouterr()
    assert "Converting" not in err and "Loading weights" not in err and "%|" not in err, err[-500:]
    assert loaded.facts.quantization == "gguf:Q4_1" and os.listdir(tmp_path / "gguf")
