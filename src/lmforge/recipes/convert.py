"""`lmforge convert`: Hugging Face checkpoint ↔ lmforge model directory (GPT-2, BERT, Marian, Llama).

    lmforge convert --from-hf path/to/hf-model --out runs/model     # HF config.json + safetensors → lmforge
    lmforge convert --to-hf runs/model --out path/to/hf-model       # and back, loadable by transformers

The work is `lmforge.model.convert.from_hf` / `to_hf`; this module only parses and reports.
"""

from __future__ import annotations

import argparse

from lmforge.recipes import Command


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from-hf", metavar="DIR", help="a Hugging Face model directory (config.json + safetensors)"
    )
    source.add_argument(
        "--to-hf", metavar="DIR", help="an lmforge model directory to write in Hugging Face layout"
    )
    parser.add_argument("--out", required=True, metavar="DST", help="the directory to write")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lmforge.errors import ConfigError
    from lmforge.model.convert import convert
    from lmforge.model_source import resolve_model_source

    option = "--from-hf" if args.from_hf else "--to-hf"
    source = resolve_model_source(args.from_hf or args.to_hf, name=option)
    if Path(args.out).resolve() == source.resolve():
        raise ConfigError("--out must differ from the source directory")
    from_hf, to_hf = (str(source), None) if args.from_hf else (None, str(source))
    out = convert(from_hf, to_hf, args.out)
    files = ", ".join(sorted(p.name for p in out.iterdir() if not p.name.startswith(".")))
    direction = "lmforge model directory" if args.from_hf else "Hugging Face checkpoint"
    print(f"wrote {direction} {out}: {files}")
    return 0


COMMANDS = [
    Command(
        "convert",
        "convert a checkpoint between Hugging Face layout and an lmforge model directory",
        configure,
        run,
        description=__doc__,
    )
]
