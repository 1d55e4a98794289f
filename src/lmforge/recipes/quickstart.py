"""`lmforge quickstart`: the whole course on the embedded default corpus, the Python standard library.

Stages, each printed as it runs:
  1. environment — Python, PyTorch, threads, accelerator;
  2. corpus — the standard library's own ``.py`` files, found through `sysconfig`;
  3. tokenizers — char, word, BPE and WordPiece trained on a sample of that corpus, compared on held-out
     lines: the smaller the token, the longer the sequence.
Later stages (pre-training, completions) are added by their issues.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from lmforge.recipes import Command


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--minutes", type=float, default=5.0, help="time budget for the training stages (default: 5)"
    )
    parser.add_argument("--out", default="runs/quickstart", help="run directory (default: runs/quickstart)")


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
    print("\n== 3. tokenizers: the smaller the token, the longer the sequence")
    for line in tokenizer_stage().splitlines():
        print("  " + line)
    print(f"\ndone in {time.perf_counter() - started:.1f}s")
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
