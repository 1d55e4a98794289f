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
STEPS = 40  # bare steps per run, and the extra steps of the long loop run
SHORT = 5  # steps of the short loop run
BATCH, BLOCK = 16, 64
# One thread: on a machine shared with other jobs, OpenMP threads that wait on each other make the
# timings swing far more than the loop costs.
THREADS = int(os.environ.get("LMFORGE_BENCH_THREADS", "1"))
MODELS = {
    "LSTM 2x128 (0.3M params)": lambda: LSTMLanguageModel(
        LSTMConfig(vocab_size=257, embed_dim=128, hidden_size=128)
    ),
    "LSTM 1x32 (worst case: tiny step)": lambda: LSTMLanguageModel(
        LSTMConfig(vocab_size=257, embed_dim=32, hidden_size=32, num_layers=1)
    ),
}


def bare_run(make_model, objective) -> tuple[float, float]:
    """(wall, CPU) seconds for STEPS steps with the batches already in memory."""
    torch.manual_seed(0)
    model = make_model()
    optimizer = build_optimizer(model, lr=1e-3)
    batches = [objective.train_batch(i, BATCH) for i in range(STEPS)]
    started, cpu_started = time.perf_counter(), time.process_time()
    for batch in batches:
        loss = objective.loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started, time.process_time() - cpu_started


def loop_run(make_model, objective, out: Path, steps: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = make_model()
    config = TrainConfig(
        max_steps=steps,
        batch_size=BATCH,
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
    objective = CLMObjective(
        TokenShards(work / "shards", "train"), TokenShards(work / "shards", "val"), block_size=BLOCK
    )
    tokens = STEPS * BATCH * BLOCK
    rows = []
    devnull = open(os.devnull, "w")  # the progress bar and eval lines run, unseen
    for name, make_model in MODELS.items():
        bare_run(make_model, objective)  # warm-up (allocator, kernels)
        times: dict[str, list[float]] = {"bare": [], "short": [], "long": []}
        for repeat in range(REPEATS):
            order = ["bare", "short", "long"] if repeat % 2 == 0 else ["long", "short", "bare"]
            for kind in order:
                if kind == "bare":
                    times["bare"].append(bare_run(make_model, objective))
                    continue
                streams = sys.stdout, sys.stderr
                sys.stdout = sys.stderr = devnull
                try:
                    steps = SHORT if kind == "short" else SHORT + STEPS
                    times[kind].append(loop_run(make_model, objective, work / f"{kind}-{repeat}", steps))
                finally:
                    sys.stdout, sys.stderr = streams
        result = [name]
        for clock in (0, 1):  # wall time, then CPU time of this process
            bare, short, long = (
                statistics.median(t[clock] for t in times[k]) for k in ("bare", "short", "long")
            )
            loop_per_step = (long - short) / STEPS
            fixed = short - SHORT * loop_per_step
            bare_rate, loop_rate = tokens / bare, BATCH * BLOCK / loop_per_step
            result += [bare_rate, loop_rate, loop_rate / bare_rate, fixed]
        rows.append(tuple(result))
        print(
            f"{name}: wall: bare {result[1]:,.0f} tok/s, loop {result[2]:,.0f} tok/s, ratio {result[3]:.3f} | "
            f"CPU: bare {result[5]:,.0f}, loop {result[6]:,.0f}, ratio {result[7]:.3f}, fixed {result[8]:.2f}s"
        )
    write_results(rows)
    return 0


def write_results(rows) -> None:
    path = ROOT / "benchmarks" / "RESULTS.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    start, end = "<!-- loop_overhead:start -->", "<!-- loop_overhead:end -->"
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores ({torch.get_num_threads()} torch threads), "
        f"Python {platform.python_version()}, torch {torch.__version__}; shared with 4 other engineers' jobs "
        "at the time, so absolute rates are noisy — read the ratio"
    )
    lines = [
        start,
        "## Training loop overhead (`benchmarks/loop_overhead.py`)",
        "",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · {machine}.",
        f"Byte-level tinyshakespeare shards, batch {BATCH} x {BLOCK} tokens, fp32, {THREADS} torch thread(s), "
        f"median of {REPEATS} interleaved runs each. *bare* = {STEPS} steps of forward/backward/AdamW on "
        "batches already in memory; *loop* = `lmforge.train.loop.train` (memmap sampling, schedule, "
        "clipping, logging, progress bar), steady rate = (time of a "
        f"{SHORT + STEPS}-step run - time of a {SHORT}-step run) / {STEPS}; *fixed* = what a run costs "
        "besides its steps (set-up, end-of-run evaluation of 1 batch, checkpoint, loss.png).",
        "",
        "Two clocks: wall time, and this process's CPU time (`time.process_time`, one thread), which the "
        "other jobs on the machine disturb far less — on a shared machine read the CPU-time ratio.",
        "",
        "| model | clock | bare step (tok/s) | real loop (tok/s) | loop / bare | fixed cost per run |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, *values in rows:
        for clock, (b, l, r, f) in zip(("wall", "CPU"), (values[:4], values[4:]), strict=True):
            lines.append(f"| {name} | {clock} | {b:,.0f} | {l:,.0f} | {r:.3f} | {f:.2f} s |")
    lines.append(end)
    block = "\n".join(lines)
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
