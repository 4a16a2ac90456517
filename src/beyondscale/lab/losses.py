"""Losses the lab trains and reports: next-token cross-entropy, distillation KL, windowed validation loss."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al. 2015: T^2 * KL(teacher_T || student_T), averaged over tokens."""
    t = temperature
    s_log = F.log_softmax(student.float().reshape(-1, student.shape[-1]) / t, dim=-1)
    t_log = F.log_softmax(teacher.float().reshape(-1, teacher.shape[-1]) / t, dim=-1)
    return F.kl_div(s_log, t_log, log_target=True, reduction="batchmean") * t * t


@torch.no_grad()
def windows_loss(model: torch.nn.Module, windows: np.ndarray, device: str, batch_size: int = 16) -> float:
    """Mean next-token cross-entropy (nats) over every prediction inside each window (float32, eval mode)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(windows), batch_size):
        ids = torch.from_numpy(windows[start:start + batch_size]).to(device)
        logits = model(input_ids=ids).logits
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                               reduction="sum")
        total += float(loss)
        count += ids[:, 1:].numel()
    model.train(was_training)
    return total / count
