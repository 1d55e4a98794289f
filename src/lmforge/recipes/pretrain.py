"""`lmforge pretrain`: gather → preprocess → architecture → objective → validate, as one command.

    lmforge pretrain --config configs/gpt-char-shakespeare.yaml
    lmforge pretrain --config configs/gpt-bpe-wikitext2.yaml --train.max_steps=200 --out=runs/try

The pipeline is `lmforge.pretrain.pretrain`:
"""

from __future__ import annotations

import argparse
import sys

import lmforge.pretrain as pretrain_library
from lmforge.config import add_set_option, dump_yaml, load_config, top_level_overrides
from lmforge.errors import LmforgeError
from lmforge.pretrain import PretrainConfig, pretrain
from lmforge.recipes import Command, with_library_doc

# --- the command ----------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="CONFIG",
        help="a YAML preset (see configs/); options not in it keep their defaults",
    )
    parser.add_argument("--out", help="run directory (overrides the config's `out`)")
    add_set_option(parser, "--set block_size=256 --set fit_steps_to_minutes=false")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.epilog = (
        "Any setting can be overridden as --section.key=value, e.g. --train.max_steps=500 "
        "--model.preset=gpt-tiny --data.files=[a.txt,b.txt]. Sections: data, tokenizer, model, train. "
        "Top-level keys: --set KEY=VALUE."
    )


def run(args: argparse.Namespace) -> int:
    from lmforge.train.budget import explicit_steps_win

    overrides = list(args.overrides) + top_level_overrides(args.set)
    if args.out:
        overrides.append(f"out={args.out}")
    config = load_config(PretrainConfig, args.config, overrides)
    config, note = explicit_steps_win(config, overrides)
    if note:
        print(note, file=sys.stderr)
    if args.print_config:
        print(dump_yaml(config), end="")
        return 0
    try:
        result = pretrain(config)
    except FloatingPointError as exc:
        raise LmforgeError(str(exc)) from None
    if not result.is_main:  # under torchrun the other ranks trained too; rank 0 reports once
        return 0
    print("\nvalidation: " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()))
    print(
        f"{result.steps:,} steps, {result.tokens:,} tokens in {result.seconds / 60:.1f} min "
        f"({result.tokens_per_second:,.0f} tokens/s); model directory: {result.model_dir}"
    )
    return 0


COMMANDS = [
    Command(
        name="pretrain",
        help="pre-train a model (causal LM like GPT, masked LM like BERT) from a YAML preset",
        configure=configure,
        run=run,
        description=with_library_doc(__doc__, pretrain_library.__doc__),
        takes_overrides=True,
        config=PretrainConfig,
    )
]
