"""On a CUDA machine without nvidia-ml-py, energy is an estimate: say so once per process, naming the extra.

CUDA is faked (torch.cuda.is_available / device_count / get_device_name) and pynvml is made unimportable,
so the test runs on any machine; the meter is built for "cuda" as `eval` builds it.
"""

from __future__ import annotations

import logging
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from beyondscale.measure import energy as energy_mod
from beyondscale.measure.energy import RaplReader, auto_reader

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def fake_cuda_without_nvml(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(energy_mod, "_REGISTRY", [("rapl", "cpu", lambda: RaplReader(tmp_path / "none")),
                                                  ("nvml", "gpu", energy_mod.NvmlReader)])
    monkeypatch.setattr(energy_mod, "_warned", set())  # a fresh process


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_missing_nvml_on_cuda_warns_once_naming_the_extra(fake_cuda_without_nvml, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="beyondscale.measure.energy"):
        first = auto_reader("cuda")
        auto_reader("cuda")
        auto_reader("cuda:0")
    lines = _warnings(caplog)
    assert len(lines) == 1, lines
    assert "nvidia-ml-py" in lines[0] and "pip install 'beyondscale[gpu]'" in lines[0]
    assert "estimated" in lines[0] and "\n" not in lines[0]
    assert first.estimated and "estimate:tdp" in first.name  # the figure itself is labelled too


def test_no_warning_on_cpu_or_when_nvml_reads(fake_cuda_without_nvml, monkeypatch, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="beyondscale.measure.energy"):
        auto_reader("cpu")
    assert _warnings(caplog) == []

    class FakeNvml:
        name, estimated, scope = "nvml", False, "whole-gpu"

        def available(self) -> bool:
            return True

    monkeypatch.setattr(energy_mod, "_REGISTRY", [("nvml", "gpu", FakeNvml)])
    with caplog.at_level(logging.WARNING, logger="beyondscale.measure.energy"):
        reader = auto_reader("cuda")
    assert _warnings(caplog) == []
    assert "nvml" in reader.name


def test_gpu_and_track_extras_are_declared() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {e: {d.split(">")[0].split("=")[0].split("[")[0].strip() for d in deps} for e, deps in extras.items()}
    assert {"nvidia-ml-py", "bitsandbytes"} <= names["gpu"]
    assert {"mlflow", "wandb", "tensorboard", "trackio"} <= names["track"]
