"""The training loop, on one screen (nanoGPT-style): AdamW, warm-up + cosine, clipping, accumulation.

Everything around it (data, checkpoints, the record, the progress bar) lives in `lab.run`, which
passes `hooks`; the loop itself only turns batches into updates.
"""

from __future__ import annotations

import contextlib
import math
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
    compile: bool = False  # torch.compile the forward/backward (first steps pay the compile time)

    def to_dict(self) -> dict:
        return asdict(self)


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


def train_steps(model: torch.nn.Module, cfg: TrainConfig, batches: Batches, steps: int, device: str,
                hooks: Hooks, *, blocks: list[FastSparseMoe], teacher: torch.nn.Module | None = None,
                optimizer: Any, scheduler: Any, start: int = 0) -> None:
    amp = (torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda")
           else contextlib.nullcontext())
    model.train()
    forward = torch.compile(model) if cfg.compile else model  # same weights; fused kernels where inductor can
    for step in range(start, steps):
        parts: dict[str, float] = {}
        for micro in range(cfg.grad_accum):
            x, y = (torch.from_numpy(a).to(device, non_blocking=True)
                    for a in batches.get(step * cfg.grad_accum + micro))
            with amp:
                logits = forward(input_ids=x, use_cache=False).logits
                data_loss = next_token_loss(logits, y)
                loss = data_loss
                if teacher is not None:
                    with torch.no_grad():
                        teacher_logits = teacher(input_ids=x).logits
                    kd = distill_loss(logits, teacher_logits, cfg.distill_temperature)
                    loss = (1 - cfg.distill_alpha) * data_loss + cfg.distill_alpha * kd
                    parts["distill"] = parts.get("distill", 0.0) + kd.item() / cfg.grad_accum
                if blocks:
                    balance, z = aux_losses(blocks)
                    loss = loss + cfg.aux_coef * balance + cfg.z_coef * z
                    parts["balance"] = parts.get("balance", 0.0) + balance.item() / cfg.grad_accum
                    parts["z"] = parts.get("z", 0.0) + z.item() / cfg.grad_accum
            (loss / cfg.grad_accum).backward()
            parts["loss"] = parts.get("loss", 0.0) + data_loss.item() / cfg.grad_accum
            hooks.micro(blocks)
        parts["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip))
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if hooks.step(step + 1, parts, lr):
            return
