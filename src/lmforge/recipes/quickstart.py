"""`lmforge quickstart`: the whole course on the embedded default corpus, the Python standard library.

Stages, each printed as it runs:
  1. environment — Python, PyTorch, threads, accelerator;
  2. corpus — the standard library's own ``.py`` files, found through `sysconfig`;
  3. tokenizers — char, word, BPE and WordPiece trained on a sample of that corpus, compared on held-out
     lines: the smaller the token, the longer the sequence;
  4. pre-training — a byte-level BPE tokenizer and a small GPT trained on `--corpus-mb` of the corpus for
     `--minutes`, with a progress bar; validation perplexity and bits per byte;
  5. use — code completions from the trained model.
Everything lands in the run directory (`--out`, default runs/quickstart): the model directory,
metrics.jsonl, loss.png, samples.txt and a README.md report.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from lmforge.recipes import Command, positive_number


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--minutes",
        type=positive_number,
        default=5.0,
        help="time budget for the training stages (default: 5)",
    )
    parser.add_argument("--out", default="runs/quickstart", help="run directory (default: runs/quickstart)")
    parser.add_argument(
        "--skip-tokenizers", action="store_true", help="skip the tokenizer comparison (stage 3)"
    )
    parser.add_argument(
        "--corpus-mb",
        type=positive_number,
        default=4.0,
        help="megabytes of standard-library source to pre-train on (default: 4; the tokenizer learns "
        "from up to 2 of them)",
    )


def environment_report() -> dict[str, str]:
    import torch

    if torch.cuda.is_available():
        accelerator = f"CUDA: {torch.cuda.get_device_name(0)}"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        accelerator = "Apple MPS"
    else:
        accelerator = "none (CPU)"
    return {
        "python": f"{platform.python_version()} ({sys.executable})",
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "accelerator": accelerator,
    }


def corpus_report() -> dict[str, str]:
    import sysconfig

    from lmforge.text import stdlib_files

    files = stdlib_files()
    size = sum(p.stat().st_size for p in files)
    return {
        "source": f"Python standard library, {sysconfig.get_paths()['stdlib']}",
        "files": f"{len(files):,} .py files (tests left out)",
        "size": f"{size / 1e6:.1f} MB",
    }


def corpus_sample(max_bytes: int = 2_000_000) -> list:
    """Every n-th standard-library file, so the sample spans the library, up to about `max_bytes`."""
    from lmforge.text import stdlib_files

    files = stdlib_files()
    total = sum(p.stat().st_size for p in files)
    step = max(1, round(total / max_bytes))
    sample, size = [], 0
    for path in files[::step]:
        if size >= max_bytes:
            break
        sample.append(path)
        size += path.stat().st_size
    return sample


def tokenizer_stage(vocab_size: int = 4096, max_bytes: int = 2_000_000) -> str:
    """Train the four kinds on a sample of the stdlib (lines as documents, every 10th held out)."""
    from lmforge.text import Corpus
    from lmforge.tokenizers.compare import compare_kinds, format_table

    corpus = Corpus(corpus_sample(max_bytes))
    documents = list(corpus)
    held_out = documents[::10]

    def train_documents():
        return (doc for i, doc in enumerate(documents) if i % 10)

    print(
        f"  {len(corpus.files)} files, {corpus.num_bytes / 1e6:.1f} MB, {len(documents):,} lines "
        f"({len(held_out):,} held out); vocabulary {vocab_size:,} for each kind\n"
    )
    rows = compare_kinds(train_documents, held_out, vocab_size)
    return format_table(rows)


PROMPTS = ["def ", "import os\n", "class Config:\n    def __init__(self", "    for i in range("]


def pretrain_stage(out, minutes: float, corpus_bytes: int = 4_000_000):
    """A small GPT on about `corpus_bytes` of the standard library's source, its schedule fitted to
    `minutes`."""
    from lmforge.pretrain import DataConfig, ModelSpec, PretrainConfig, TokenizerConfig, pretrain
    from lmforge.train.config import TrainConfig

    files = corpus_sample(corpus_bytes)
    config = PretrainConfig(
        objective="clm",
        out=str(out),
        block_size=128,
        fit_steps_to_minutes=True,
        data=DataConfig(files=[str(p) for p in files], val_fraction=0.05, unit="file"),
        tokenizer=TokenizerConfig(kind="bpe", vocab_size=2048, sample_bytes=2_000_000),
        model=ModelSpec(
            preset="gpt-tiny",
            changes={"d_model": 192, "n_layers": 4, "n_heads": 4, "d_ff": 768, "max_positions": 128},
        ),
        train=TrainConfig(
            max_minutes=minutes,
            batch_size=16,
            lr=2e-3,
            warmup_steps=50,
            eval_every=0,
            eval_batches=20,
            log_every=5,
            tensorboard=False,
        ),
    )
    return pretrain(config, log=lambda text: print("  " + text))


def completions_stage(model_dir, prompts=PROMPTS) -> list[tuple[str, str]]:
    from lmforge.pipelines import TextGeneration

    generate = TextGeneration.load(model_dir)
    results = generate(list(prompts), max_new_tokens=48, temperature=0.0, repetition_penalty=1.1)
    return [(prompt, r.text) for prompt, r in zip(prompts, results, strict=True)]


def write_report(out, table: str | None, result, samples: list[tuple[str, str]]) -> None:
    from pathlib import Path

    out = Path(out)
    lines = [
        "# lmforge quickstart report",
        "",
        "The course end to end on the Python standard library's source.",
        "",
    ]
    if table:
        lines += ["## Tokenizers", "", "```", table.rstrip(), "```", ""]
    lines += [
        "## Pre-training",
        "",
        f"- model: {result.num_parameters / 1e6:.2f}M parameters, {result.steps:,} steps, "
        f"{result.tokens:,} tokens in {result.seconds / 60:.1f} min ({result.tokens_per_second:,.0f} tokens/s)",
        "- validation: " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()),
        "- files: `model/` (the model directory), `metrics.jsonl`, `loss.png`, `samples.txt`",
        "",
        "![loss](loss.png)",
        "",
        "## Completions (greedy)",
        "",
    ]
    for prompt, text in samples:
        lines += ["```python", prompt + text, "```", ""]
    (out / "README.md").write_text("\n".join(lines))
    (out / "samples.txt").write_text("\n\n".join(p + t for p, t in samples) + "\n")


def print_section(title: str, rows: dict[str, str]) -> None:
    print(f"\n== {title}")
    width = max(len(k) for k in rows)
    for key, value in rows.items():
        print(f"  {key:<{width}}  {value}")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    print("lmforge quickstart: the life of a language model on the Python standard library's source")
    print_section("1. environment", environment_report())
    print_section("2. corpus", corpus_report())
    table = None
    if not args.skip_tokenizers:
        print("\n== 3. tokenizers: the smaller the token, the longer the sequence")
        table = tokenizer_stage()
        for line in table.splitlines():
            print("  " + line)
    print(f"\n== 4. pre-training a small GPT on the corpus ({args.minutes:g} min)")
    result = pretrain_stage(args.out, args.minutes, round(args.corpus_mb * 1e6))
    metrics = result.metrics
    print(
        f"  validation: loss {metrics.get('val_loss', float('nan')):.3f}, "
        f"perplexity {metrics.get('val_perplexity', float('nan')):.2f}, "
        f"bits per byte {metrics.get('val_bpb', float('nan')):.3f} "
        f"({result.steps:,} steps, {result.tokens_per_second:,.0f} tokens/s)"
    )
    print("\n== 5. use: code completions (greedy)")
    samples = completions_stage(result.model_dir)
    for prompt, text in samples:
        print("  ---")
        for line in (prompt + text).splitlines()[:6]:
            print("  " + line)
    write_report(args.out, table, result, samples)
    print(f"\nrun directory: {args.out} (README.md report, model/, metrics.jsonl, loss.png, samples.txt)")
    print(f"done in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


COMMANDS = [
    Command(
        name="quickstart",
        help="run the course end to end on the embedded corpus (the Python standard library)",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
