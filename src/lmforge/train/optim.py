"""The optimizer and the learning-rate schedule.

What this file implements:
  - `parameter_groups`: AdamW's weight decay goes on matrices (linear and embedding weights, ndim >= 2) and
    not on biases and norm gains (ndim < 2): decaying a gain towards 0 shrinks a layer's output for no
    benefit (the GPT-2 / nanoGPT rule);
  - `build_optimizer`: AdamW over those groups (fused kernels on CUDA);
  - `LRSchedule`: linear warmup, then cosine (or linear, or constant) decay to `min_lr_ratio` x the peak.
    It is a pure function of the step, so resuming needs only the step — no scheduler object to pickle.

    >>> schedule = LRSchedule(warmup_steps=10, total_steps=100, kind="cosine", min_lr_ratio=0.1)
    >>> [round(schedule.factor(s), 3) for s in (0, 9, 10, 55, 100)]
    [0.1, 1.0, 1.0, 0.55, 0.1]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decayed matrices and undecayed vectors (biases, norm weights). Tied weights once."""
    decay, no_decay = [], []
    seen: set[int] = set()
    for parameter in model.parameters():
        if not parameter.requires_grad or id(parameter) in seen:
            continue
        seen.add(id(parameter))
        (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
) -> torch.optim.AdamW:
    on_cuda = next(model.parameters()).is_cuda
    return torch.optim.AdamW(
        parameter_groups(model, weight_decay), lr=lr, betas=betas, eps=eps, fused=True if on_cuda else None
    )


@dataclass(frozen=True)
class LRSchedule:
    warmup_steps: int  # linear ramp from lr/warmup to lr: Adam's early moment estimates are noisy
    total_steps: int  # the decay ends here (later steps stay at the floor)
    kind: Literal["cosine", "linear", "constant"] = "cosine"
    min_lr_ratio: float = 0.1  # the floor, as a fraction of the peak (Chinchilla: decay to ~10%)

    def factor(self, step: int) -> float:
        """Multiplier of the peak learning rate at optimizer step `step` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        if self.kind == "cosine":
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        else:
            shape = 1.0 - progress
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * shape

    def apply(self, optimizer: torch.optim.Optimizer, step: int, peak_lr: float) -> float:
        """Set every group's learning rate for `step`; returns it."""
        lr = peak_lr * self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr
