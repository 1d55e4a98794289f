"""Run by tests/test_train_distributed.py under torchrun (or directly, as one process).

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/dist_worker.py \
        SHARDS OUT BATCH ddp fsdp plan [-- LMFORGE ARGS...]

For each mode, trains the tiny n-gram MLP for a few steps through the real loop; rank 0 writes
OUT/MODE/result.json with the logged losses, the final validation metrics and the checkpoint's names.
Mode `plan` instead has every rank plan a run with settings of its own (`plan_training`) and write
OUT/plan/rankR.json: each must take rank 0's precision and step count.
The arguments after `--`, if any, then run as an `lmforge` command line in the same process group, as
`torchrun -m lmforge ARGS...` would; each rank's standard output goes to OUT/lmforge-rankN.out.
One launch runs everything: starting torchrun and importing torch twice costs more than the training.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import torch

from lmforge.data.clm import CLMObjective
from lmforge.data.shards import TokenShards
from lmforge.train.distributed import init_distributed, shutdown
from lmforge.train.loop import TrainConfig, train
from lmforge.train.state import latest_checkpoint, load_checkpoint
from train_helpers import NGramMLP

STEPS = 6


def main() -> None:
    args = sys.argv[1:]
    command = args[args.index("--") + 1 :] if "--" in args else []
    args = args[: args.index("--")] if "--" in args else args
    shards, out, batch_size = Path(args[0]), Path(args[1]), int(args[2])
    for mode in args[3:]:
        if mode == "plan":
            plan(shards, out / mode)
        else:
            run(shards, out / mode, mode, batch_size)
    if command:
        from lmforge.cli import main as lmforge

        with open(out / f"lmforge-rank{os.environ.get('RANK', '0')}.out", "w") as log:
            with contextlib.redirect_stdout(log):
                code = lmforge(command)
        if code:
            sys.exit(code)
    shutdown(init_distributed("cpu"))


def run(shards: Path, out: Path, mode: str, batch_size: int) -> dict:
    torch.manual_seed(1)  # every rank builds the same initial model (FSDP2 does not broadcast it)
    model = NGramMLP(dropout=0.0)
    objective = CLMObjective(TokenShards(shards, "train"), TokenShards(shards, "val"), block_size=32, seed=3)
    config = TrainConfig(
        max_steps=STEPS,
        batch_size=batch_size,
        grad_accum=2,
        lr=3e-3,
        warmup_steps=2,
        eval_every=0,
        eval_batches=5,
        eval_batch_size=4,
        log_every=1,
        parallel=mode,
        progress=False,
        tensorboard=False,
        device="cpu",
        precision="fp32",  # the ranks compare with one process to 1e-4
    )
    result = train(model, objective, config, out)
    ctx = init_distributed("cpu")
    if ctx.is_main:
        state = load_checkpoint(latest_checkpoint(out / "checkpoints"))
        record = {
            "world_size": ctx.world_size,
            "backend": ctx.backend,  # None when the process group was not joined
            "losses": result.losses,
            "metrics": result.metrics,
            "parameter_names": sorted(state["model"]),
            "optimizer_state_entries": len(state["optimizer"]["state"]),
        }
        (out / "result.json").write_text(json.dumps(record))
        return record
    return {}


def plan(shards: Path, out: Path) -> None:
    from lmforge.train.budget import plan_training

    ctx = init_distributed("cpu")
    model = NGramMLP(dropout=0.0)
    objective = CLMObjective(TokenShards(shards, "train"), TokenShards(shards, "val"), block_size=32, seed=3)
    # rank 1 asks for another precision and twice the minutes; it must follow rank 0
    config = TrainConfig(
        max_minutes=1.0 + ctx.rank,
        batch_size=2,
        precision="bf16" if ctx.rank else "fp32",
        progress=False,
        tensorboard=False,
        device="cpu",
    )
    planned = plan_training(model, objective, config, fit_to_minutes=True, log=lambda line: None, ctx=ctx)
    out.mkdir(parents=True, exist_ok=True)
    record = {"max_steps": planned.max_steps, "precision": planned.precision, "world_size": ctx.world_size}
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
