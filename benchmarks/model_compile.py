"""`torch.compile` on the transformer benchmark's training step, reported apart from the plain-loop figures.

    python benchmarks/model_compile.py            # ~5 minutes on 2 cores; writes its RESULTS.md section
    python benchmarks/model_compile.py --quick    # a few steps, prints only

The GPT of `benchmarks/model.py` (6 layers, d 384, 6 heads, context 256, vocab 8192, batch 8; HF's initial
weights converted), trained by the same plain loop (AdamW, `F.cross_entropy` on the fp32 logits): lmforge
eager and `torch.compile(model)` (inductor, default mode), fp32 and bf16 autocast, and HF fp32 eager, all
stepping on the same batches in turn. Reported: the first compiled step (the compilation, paid once per
process and shape), the median of the steps after it, and the first-step losses (compiled = eager within
1e-4). The training loop's option is `train.compile: true` (docs/pretraining.md).
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
# benchmarks/tokenizers.py would shadow HF's `tokenizers`: this folder goes last, after the installed packages
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
sys.path.insert(0, str(HERE.parent / "src"))

import transformers  # noqa: E402
from common import write_section  # noqa: E402

from lmforge.model import load  # noqa: E402
from lmforge.model.convert import from_hf  # noqa: E402

transformers.logging.set_verbosity_error()
SECTION = "## torch.compile training step (`benchmarks/model_compile.py`)"


def _model_benchmark():
    """benchmarks/model.py's helpers (batches, the timed step, the machine line), imported by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("model_benchmark", HERE / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(steps: int) -> dict:
    bench = _model_benchmark()
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        torch.manual_seed(0)
        config = transformers.GPT2Config(
            n_layer=bench.LAYERS, n_embd=bench.WIDTH, n_head=bench.HEADS, n_positions=bench.CONTEXT,
            vocab_size=bench.VOCAB, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        )  # fmt: skip
        hf = transformers.GPT2LMHeadModel(config).train()
        hf.save_pretrained(workdir / "hf")
        from_hf(workdir / "hf", workdir / "lm")
        # name: (module the optimizer owns, module that is called, lmforge?, bf16?)
        runs = {"hf fp32": (hf, hf, False, False)}
        for name, bf16 in (("fp32", False), ("bf16", True)):
            eager, to_compile = load(workdir / "lm").train(), load(workdir / "lm").train()
            runs[f"lmforge {name}"] = (eager, eager, True, bf16)
            runs[f"lmforge {name} compiled"] = (to_compile, torch.compile(to_compile), True, bf16)
        optimizers = {
            name: torch.optim.AdamW(owner.parameters(), lr=1e-3) for name, (owner, *_) in runs.items()
        }
        batches = bench.decoder_batches(steps)
        times: dict[str, list[float]] = {name: [] for name in runs}
        first: dict[str, float] = {}
        names = list(runs)
        for step in range(steps):
            x, y = batches[step]
            order = names[step % len(names) :] + names[: step % len(names)]  # rotate who goes first
            for name in order:
                _, module, lmforge, bf16 = runs[name]
                seconds, loss = bench.timed_step(module, optimizers[name], x, y, lmforge=lmforge, bf16=bf16)
                times[name].append(seconds)
                first.setdefault(name, loss)
            print(
                f"  step {step + 1}/{steps}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
                flush=True,
            )
    tokens = bench.BATCH * bench.CONTEXT
    # the first step of each compiled model is its compilation; one more step settles the eager ones too
    median = {name: statistics.median(values[2:]) for name, values in times.items()}
    return {
        "machine": bench.machine(),
        "tokens_per_s": {name: tokens / seconds for name, seconds in median.items()},
        "median_s": median,
        "first_step_s": {name: values[0] for name, values in times.items()},
        "first_loss": first,
        "steps": steps - 2,
    }


def table(results: dict) -> str:
    speed = results["tokens_per_s"]
    hf = speed["hf fp32"]
    lines = [
        SECTION,
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC · {results['machine']}",
        "",
        "The GPT of the section above (same config, HF's initial weights), the same plain AdamW loop; "
        f"medians of {results['steps']} steps after the first two, every model stepping on the same batches in "
        "turn. `torch.compile(model)`: inductor, default mode.",
        "",
        "| model | first step (s) | median step (s) | tokens/s | × HF fp32 | compiled ÷ eager | first-step loss |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in results["tokens_per_s"]:
        eager = name.replace(" compiled", "")
        gain = f"{speed[name] / speed[eager]:.2f}×" if name.endswith("compiled") else ""
        lines.append(
            f"| {name} | {results['first_step_s'][name]:.1f} | {results['median_s'][name]:.3f} | "
            f"{speed[name]:,.0f} | {speed[name] / hf:.2f} | {gain} | {results['first_loss'][name]:.6f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps; print, do not write RESULTS.md")
    parser.add_argument("--steps", type=int, default=14, help="steps per model, the first two not counted")
    parser.add_argument(
        "--note", default="", help="a paragraph on the machine's load, written after the table"
    )
    args = parser.parse_args()
    results = run(4 if args.quick else args.steps)
    text = table(results)
    if args.note:
        text += "\n" + args.note.strip() + "\n"
    print(text)
    if not args.quick:
        write_section(SECTION, text, before="## metrics")  # after the plain-loop section
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
