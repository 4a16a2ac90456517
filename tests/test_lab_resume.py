"""A killed run resumes from its last checkpoint and ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import pytest

from _lab_helpers import forbid_training, record_training_starts, tiny_request, write_corpus
from _lab_helpers import one_thread as _lab_one_thread
from beyondscale.errors import UserError

one_thread = pytest.fixture(autouse=True)(_lab_one_thread)


def _curve(record):
    return [(p["step"], round(p["loss"], 6)) for p in record["loss_curve"]]


@pytest.mark.parametrize("arch", ["dense", "moe"])
def test_crashed_run_resumes_to_the_same_loss(tmp_path, monkeypatch, arch):
    import beyondscale.lab.losses as losses
    from beyondscale.lab.run import train_model

    data = write_corpus(tmp_path / "c.txt")
    whole = train_model(tiny_request(data, tmp_path / "whole", arch, tokens=4096))  # 32 steps, eval every 8

    real, calls = losses.windows_loss, {"n": 0}

    def crash_on_second_eval(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # step 16, before its checkpoint: the step-8 checkpoint is the last good one
            raise RuntimeError("killed")
        return real(*args, **kw)

    monkeypatch.setattr(losses, "windows_loss", crash_on_second_eval)
    with pytest.raises(RuntimeError, match="killed"):
        train_model(tiny_request(data, tmp_path / "cut", arch, tokens=4096))
    monkeypatch.setattr(losses, "windows_loss", real)
    starts = record_training_starts(monkeypatch)
    with pytest.raises(UserError, match="--resume"):
        train_model(tiny_request(data, tmp_path / "cut", arch, tokens=4096))
    with pytest.raises(UserError, match="setting 'tokens' differs"):
        train_model(tiny_request(data, tmp_path / "cut", arch, tokens=8192, resume=True))
    resumed = train_model(tiny_request(data, tmp_path / "cut", arch, tokens=4096, resume=True))
    assert resumed["segments"] == 2 and starts == [8]  # continued from the step-8 checkpoint, not from step 0
    assert _curve(resumed) == _curve(whole)
    assert resumed["val_loss"] == pytest.approx(whole["val_loss"], rel=1e-6)
    assert resumed["train_flops"] == pytest.approx(whole["train_flops"], rel=1e-12)


def test_stopped_run_resumes_and_finished_run_is_returned_as_is(tmp_path, monkeypatch):
    from beyondscale.lab.run import train_model

    data = write_corpus(tmp_path / "c.txt")
    whole = train_model(tiny_request(data, tmp_path / "whole", tokens=4096))
    assert train_model(tiny_request(data, tmp_path / "cut", tokens=4096, stop_after=13)) is None
    starts = record_training_starts(monkeypatch)
    resumed = train_model(tiny_request(data, tmp_path / "cut", tokens=4096, resume=True))
    assert starts == [13]  # continued where it stopped
    assert resumed["val_loss"] == pytest.approx(whole["val_loss"], rel=1e-6)
    with monkeypatch.context() as no_steps:
        forbid_training(no_steps)  # finished: read back, not trained again
        again = train_model(tiny_request(data, tmp_path / "cut", tokens=4096, resume=True))
    assert again == resumed
    replaced = train_model(tiny_request(data, tmp_path / "cut", tokens=2048, overwrite=True))
    assert replaced["tokens"] == 2048
    write_corpus(data, seed=1)  # same path, other content: resuming would mix two corpora
    with pytest.raises(UserError, match="changed since that run started"):
        train_model(tiny_request(data, tmp_path / "cut", tokens=2048, resume=True))
