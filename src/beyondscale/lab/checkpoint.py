"""Resumable training state: model, optimiser, scheduler, data position (the step) and RNG states.

Written atomically (temporary file, then rename) so a run killed mid-write keeps its last good
checkpoint; read back with `weights_only=True`, so a checkpoint cannot execute code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from beyondscale.errors import UserError

NAME = "checkpoint.pt"


def save(path: Path, *, model: torch.nn.Module, optimizer: Any, scheduler: Any, step: int, extra: dict) -> None:
    state = {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "step": step, "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "extra": extra,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a damaged file is a user-facing condition
        raise UserError(f"{path}: cannot read the checkpoint ({err}); pass --overwrite to start again") from None


def restore(state: dict, *, model: torch.nn.Module, optimizer: Any, scheduler: Any) -> int:
    """Put every piece back and return the step to continue from."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng_cpu"])
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    return int(state["step"])
