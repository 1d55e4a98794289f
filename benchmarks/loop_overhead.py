"""What the training loop costs on top of the bare step (issue 5: within 10%).

The same model, batch and optimizer, two ways, interleaved, median of REPEATS runs each:
  - bare: a list of ready batches; forward, loss, backward, AdamW step, zero_grad — nothing else;
  - loop: `lmforge.train.loop.train` on token shards of tinyshakespeare: sampling from the memory map,
    the schedule, clipping, logging (metrics.jsonl every 10 steps), the progress bar. Timed from outside,
    call to return, for a short and a long run: their difference is the steady per-step cost (what
    throughput means for a real run), and the short run minus its steps is the fixed cost of a run
    (set-up, the end-of-run evaluation, checkpoint and loss.png), reported beside it.

    python benchmarks/loop_overhead.py            # writes its section of benchmarks/RESULTS.md
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from lmforge.data.clm import CLMObjective
from lmforge.data.shards import ByteEncoder, TokenShards, prepare_shards
from lmforge.model.rnn import LSTMConfig, LSTMLanguageModel
from lmforge.train.loop import TrainConfig, train
from lmforge.train.optim import build_optimizer

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LMFORGE_SHARED_DATA", ROOT.parent / "shared" / "data"))
REPEATS = 10
LOAD_AT_START = os.getloadavg()[0]
# One thread: on a machine shared with other jobs, OpenMP threads that wait on each other make the
# timings swing far more than the loop costs.
THREADS = int(os.environ.get("LMFORGE_BENCH_THREADS", "1"))


@dataclass
class Setup:
    name: str
    make_model: Callable[[], torch.nn.Module]
    batch: int
    block: int
    steps: int  # bare steps per run, and the extra steps of the long loop run
    short: int  # steps of the short loop run


def transformer_benchmark_gpt() -> torch.nn.Module:
    """The decoder of the transformer issue's step benchmark (benchmarks/model.py), dropout 0."""
    from lmforge.model import build_model, preset

    return build_model(
        preset(
            "gpt-tiny", vocab_size=8192, d_model=384, n_layers=6, n_heads=6, d_ff=1536, max_positions=256,
            dropout=0.0,
        )
    )  # fmt: skip


SETUPS = [
    Setup("GPT 6x384, ctx 256, vocab 8192 (the transformer step benchmark)", transformer_benchmark_gpt,
          batch=8, block=256, steps=8, short=2),
    Setup("LSTM 2x128 (0.3M params)",
          lambda: LSTMLanguageModel(LSTMConfig(vocab_size=257, embed_dim=128, hidden_size=128)),
          batch=16, block=64, steps=40, short=5),
    Setup("LSTM 1x32 (worst case: tiny step)",
          lambda: LSTMLanguageModel(LSTMConfig(vocab_size=257, embed_dim=32, hidden_size=32, num_layers=1)),
          batch=16, block=64, steps=40, short=5),
]  # fmt: skip


def bare_run(setup: Setup, objective) -> tuple[float, float]:
    """(wall, CPU) seconds for `setup.steps` steps with the batches already in memory."""
    torch.manual_seed(0)
    model = setup.make_model()
    optimizer = build_optimizer(model, lr=1e-3)
    batches = [objective.train_batch(i, setup.batch) for i in range(setup.steps)]
    started, cpu_started = time.perf_counter(), time.process_time()
    for batch in batches:
        loss = objective.loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started, time.process_time() - cpu_started


def loop_run(setup: Setup, objective, out: Path, steps: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = setup.make_model()
    config = TrainConfig(
        max_steps=steps,
        batch_size=setup.batch,
        lr=1e-3,
        warmup_steps=5,
        eval_every=0,
        eval_batches=1,
        log_every=10,
        progress=True,
        tensorboard=False,
        resume=False,
        keep_last=1,
        precision="fp32",
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    train(model, objective, config, out)
    return time.perf_counter() - started, time.process_time() - cpu_started


def main() -> int:
    torch.set_num_threads(THREADS)
    source = DATA / "tinyshakespeare" / "input.txt"
    if not source.is_file():
        print(f"needs {source}", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="lmforge-bench-"))
    prepare_shards([source], work / "shards", ByteEncoder())
    rows = []
    devnull = open(os.devnull, "w")  # the progress bar and eval lines run, unseen
    only = sys.argv[1:]  # optional: names (prefixes) of the setups to run
    for setup in SETUPS:
        if only and not any(setup.name.startswith(prefix) for prefix in only):
            continue
        objective = CLMObjective(
            TokenShards(work / "shards", "train"), TokenShards(work / "shards", "val"), block_size=setup.block
        )
        bare_run(setup, objective)  # warm-up (allocator, kernels)
        times: dict[str, list[float]] = {"bare": [], "short": [], "long": []}
        for repeat in range(REPEATS):
            order = ["bare", "short", "long"] if repeat % 2 == 0 else ["long", "short", "bare"]
            for kind in order:
                if kind == "bare":
                    times["bare"].append(bare_run(setup, objective))
                    continue
                streams = sys.stdout, sys.stderr
                sys.stdout = sys.stderr = devnull
                try:
                    steps = setup.short if kind == "short" else setup.short + setup.steps
                    times[kind].append(loop_run(setup, objective, work / f"{kind}-{repeat}", steps))
                finally:
                    sys.stdout, sys.stderr = streams
        result = [setup]
        for clock in (0, 1):  # wall time, then CPU time of this process
            bare, short, long = (
                statistics.median(t[clock] for t in times[k]) for k in ("bare", "short", "long")
            )
            loop_per_step = (long - short) / setup.steps
            fixed = short - setup.short * loop_per_step
            tokens = setup.batch * setup.block
            bare_rate, loop_rate = tokens * setup.steps / bare, tokens / loop_per_step
            result += [bare_rate, loop_rate, loop_rate / bare_rate, fixed]
        rows.append(tuple(result))
        print(
            f"{setup.name}: wall: bare {result[1]:,.0f} tok/s, loop {result[2]:,.0f} tok/s, "
            f"ratio {result[3]:.3f} | CPU: bare {result[5]:,.0f}, loop {result[6]:,.0f}, "
            f"ratio {result[7]:.3f}, fixed {result[8]:.2f}s"
        )
    write_results(rows)
    return 0


def write_results(rows) -> None:
    path = ROOT / "benchmarks" / "RESULTS.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    start, end = "<!-- loop_overhead:start -->", "<!-- loop_overhead:end -->"
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores ({torch.get_num_threads()} torch threads), "
        f"Python {platform.python_version()}, torch {torch.__version__}; load average {LOAD_AT_START:.1f} "
        "when the run started (other jobs on the machine make absolute rates noisy — read the ratio)"
    )
    lines = [
        start,
        "## Training loop overhead (`benchmarks/loop_overhead.py`)",
        "",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · {machine}.",
        f"Byte-level tinyshakespeare shards, fp32, {THREADS} torch thread(s), "
        f"median of {REPEATS} interleaved runs each. *bare* = S steps of forward/backward/AdamW on "
        "batches already in memory; *loop* = `lmforge.train.loop.train` (memmap sampling, schedule, "
        "clipping, logging, progress bar), steady rate = (time of an (s + S)-step run - time of an s-step "
        "run) / S; *fixed* = what a run costs besides its steps (set-up, end-of-run evaluation of 1 batch, "
        "checkpoint, loss.png).",
        "",
        "Two clocks: wall time, and this process's CPU time (`time.process_time`, one thread), which the "
        "other jobs on the machine disturb far less — on a shared machine read the CPU-time ratio.",
        "",
        "| model | batch x block, S / s | clock | bare step (tok/s) | real loop (tok/s) | loop / bare "
        "| fixed cost per run |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for setup, *values in rows:
        shape = f"{setup.batch} x {setup.block}, {setup.steps} / {setup.short}"
        for clock, (b, l, r, f) in zip(("wall", "CPU"), (values[:4], values[4:]), strict=True):
            lines.append(f"| {setup.name} | {shape} | {clock} | {b:,.0f} | {l:,.0f} | {r:.3f} | {f:.2f} s |")
    lines.append(end)
    block = "\n".join(lines)
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
