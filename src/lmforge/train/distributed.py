"""Several processes, one model: DDP and FSDP under `torchrun`.

What this file implements:
  - `Distributed`: this process's rank, the world size and its device, read from the variables torchrun
    sets (RANK, WORLD_SIZE, LOCAL_RANK); a single process when they are absent;
  - `init_distributed`: joins the process group — gloo on CPU, nccl on CUDA (one GPU per local rank);
  - `wrap_model`: DDP (every rank holds the whole model; gradients are averaged by all-reduce) or FSDP2
    (`fully_shard`: parameters, gradients and optimizer state are split over the ranks and gathered layer
    by layer — for models that outgrow one GPU);
  - `all_reduce_sums`: adds a dict of floats over the ranks (evaluation totals);
  - `main_process_first`: rank 0 runs a block (preparing files) before the other ranks do.

FSDP on CPU: PyTorch 2.13's FSDP2 (`torch.distributed.fsdp.fully_shard`) runs on CPU with gloo and is
tested here with 2 ranks; the older `FullyShardedDataParallel` wrapper refuses to run without an
accelerator ("FSDP needs a non-CPU accelerator device"), so lmforge uses FSDP2 only.

    torchrun --nproc_per_node 2 -m lmforge pretrain ...   # each rank runs the same loop on its share of data
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    launched: bool = False  # started by torchrun: the process group is joined even with one process

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether this process is in a process group (and its model wrapped in DDP / FSDP2)."""
        return self.world_size > 1 or self.launched

    @property
    def backend(self) -> str | None:
        return dist.get_backend() if self.enabled and dist.is_initialized() else None


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """ "auto" is CUDA (this rank's GPU) when available, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(name)


def init_distributed(device: str = "auto") -> Distributed:
    """Join torchrun's process group if this process was started by torchrun; else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = pick_device(device, local_rank)
    # torchrun sets these; a one-process torchrun run still joins the group, so that the DDP / FSDP2 path
    # and its backend (nccl on a single GPU) run exactly as they will on more processes
    launched = "TORCHELASTIC_RUN_ID" in os.environ and "MASTER_ADDR" in os.environ
    if (world_size > 1 or launched) and not dist.is_initialized():
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return Distributed(
        rank=rank, world_size=world_size, local_rank=local_rank, device=chosen, launched=launched
    )


def wrap_model(model: nn.Module, ctx: Distributed, mode: str = "ddp") -> nn.Module:
    """DDP or FSDP2 around `model` (already on ctx.device); the model itself when running alone."""
    if not ctx.enabled:
        return model
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)
    if mode == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(ctx.device.type, (ctx.world_size,))
        # shard each block on its own (gathered just before use, freed after), then the rest of the model
        for module in _blocks(model):
            fully_shard(module, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model
    raise ValueError(f"unknown parallel mode {mode!r}; use 'ddp' or 'fsdp'")


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DDP (`.module`) and torch.compile (`._orig_mod`) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def all_reduce_sums(sums: dict[str, float], ctx: Distributed) -> dict[str, float]:
    if not ctx.enabled or not sums:
        return sums
    keys = sorted(sums)
    values = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(values)
    return dict(zip(keys, values.tolist(), strict=True))


def broadcast_flag(flag: bool, ctx: Distributed) -> bool:
    """Rank 0's decision (e.g. "time is up"), so every rank stops at the same step."""
    if not ctx.enabled:
        return flag
    value = torch.tensor([1 if flag else 0], device=ctx.device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def broadcast_int(value: int, ctx: Distributed) -> int:
    """Rank 0's number (e.g. the time-fitted schedule's end), so every rank runs the same steps."""
    if not ctx.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=ctx.device)
    dist.broadcast(tensor, src=0)
    return int(tensor.item())


def barrier(ctx: Distributed) -> None:
    if ctx.enabled:
        dist.barrier()


@contextlib.contextmanager
def main_process_first(ctx: Distributed):
    """Rank 0 runs the block while the other ranks wait; then they run it, and find what rank 0 wrote
    (a tokenizer, shards: written by every rank at once, they would race)."""
    if not ctx.is_main:
        barrier(ctx)
    yield
    if ctx.is_main:
        barrier(ctx)


def shutdown(ctx: Distributed) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def _blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks of a model: the items of its largest nn.ModuleList (transformer layers)."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m)]
    if not lists:
        return []
    return list(max(lists, key=lambda m: sum(p.numel() for p in m.parameters())))
