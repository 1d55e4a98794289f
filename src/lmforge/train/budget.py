"""Before the loop starts: the precision a run trains in, and a schedule fitted to its minutes.

A run cut off by `train.max_minutes` half-way through its cosine schedule never decays its rate. Both
`lmforge pretrain` and `lmforge finetune` (`fit_steps_to_minutes: true`) time a few real training steps
first and set `max_steps` so the schedule fits the budget; the loop then keeps the end on the budget as
the pace changes (`schedule_follows_time`). What this file implements:

  - `measure_step_seconds`: the median time of one training step of this model on the run's device (a
    GPU's step when the run is on a GPU), under a given precision, weights untouched, with a progress bar;
  - `settle_precision`: `precision: auto` made concrete — the machine's answer (`lmforge.train.precision`),
    then, where that is bf16 on a CPU, this model's own step in both precisions (an LSTM's step can be
    slower under bf16 autocast where matmuls are much faster); a slow explicit `bf16` is warned about;
  - `fit_steps_to_minutes`: the step-time budget itself — `max_steps` (and a warmup of at most a tenth of
    them) from the measured step time; under torchrun every rank takes rank 0's count;
  - `plan_training`: both, as `lmforge pretrain` and `lmforge finetune` run them;
  - `explicit_steps_win`: a `--train.max_steps` given on the command line turns `fit_steps_to_minutes` off.

A 14-minute run of a model whose step is 1.8x faster in bf16 on this CPU logs:

    precision: auto: bf16, since bf16 autocast matmuls are 14.2x faster than fp32 on this CPU and this model's step is 1.8x faster (576 ms vs 1,014 ms)
    schedule: 1,238 steps of 576 ms fit 14 min
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from lmforge.train.config import TrainConfig
from lmforge.train.precision import PRECISIONS, PrecisionChoice, bf16_pays, choose_precision, warn_once

TRAINING_SHARE = 0.85  # evaluations and checkpoints take time too: 85% of the minutes go to steps
MIN_STEPS = 10


def measure_step_seconds(
    model,
    objective,
    config: TrainConfig,
    precision: str | None = None,
    repeats: int = 3,
    progress: bool | None = None,
) -> float:
    """Median seconds of one training step (forward + backward of every micro-batch) under `precision`
    (default: `config.precision`, settled for the device) on the device the loop will train on; the
    weights are not changed and the seed is reset after. `progress` (default `config.progress`): a bar."""
    from lmforge.train.distributed import pick_device
    from lmforge.train.loop import autocast_for, to_device

    device = pick_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    if precision is None:
        precision = choose_precision(config.precision, device).precision
    model.to(device)
    autocast = autocast_for(precision, device)
    model.train()
    bar = None
    if config.progress if progress is None else progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=repeats + 1, desc=f"measuring the step ({precision})", unit="step", leave=False)
    timings = []
    for index in range(repeats + 1):
        started = time.perf_counter()
        for micro in range(config.grad_accum):
            batch = objective.train_batch(index * config.grad_accum + micro, config.batch_size, 0, 1)
            with autocast:
                loss = objective.loss(model, to_device(batch, device))
            loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timings.append(time.perf_counter() - started)
        if bar is not None:
            bar.set_postfix_str(f"{timings[-1] * 1e3:,.0f} ms", refresh=False)
            bar.update()
    if bar is not None:
        bar.close()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(config.seed)
    return statistics.median(timings[1:])  # the first step pays one-off allocation costs


def settle_precision(
    model, objective, config: TrainConfig, log: Callable[[str], None] = print, probe=None, ctx=None
) -> tuple[TrainConfig, float | None]:
    """`config` with a concrete precision, and the step time measured on the way (None if none was).

    Logs one line saying what was chosen and why (auto), or a warning (an explicit bf16 that is slow).
    `probe`: this machine's CPU matmul timings (default: `lmforge.train.precision.cpu_matmul_probe`).
    Under torchrun (`ctx`) every rank takes rank 0's precision.
    """
    from lmforge.train.distributed import broadcast_int, pick_device

    device = pick_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    choice = choose_precision(config.precision, device, probe)
    step_seconds = None
    if config.precision == "auto" and choice.precision == "bf16" and device.type == "cpu":
        choice, step_seconds = _check_model_step(model, objective, config, choice)
    if config.precision == "auto":
        log(f"precision: {choice.reason}")
    if choice.warning:
        warn_once(choice.warning, log)
    precision = choice.precision
    if ctx is not None:
        precision = PRECISIONS[broadcast_int(PRECISIONS.index(precision), ctx)]
        if precision != choice.precision:
            step_seconds = None  # measured in the precision this rank does not train in
    return dataclasses.replace(config, precision=precision), step_seconds


def fit_steps_to_minutes(
    model, objective, config: TrainConfig, log=print, ctx=None, step_seconds: float | None = None
) -> TrainConfig:
    """`config` with `max_steps` (and a warmup of at most a tenth of them) fitted to `config.max_minutes`
    from the step time (`step_seconds`, else measured); unchanged when there is no time budget. Under
    torchrun (`ctx`, from `distributed.init_distributed`) every rank takes rank 0's number of steps."""
    if not config.max_minutes:
        return config
    from lmforge.train.distributed import broadcast_int

    if step_seconds is None:
        step_seconds = measure_step_seconds(model, objective, config)
    steps = max(MIN_STEPS, int(config.max_minutes * 60 * TRAINING_SHARE / step_seconds))
    if ctx is not None:
        steps = broadcast_int(steps, ctx)
    warmup = min(config.warmup_steps, steps // 10)
    log(f"schedule: {steps:,} steps of {step_seconds * 1e3:.0f} ms fit {config.max_minutes:g} min")
    return dataclasses.replace(config, max_steps=steps, warmup_steps=warmup, schedule_follows_time=True)


def plan_training(
    model,
    objective,
    config: TrainConfig,
    *,
    fit_to_minutes: bool,
    log: Callable[[str], None] = print,
    ctx=None,
) -> TrainConfig:
    """The `TrainConfig` the loop runs: precision settled, and with `fit_to_minutes` (and max_minutes set)
    `max_steps` fitted so that the schedule's decay ends with the budget (the loop then follows the pace).
    Under torchrun (`ctx`) every rank takes rank 0's precision and number of steps."""
    config, step_seconds = settle_precision(model, objective, config, log, ctx=ctx)
    if not fit_to_minutes:
        return config
    return fit_steps_to_minutes(model, objective, config, log, ctx, step_seconds)


def explicit_steps_win(config, overrides: Sequence[str]):
    """(config, note): a `train.max_steps` given in `overrides` wins over the config's
    `fit_steps_to_minutes` (unless the overrides set that too); the note says so, or is None."""
    from lmforge.config import overridden_keys

    keys = overridden_keys(overrides)
    if not config.fit_steps_to_minutes or "train.max_steps" not in keys or "fit_steps_to_minutes" in keys:
        return config, None
    note = (
        f"train.max_steps={config.train.max_steps} given: the schedule is not fitted to train.max_minutes "
        "(fit_steps_to_minutes off; the time budget still stops the run)"
    )
    return dataclasses.replace(config, fit_steps_to_minutes=False), note


def _check_model_step(model, objective, config: TrainConfig, choice: PrecisionChoice):
    """Keep bf16 only if this model's step is faster under it too; returns (choice, chosen step seconds)."""
    fp32_step = measure_step_seconds(model, objective, config, "fp32")
    bf16_step = measure_step_seconds(model, objective, config, "bf16")
    matmuls = f"bf16 autocast matmuls are {choice.probe.speedup:.1f}x faster than fp32 on this CPU"
    steps = f"{bf16_step * 1e3:,.0f} ms vs {fp32_step * 1e3:,.0f} ms"
    if bf16_pays(fp32_step, bf16_step):
        reason = f"auto: bf16, since {matmuls} and this model's step is {fp32_step / bf16_step:.1f}x faster ({steps})"
        return dataclasses.replace(choice, reason=reason), bf16_step
    slower = (
        f"{bf16_step / fp32_step:.1f}x slower"
        if bf16_step > fp32_step
        else f"only {fp32_step / bf16_step:.2f}x faster"
    )
    reason = (
        f"auto: fp32, since this model's step is {slower} under bf16 autocast ({steps}), though {matmuls}"
    )
    return dataclasses.replace(choice, precision="fp32", reason=reason), fp32_step
