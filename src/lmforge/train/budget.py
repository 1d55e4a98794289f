"""A time budget turned into a step count, so the learning-rate schedule ends when the minutes do.

A run cut off by `train.max_minutes` half-way through its cosine schedule never decays its rate. Both
`lmforge pretrain` and `lmforge finetune` (`fit_steps_to_minutes: true`) measure a few real training steps
first and set `max_steps` so the schedule fits the budget; the loop then keeps the end on the budget as
the pace changes (`schedule_follows_time`).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

from lmforge.train.config import TrainConfig

TRAINING_SHARE = 0.85  # evaluations and checkpoints take time too: 85% of the minutes go to steps
MIN_STEPS = 10


def measure_step_seconds(model, objective, config: TrainConfig, repeats: int = 3) -> float:
    """Median seconds of one training step (forward + backward of every micro-batch), weights untouched.

    With precision bf16 it runs under bf16 autocast as the loop does (~1.5x faster than fp32 on CPUs with
    AVX512-BF16), so the fitted schedule is not cut short.
    """
    import torch

    from lmforge.train.distributed import pick_device
    from lmforge.train.loop import _autocast, _resolve_precision, _to_device

    # measured where and how the loop will train (a GPU's step, not the CPU's, when the run is on a GPU)
    device = pick_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    model.to(device)
    autocast = _autocast(_resolve_precision(config.precision, device), device)
    model.train()
    timings = []
    for index in range(repeats + 1):
        started = time.perf_counter()
        for micro in range(config.grad_accum):
            batch = objective.train_batch(index * config.grad_accum + micro, config.batch_size, 0, 1)
            with autocast:
                loss = objective.loss(model, _to_device(batch, device))
            loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timings.append(time.perf_counter() - started)
    model.zero_grad(set_to_none=True)
    torch.manual_seed(config.seed)
    return statistics.median(timings[1:])  # the first step pays one-off allocation costs


def fit_steps_to_minutes(model, objective, config: TrainConfig, log=print, ctx=None) -> TrainConfig:
    """`config` with `max_steps` (and a warmup of at most a tenth of them) fitted to `config.max_minutes`
    from a measured step time; unchanged when there is no time budget. Under torchrun (`ctx`, from
    `distributed.init_distributed`) every rank takes rank 0's number of steps."""
    if not config.max_minutes:
        return config
    from lmforge.train.distributed import broadcast_int

    step_seconds = measure_step_seconds(model, objective, config)
    steps = max(MIN_STEPS, int(config.max_minutes * 60 * TRAINING_SHARE / step_seconds))
    if ctx is not None:
        steps = broadcast_int(steps, ctx)
    warmup = min(config.warmup_steps, steps // 10)
    log(f"schedule: {steps:,} steps of {step_seconds * 1e3:.0f} ms fit {config.max_minutes:g} min")
    return dataclasses.replace(config, max_steps=steps, warmup_steps=warmup, schedule_follows_time=True)
