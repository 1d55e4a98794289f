"""`lmforge prepare`: tokenize a corpus into memory-mapped token shards for pre-training.

    lmforge prepare --tokenizer tok.json --out runs/wiki-shards FILE...      # a trained lmforge/HF tokenizer.json
    lmforge prepare --tokenizer bytes --out runs/shakespeare-bytes input.txt # UTF-8 bytes, no tokenizer needed

Reads plain text, JSONL (--field) and CSV/TSV (--column), tokenizes on every core, and writes
``train-*.bin`` / ``val-*.bin`` (uint16 or uint32) and ``meta.json`` into --out. The validation split is
--val FILE... or the last --val-fraction of the text. Re-running with unchanged inputs reuses the shards.
"""

from __future__ import annotations

import argparse
import time

from lmforge.errors import ConfigError, LmforgeError
from lmforge.recipes import Command, count


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="text, .jsonl, .csv/.tsv files or directories"
    )
    parser.add_argument(
        "--tokenizer",
        required=True,
        metavar="FILE",
        help="a tokenizer.json, or `bytes` for UTF-8 bytes (ids 0-255, 256 = end)",
    )
    parser.add_argument("--out", required=True, help="directory for the shards and meta.json")
    parser.add_argument(
        "--val", nargs="+", default=[], metavar="FILE", help="validation files (default: a split)"
    )
    parser.add_argument(
        "--val-fraction", type=float, default=0.1, help="share of the text kept for validation (default 0.1)"
    )
    parser.add_argument("--field", default="text", help="JSONL field holding the text (default: text)")
    parser.add_argument(
        "--column", default=None, help="CSV/TSV column holding the text (default: text/sentence)"
    )
    parser.add_argument(
        "--unit",
        choices=["file", "line"],
        default="file",
        help="plain text: one document per file (default; keeps newlines) or per line",
    )
    parser.add_argument(
        "--eot", default=None, help="end-of-text token (default: <|endoftext|>, [SEP], </s>, ...)"
    )
    parser.add_argument(
        "--workers", type=count, default=None, help="tokenizer processes (default: every core)"
    )


def load_encoder(tokenizer: str, eot: str | None = None):
    """`bytes` -> ByteEncoder; a path -> the lmforge tokenizer it holds, as an `Encoder`."""
    from pathlib import Path

    from lmforge.data.shards import ByteEncoder, TokenizerEncoder

    if tokenizer == "bytes":
        return ByteEncoder()
    if not Path(tokenizer).is_file():
        raise ConfigError(f"--tokenizer {tokenizer}: no such file (give a tokenizer.json, or `bytes`)")
    try:
        import lmforge.tokenizers  # noqa: F401
    except ImportError:
        raise LmforgeError(
            "--tokenizer: this lmforge build has no lmforge.tokenizers package; use --tokenizer bytes "
            "or install a build that includes the tokenizers"
        ) from None
    return TokenizerEncoder(tokenizer, eot=eot)


def run(args: argparse.Namespace) -> int:
    from lmforge.data.shards import prepare_shards

    if not 0.0 <= args.val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    encoder = load_encoder(args.tokenizer, args.eot)
    started = time.perf_counter()
    meta = prepare_shards(
        args.files,
        args.out,
        encoder,
        val_files=args.val,
        val_fraction=args.val_fraction,
        field=args.field,
        column=args.column,
        unit=args.unit,
        workers=args.workers,
        progress=True,
    )
    seconds = time.perf_counter() - started
    data = meta.data
    print(f"{'reused' if meta.reused else 'wrote'} {args.out} in {seconds:.1f}s")
    print(
        f"  tokenizer  {data['tokenizer']}  (vocab {data['vocab_size']:,}, {data['dtype']}, eot {data['eot_id']})"
    )
    for split, info in data["splits"].items():
        ratio = info["bytes"] / max(info["tokens"], 1)
        print(
            f"  {split:<5}      {info['tokens']:>12,} tokens  {info['bytes']:>12,} bytes  "
            f"{info['documents']:>9,} documents  {ratio:.2f} bytes/token  ({len(info['files'])} shard files)"
        )
    return 0


COMMANDS = [
    Command(
        name="prepare",
        help="tokenize a corpus into memory-mapped token shards for pre-training",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
