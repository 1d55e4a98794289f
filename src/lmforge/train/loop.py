"""The one training loop. Every objective — causal LM, masked LM, and later classification, seq2seq, QA —
runs through `train`; what differs between them is a small `Objective` object.

What this file implements:
  - `Objective`: the protocol an objective follows: build micro-batch `index` of this rank, turn a batch
    into a loss, sum evaluation quantities over a batch, and turn those sums into metrics;
  - `TrainConfig`: every setting of the loop, with why-comments (loadable from YAML by `lmforge.config`);
  - `train`: the loop, read top to bottom — AdamW with decay / no-decay groups, warmup + cosine schedule,
    gradient accumulation, clipping, autocast (bf16; fp16 with a GradScaler on CUDA), optional
    `torch.compile`, evaluation every N steps, atomic checkpoints (last K + best), exact resume (model,
    optimizer, schedule step, RNG states, data position), DDP / FSDP2 under torchrun, a progress bar with
    tokens/s, MFU and ETA, metrics.jsonl, TensorBoard and loss.png.

    objective = CLMObjective(TokenShards("shards", "train"), TokenShards("shards", "val"), block_size=256)
    result = train(model, objective, TrainConfig(max_steps=2000, lr=1e-3), "runs/gpt")
    result.metrics                         # {'val_loss': 1.62, 'val_perplexity': 5.05, 'val_bpb': 2.34}

Data position: micro-batch `index` of rank `r` is a pure function of (index, r), so the position is the
step count and resuming reproduces the exact batches. A run resumed from step N computes the same losses,
bit for bit on CPU, as one that never stopped.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from lmforge.config import to_dict
from lmforge.errors import ConfigError
from lmforge.train import distributed as distributed_
from lmforge.train.config import TrainConfig
from lmforge.train.logging import RunLogger, peak_flops
from lmforge.train.optim import LRSchedule, build_optimizer
from lmforge.train.precision import PRECISIONS, choose_precision, warn_once
from lmforge.train.state import (
    best_checkpoint,
    capture_rng,
    latest_checkpoint,
    load_checkpoint,
    load_checkpoint_metrics,
    restore_rng,
    save_checkpoint,
)


class Objective(Protocol):
    """What the loop needs from an objective (see `lmforge.data.clm.CLMObjective` for one)."""

    def train_batch(self, index: int, batch_size: int, rank: int, world_size: int) -> dict[str, torch.Tensor]:
        """Micro-batch number `index` (0, 1, 2, ...) of rank `rank`: a dict of CPU tensors.

        Must depend only on its arguments (not on call order), so resuming at `index` is exact; the
        "input_ids" entry's size counts as the tokens processed.
        """
        ...

    def eval_batches(
        self, num_batches: int | None, batch_size: int, rank: int, world_size: int
    ) -> Iterable[dict[str, torch.Tensor]]:
        """This rank's share of the first `num_batches` validation batches (all when None); same each time."""
        ...

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The scalar training loss of a batch (already on the device)."""
        ...

    def evaluate(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Sums over one validation batch (e.g. {"nll": 812.3, "tokens": 4096}); added over batches/ranks."""
        ...

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        """Totals -> reported metrics; the key "val_loss" picks the best checkpoint."""
        ...


@dataclass
class TrainResult:
    steps: int  # optimizer steps done in total (including before a resume)
    tokens: int  # tokens processed in this session, all ranks
    seconds: float  # wall time of this session
    stopped_by: str  # "steps", "time" or "stop_after"
    metrics: dict[str, float] = field(default_factory=dict)  # the last evaluation
    best_metrics: dict[str, float] = field(default_factory=dict)
    resumed_from: int = 0  # the step this session started from
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) at each log point
    out_dir: Path | None = None
    model: nn.Module | None = None  # the trained module, unwrapped (no DDP / compile wrappers)
    # under FSDP2 the module's parameters stay sharded over the ranks: its full weights, gathered onto
    # rank 0's CPU (other ranks: an empty dict), for whoever saves the model; None without FSDP
    full_state_dict: dict[str, torch.Tensor] | None = None
    is_main: bool = True  # rank 0 (or a single process): the one that writes the model directory


def train(
    model: nn.Module,
    objective: Objective,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    flops_per_token: float | None = None,
) -> TrainResult:
    """Train `model` on `objective` as `config` says; checkpoints, metrics and loss.png go to `out_dir`."""
    out_dir = Path(out_dir)
    ctx = distributed_.init_distributed(config.device)
    choice = choose_precision(config.precision, ctx.device)
    # every rank trains in rank 0's precision (each measured its own machine)
    precision = PRECISIONS[distributed_.broadcast_int(PRECISIONS.index(choice.precision), ctx)]
    _seed_everything(config.seed)
    model.to(ctx.device)
    wrapped = distributed_.wrap_model(model, ctx, config.parallel)
    forward_model = torch.compile(wrapped) if config.compile else wrapped
    optimizer = build_optimizer(
        model, lr=config.lr, weight_decay=config.weight_decay, betas=(config.beta1, config.beta2)
    )
    schedule = LRSchedule(config.warmup_steps, config.max_steps, config.schedule, config.min_lr_ratio)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    fsdp = ctx.enabled and config.parallel == "fsdp"

    checkpoints = out_dir / "checkpoints"
    step, best, spent = 0, {}, 0.0  # spent: training seconds of this run's earlier sessions
    if config.resume and (found := latest_checkpoint(checkpoints)) is not None:
        step, best, spent = _resume(found, model, optimizer, scaler, config, ctx, fsdp)

    peak = config.peak_tflops * 1e12 if config.peak_tflops else peak_flops(ctx.device)
    logger = RunLogger(
        out_dir,
        total_steps=config.max_steps,
        start_step=step,
        flops_per_token=flops_per_token,
        peak_flops_per_s=peak,
        progress=config.progress,
        tensorboard=config.tensorboard,
        enabled=ctx.is_main,
    )
    if config.precision == "auto":  # `plan_training` settles it before the loop in lmforge's recipes
        logger.message(f"precision: {choice.reason}")
    if choice.warning:
        warn_once(choice.warning, logger.message)
    if ctx.enabled:
        logger.message(
            f"{'FSDP2' if fsdp else 'DDP'} over {ctx.world_size} process(es), backend {ctx.backend}, "
            f"device {ctx.device}, precision {precision}"
        )
    autocast = autocast_for(precision, ctx.device)
    result = TrainResult(steps=step, tokens=0, seconds=0.0, stopped_by="steps", resumed_from=step)
    started = time.perf_counter()
    # max_minutes budgets the whole run: a resumed session gets what its earlier sessions left
    deadline = started + config.max_minutes * 60 - spent if config.max_minutes else math.inf
    window_tokens, window_started = 0, time.perf_counter()
    saved_at = evaluated_at = -1  # the last step that saved / evaluated
    model.train()

    horizon = config.max_steps  # the schedule's end; moves with the pace when schedule_follows_time
    pace = _Pace(config) if (config.schedule_follows_time and config.max_minutes) else None
    if step < horizon and deadline <= started:  # resumed with its time budget already spent
        logger.message(
            f"time budget of {config.max_minutes} min already spent ({spent / 60:.1f} min) at step {step}; "
            "raise train.max_minutes to continue"
        )
        result.metrics = _evaluate(forward_model, objective, config, ctx, autocast)
        result.stopped_by = "time"
        horizon = step
    while step < horizon:
        lr = schedule.apply(optimizer, step, config.lr)
        step_loss = torch.zeros((), device=ctx.device)
        for micro in range(config.grad_accum):
            batch = objective.train_batch(
                step * config.grad_accum + micro, config.batch_size, ctx.rank, ctx.world_size
            )
            batch = to_device(batch, ctx.device)
            last_micro = micro == config.grad_accum - 1
            # gradients are all-reduced once per step, on the last micro-batch only
            with _gradient_sync(wrapped, last_micro, ctx, fsdp), autocast:
                loss = objective.loss(forward_model, batch) / config.grad_accum
                (scaler.scale(loss) if scaler else loss).backward()
            step_loss += loss.detach()
            window_tokens += batch["input_ids"].numel() * ctx.world_size
            result.tokens += batch["input_ids"].numel() * ctx.world_size
        if scaler is not None:
            scaler.unscale_(optimizer)
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        logger.advance(step)

        if pace is not None and step % config.log_every == 0:
            fitted = distributed_.broadcast_int(
                pace.horizon(step, time.perf_counter(), deadline, horizon), ctx
            )
            if fitted != horizon:
                horizon = fitted
                schedule = dataclasses.replace(schedule, total_steps=horizon)
                logger.set_total(horizon)

        if step % config.log_every == 0 or step == horizon:
            loss_value = (
                float(distributed_.all_reduce_sums({"loss": float(step_loss)}, ctx)["loss"]) / ctx.world_size
            )
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"loss is {loss_value} at step {step}; lower the learning rate")
            elapsed = time.perf_counter() - window_started
            logger.train_step(step, loss=loss_value, lr=lr, tokens=window_tokens, seconds=elapsed)
            result.losses.append((step, loss_value))
            window_tokens, window_started = 0, time.perf_counter()

        out_of_time = distributed_.broadcast_flag(time.perf_counter() > deadline, ctx)
        paused = config.stop_after is not None and step >= config.stop_after
        finished = step >= horizon or out_of_time or paused
        if (config.eval_every and step % config.eval_every == 0) or finished:
            result.metrics = _evaluate(forward_model, objective, config, ctx, autocast)
            evaluated_at = step
            if result.metrics:  # the last one is the run's result, which the caller reports: not shown twice
                logger.eval(step, result.metrics, show=not finished)
                if not best or result.metrics.get("val_loss", math.inf) < best.get("val_loss", math.inf):
                    best = dict(result.metrics)
        periodic = config.save_every and step % config.save_every == 0
        if periodic or evaluated_at == step or finished:
            _save(
                checkpoints,
                step,
                model,
                optimizer,
                scaler,
                config,
                ctx,
                fsdp,
                result.metrics if evaluated_at == step else {},
                elapsed=spent + time.perf_counter() - started,
            )
            saved_at = step
        if out_of_time:
            result.stopped_by = "time"
            logger.message(f"time budget of {config.max_minutes} min reached at step {step}")
            break
        if paused:
            result.stopped_by = "stop_after"
            break
        if evaluated_at == step or saved_at == step:  # tokens/s counts training time only
            window_tokens, window_started = 0, time.perf_counter()

    result.steps = step
    result.seconds = time.perf_counter() - started
    result.best_metrics = best
    result.out_dir = out_dir
    result.model = distributed_.unwrap(model)
    result.is_main = ctx.is_main
    if fsdp:  # every rank takes part in the gathering
        result.full_state_dict = _state_dicts(model, None, fsdp)[0]
    logger.close()
    distributed_.barrier(ctx)
    return result


# --- the loop's helpers ------------------------------------------------------------------------------


class _Pace:
    """Where the schedule should end so that it ends with the time budget (`schedule_follows_time`).

    The pace is measured over the last `window` steps, long enough to include an evaluation (whose cost
    recurs), short enough to follow a machine whose other jobs come and go.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.window = max(
            config.eval_every + config.log_every if config.eval_every else 0, 5 * config.log_every
        )
        self.points: collections.deque[tuple[int, float]] = collections.deque()

    def horizon(self, step: int, now: float, deadline: float, current: int) -> int:
        self.points.append((step, now))
        while len(self.points) > 2 and self.points[1][0] <= step - self.window:
            self.points.popleft()
        first_step, first_time = self.points[0]
        if step - first_step < min(self.window, 20):
            return current  # too few steps measured yet
        seconds_per_step = (now - first_time) / (step - first_step)
        return step + max(1, int((deadline - now) / max(seconds_per_step, 1e-9)))


def autocast_for(precision: str, device: torch.device):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    if device.type == "cpu":
        return batch
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}


def _gradient_sync(wrapped: nn.Module, sync: bool, ctx, fsdp: bool):
    if not ctx.enabled or sync:
        if fsdp:
            wrapped.set_requires_gradient_sync(True)
        return contextlib.nullcontext()
    if fsdp:
        wrapped.set_requires_gradient_sync(False)
        return contextlib.nullcontext()
    return wrapped.no_sync()


@torch.no_grad()
def _evaluate(model, objective: Objective, config: TrainConfig, ctx, autocast) -> dict[str, float]:
    batch_size = config.eval_batch_size or config.batch_size
    batches = objective.eval_batches(config.eval_batches or None, batch_size, ctx.rank, ctx.world_size)
    sums: dict[str, float] = {}
    model.eval()
    if ctx.enabled:
        # every rank runs the same number of forwards (under FSDP each gathers parameters collectively) and
        # ends with the same keys to add up: a rank with fewer batches repeats one and counts it as zero
        batches = list(batches)
        most = _max_over_ranks(len(batches), ctx)
        filler = batches[-1] if batches else next(iter(objective.eval_batches(1, batch_size, 0, 1)), None)
        for i in range(most):
            batch = to_device(batches[i] if i < len(batches) else filler, ctx.device)
            with autocast:
                part = objective.evaluate(model, batch)
            weight = 1.0 if i < len(batches) else 0.0
            for key, value in part.items():
                sums[key] = sums.get(key, 0.0) + weight * value
    else:
        for batch in batches:
            with autocast:
                part = objective.evaluate(model, to_device(batch, ctx.device))
            for key, value in part.items():
                sums[key] = sums.get(key, 0.0) + value
    model.train()
    sums = distributed_.all_reduce_sums(sums, ctx)
    return objective.metrics(sums) if sums else {}


def _max_over_ranks(value: int, ctx) -> int:
    import torch.distributed as dist

    tensor = torch.tensor([value], device=ctx.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def _state_dicts(model: nn.Module, optimizer, fsdp: bool) -> tuple[dict, dict]:
    """Unwrapped model and optimizer state (full, on CPU; no optimizer: {}). Under FSDP every rank must
    call this, and rank 0 alone gets the tensors."""
    if fsdp:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        model_state = get_model_state_dict(model, options=options)
        if optimizer is None:
            return model_state, {}
        return model_state, get_optimizer_state_dict(model, optimizer, options=options)
    return distributed_.unwrap(model).state_dict(), optimizer.state_dict()


def _save(root, step, model, optimizer, scaler, config, ctx, fsdp, metrics, *, elapsed: float) -> None:
    model_state, optimizer_state = _state_dicts(model, optimizer, fsdp)
    if ctx.is_main:
        state = {
            "step": step,
            "model": model_state,
            "optimizer": optimizer_state,
            "schedule": {"step": step, "peak_lr": config.lr},
            "rng": capture_rng(),
            "data": {
                "next_micro_batch": step * config.grad_accum,
                "batch_size": config.batch_size,
                "grad_accum": config.grad_accum,
                "world_size": ctx.world_size,
            },
            "metrics": metrics,
            "config": to_dict(config),
            "elapsed_s": elapsed,  # training seconds over all sessions: what max_minutes counts
        }
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        save_checkpoint(root, step, state, keep_last=config.keep_last, metric=metrics.get("val_loss"))
    distributed_.barrier(ctx)


def _resume(
    path: Path, model, optimizer, scaler, config: TrainConfig, ctx, fsdp: bool
) -> tuple[int, dict, float]:
    """Load the checkpoint at `path`; returns (step, best metrics, training seconds spent before)."""
    state = load_checkpoint(path)
    data = state["data"]
    saved = data["batch_size"] * data["grad_accum"] * data["world_size"]
    now = config.batch_size * config.grad_accum * ctx.world_size
    if (data["batch_size"] * data["world_size"], data["grad_accum"]) != (
        config.batch_size * ctx.world_size,
        config.grad_accum,
    ):
        raise ConfigError(
            f"{path}: saved with a global batch of {data['batch_size']} x {data['grad_accum']} x {data['world_size']} "
            f"= {saved} sequences, now {now}; resume with the same batch_size x processes and grad_accum, "
            "or start afresh (--train.resume=false or a new output directory)"
        )
    if fsdp:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True)
        set_model_state_dict(model, state["model"], options=options)
        set_optimizer_state_dict(model, optimizer, state["optimizer"], options=options)
    else:
        distributed_.unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    restore_rng(state["rng"])
    best_saved = best_checkpoint(path.parent)
    best = load_checkpoint_metrics(best_saved) if best_saved is not None else {}
    return int(state["step"]), best, float(state.get("elapsed_s", 0.0))  # 0: saved before it was recorded
