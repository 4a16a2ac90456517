"""The training loop, on one screen (nanoGPT-style): AdamW, warm-up + cosine, clipping, accumulation.

Everything around it (data, checkpoints, the record, the progress bar) lives in `lab.run`, which
passes `hooks`; the loop itself only turns batches into updates.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch

from beyondscale.lab.data import Batches
from beyondscale.lab.losses import distill_loss, next_token_loss
from beyondscale.lab.moe import FastSparseMoe, aux_losses


@dataclass
class TrainConfig:
    """Optimisation settings (defaults are the lab's choice for tiny models, not tuned per size)."""

    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int | None = None  # default: 5% of the steps, at least 1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    clip: float = 1.0
    seed: int = 0
    aux_coef: float = 0.01  # load-balancing loss (OLMoE default)
    z_coef: float = 0.001  # router z-loss (OLMoE default)
    distill_alpha: float = 0.5  # weight of the KL term against the data loss
    distill_temperature: float = 2.0
    eval_every: int | None = None  # default: 10 evaluations per run
    eval_tokens: int = 32768  # validation tokens per intermediate evaluation (the final one uses all)
    compile: bool | None = None  # torch.compile the model; None = auto (`use_compile`)

    def to_dict(self) -> dict:
        return asdict(self)


# A cold compile costs 20-30 s on 2 CPU cores and saves about a fifth of each step (bench/train_throughput.py):
# from about 1,000 steps on it pays for itself even with an empty inductor cache.
COMPILE_MIN_STEPS = 1000


def compiler_available(device: str) -> bool:
    """inductor needs a C++ compiler on CPU and triton on GPU; without them torch.compile cannot run."""
    if device.startswith("cuda"):
        return importlib.util.find_spec("triton") is not None
    return any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "clang++"))


def use_compile(setting: bool | None, steps: int, device: str) -> bool:
    """--compile / --no-compile decide; by default (None) compile runs long enough to repay the compile time."""
    if setting is not None:
        return setting
    return steps >= COMPILE_MIN_STEPS and compiler_available(device)


def compiled_or_eager(function: Callable[..., Any]) -> Callable[..., Any]:
    """`torch.compile(function)` (same weights, fused kernels), falling back to eager with one warning if
    the backend fails on this machine (no compiler, unsupported op) instead of ending the run."""
    fast: Callable[..., Any] = torch.compile(function)

    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal fast
        try:
            return fast(*args, **kwargs)
        except torch._dynamo.exc.BackendCompilerFailed as err:
            warnings.warn(f"torch.compile failed here ({str(err).splitlines()[0][:160]}); training eagerly",
                          stacklevel=2)
            fast = function
            return function(*args, **kwargs)
    return call


class Hooks(Protocol):
    def micro(self, blocks: list[FastSparseMoe]) -> None: ...
    def step(self, step: int, losses: dict[str, float], lr: float) -> bool: ...  # True = stop now


def lr_lambda(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """Linear warm-up to the peak, then cosine decay to `min_ratio` of it at the last step."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: str) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms); the fused kernel (CPU and GPU) updates every
    tensor in one pass instead of a chain of element-wise ops."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    fused = device.startswith(("cuda", "cpu"))
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused)


def objective(model: torch.nn.Module, cfg: TrainConfig, blocks: list[FastSparseMoe]) -> Callable[..., Any]:
    """One micro-batch's loss to minimise, and its parts to log: next-token loss, the KL to a teacher's
    logits when distilling, the MoE's per-layer balance and z losses. One function, so a compiled run
    fuses the head's cross-entropy with the model instead of writing out the log-probabilities."""
    def loss_of(x: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor | None = None) -> Any:
        logits = model(input_ids=x, use_cache=False).logits
        data_loss = next_token_loss(logits, y)
        loss, parts = data_loss, {"loss": data_loss}
        if teacher_logits is not None:
            parts["distill"] = distill_loss(logits, teacher_logits, cfg.distill_temperature)
            loss = (1 - cfg.distill_alpha) * data_loss + cfg.distill_alpha * parts["distill"]
        if blocks:
            parts["balance"], parts["z"] = aux_losses(blocks)
            loss = loss + cfg.aux_coef * parts["balance"] + cfg.z_coef * parts["z"]
        return loss, parts
    return loss_of


def train_steps(model: torch.nn.Module, cfg: TrainConfig, batches: Batches, steps: int, device: str,
                hooks: Hooks, *, blocks: list[FastSparseMoe], teacher: torch.nn.Module | None = None,
                optimizer: Any, scheduler: Any, start: int = 0) -> None:
    amp = (torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda")
           else contextlib.nullcontext())
    model.train()
    loss_of = objective(model, cfg, blocks)
    loss_of = compiled_or_eager(loss_of) if cfg.compile else loss_of
    for step in range(start, steps):
        parts: dict[str, float] = {}
        for micro in range(cfg.grad_accum):
            x, y = (torch.from_numpy(a).to(device, non_blocking=True)
                    for a in batches.get(step * cfg.grad_accum + micro))
            with amp:
                with torch.no_grad():
                    teacher_logits = teacher(input_ids=x).logits if teacher is not None else None
                loss, micro_parts = loss_of(x, y, teacher_logits)
            (loss / cfg.grad_accum).backward()
            for name, value in micro_parts.items():
                parts[name] = parts.get(name, 0.0) + value.item() / cfg.grad_accum
            hooks.micro(blocks)
        parts["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip))
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if hooks.step(step + 1, parts, lr):
            return
