"""What happens around each step: FLOP and expert-load accounting, the loss curve, periodic
evaluation and checkpoints, and the progress bar (loss, tokens/s, MFU)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from beyondscale.lab.flops import forward_flops, training_flops


class TrainHooks:
    """Passed to `train.train_steps`; its state (curves, counts, FLOPs) goes into every checkpoint."""

    def __init__(self, *, config: Any, steps: int, tokens_per_step: int, context_length: int, n_layers_moe: int,
                 n_experts: int, teacher_config: Any | None, evaluate: Callable[[], float], eval_every: int,
                 save: Callable[[int], None], peak_flops: float | None, show: bool, stop_after: int | None,
                 state: dict | None = None):
        self.config, self.steps, self.tokens_per_step, self.ctx = config, steps, tokens_per_step, context_length
        self.teacher_config, self.evaluate, self.eval_every, self.save = teacher_config, evaluate, eval_every, save
        self.peak, self.stop_after = peak_flops, stop_after
        state = state or {}
        self.counts = state.get("counts", torch.zeros(n_layers_moe, max(n_experts, 1), dtype=torch.long))
        self.loss_curve: list[dict] = state.get("loss_curve", [])
        self.val_curve: list[dict] = state.get("val_curve", [])
        self.flops = float(state.get("flops", 0.0))
        self.teacher_flops = float(state.get("teacher_flops", 0.0))
        self.stopped_early = False
        self.last_step = int(state.get("step", 0))
        self._step_assign = 0
        self._t = time.perf_counter()
        self._bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                             TimeRemainingColumn(), console=Console(stderr=True), disable=not show)
        self._task = self._bar.add_task("train", total=steps, completed=state.get("step", 0), info="")

    def state(self, step: int) -> dict:
        return {"counts": self.counts, "loss_curve": self.loss_curve, "val_curve": self.val_curve,
                "flops": self.flops, "teacher_flops": self.teacher_flops, "step": step}

    def micro(self, blocks: list) -> None:
        for layer, block in enumerate(blocks):
            self.counts[layer] += block.last.counts.cpu()
            self._step_assign += int(block.last.counts.sum())

    def step(self, step: int, parts: dict[str, float], lr: float) -> bool:
        self.last_step = step
        tokens = self.tokens_per_step
        step_flops = training_flops(self.config, tokens, self.ctx, self._step_assign if self._step_assign else None)
        if self.teacher_config is not None:
            teacher = forward_flops(self.teacher_config, tokens, self.ctx)
            self.teacher_flops += teacher
            step_flops += teacher
        self._step_assign = 0
        self.flops += step_flops
        now = time.perf_counter()
        dt, self._t = now - self._t, now
        point = {"step": step, "tokens": step * tokens, "flops": self.flops, "loss": parts["loss"], "lr": lr,
                 **{k: v for k, v in parts.items() if k != "loss"}}
        self.loss_curve.append(point)
        mfu = f" MFU {step_flops / dt / self.peak:.1%}" if self.peak else ""
        self._bar.update(self._task, completed=step, info=f"loss {parts['loss']:.3f} {tokens / dt:,.0f} tok/s{mfu}")
        if step % self.eval_every == 0 and step < self.steps:
            self.val_curve.append({"step": step, "tokens": step * tokens, "flops": self.flops,
                                   "loss": self.evaluate(), "lr": lr})
            self.save(step)
            self._t = time.perf_counter()  # evaluation time is not training throughput
        if self.stop_after is not None and step >= self.stop_after and step < self.steps:
            self.save(step)
            self.stopped_early = True
            return True
        return False

    def close(self) -> None:
        self._bar.stop()
