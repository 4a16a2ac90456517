"""Tiny lab runs shared by the lab tests: a random-word corpus and a model that trains in ~1 s."""

from __future__ import annotations

from pathlib import Path

from _tiny_models import corpus


def write_corpus(path: Path, n_lines: int = 1500, seed: int = 0) -> Path:
    path.write_text("\n\n".join(corpus(n_lines, seed)), encoding="utf-8")
    return path


def tiny_request(data: Path, out: Path, arch: str = "dense", tokens: int = 8192, **kw):
    from beyondscale.lab.configs import Shape
    from beyondscale.lab.run import TrainRequest
    from beyondscale.lab.train import TrainConfig

    shape = kw.pop("shape", None) or Shape(d_model=32, n_layer=2, n_head=2, context_length=32, n_experts=4, top_k=2)
    train = kw.pop("train", None) or TrainConfig(batch_size=4, eval_every=8)
    return TrainRequest(data=str(data), out=str(out), arch=arch, tokens=tokens, shape=shape, train=train,
                        vocab_size=300, show_progress=False, device="cpu", **kw)


def one_thread():
    """Tiny models run fastest on one thread (two threads on a shared 2-core machine mostly wait)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_cli(monkeypatch, *args: str) -> int:
    """Run the real `beyondscale` entry point in-process; its exit status (0 when it returns)."""
    import sys

    from beyondscale.cli import main

    monkeypatch.setattr(sys, "argv", ["beyondscale", *args])
    try:
        main()
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def forbid_training(monkeypatch) -> None:
    """From here on any optimiser step fails the test: what a resume must not redo, a retrain would."""
    def retrained(*_a, **_k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("beyondscale.lab.run.train_steps", retrained)


def record_training_starts(monkeypatch) -> list[int]:
    """The step each training segment starts from, appended as training begins (the real training still runs)."""
    import beyondscale.lab.run as run

    real, starts = run.train_steps, []

    def recorded(*args, start: int = 0, **kw):
        starts.append(start)
        return real(*args, start=start, **kw)

    monkeypatch.setattr(run, "train_steps", recorded)
    return starts
