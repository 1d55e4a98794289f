"""`lmforge finetune`: choose a model and a dataset → load → preprocess → initialise → train → validate.

    lmforge finetune --config configs/sst2-minilm.yaml
    lmforge finetune --config configs/sst2-minilm.yaml --from-scratch --out runs/sst2-scratch
    lmforge finetune --config configs/sst2-minilm.yaml --lora.rank=8 --train.max_steps=300
    lmforge finetune --config configs/translate-en-es-tatoeba.yaml

The pipeline is `lmforge.finetune.finetune`:
"""

from __future__ import annotations

import argparse
import sys

import lmforge.finetune as finetune_library
from lmforge.config import add_set_option, dump_yaml, load_config, top_level_overrides
from lmforge.errors import LmforgeError
from lmforge.finetune import FinetuneConfig, finetune
from lmforge.recipes import Command, with_library_doc

# --- the command ----------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="CONFIG",
        help="a YAML preset (see configs/); options not in it keep their defaults",
    )
    parser.add_argument("--out", help="run directory (overrides the config's `out`)")
    parser.add_argument(
        "--model", metavar="DIR", help="model directory to start from (overrides the config's `model`)"
    )
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="same architecture, random initialisation (the baseline that shows what pre-training buys)",
    )
    add_set_option(parser, "--set max_length=64 --set fit_steps_to_minutes=false")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.epilog = (
        "Any setting can be overridden as --section.key=value, e.g. --train.max_steps=300 --lora.rank=8 "
        "--data.max_train_examples=1000. Sections: data (classify), translate, qa, lora, train. "
        "Top-level keys: --set KEY=VALUE."
    )


def run(args: argparse.Namespace) -> int:
    from lmforge.train.budget import explicit_steps_win

    overrides = list(args.overrides) + top_level_overrides(args.set)
    if args.out:
        overrides.append(f"out={args.out}")
    if args.model:
        overrides.append(f"model={args.model}")
    if args.from_scratch:
        overrides.append("from_scratch=true")
    config = load_config(FinetuneConfig, args.config, overrides)
    config, note = explicit_steps_win(config, overrides)
    if note:
        print(note, file=sys.stderr)
    if args.print_config:
        print(dump_yaml(config), end="")
        return 0
    try:
        result = finetune(config)
    except FloatingPointError as exc:
        raise LmforgeError(str(exc)) from None
    split = "dev" if config.task == "classify" else "test"  # translate, qa: scored on held-out test data
    print(f"\n{split}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()))
    print(f"{result.steps:,} steps in {result.seconds / 60:.1f} min; model directory: {result.model_dir}")
    return 0


COMMANDS = [
    Command(
        name="finetune",
        help="fine-tune a model directory on a task (classify, translate, qa) from a YAML preset; LoRA optional",
        configure=configure,
        run=run,
        description=with_library_doc(__doc__, finetune_library.__doc__),
        takes_overrides=True,
        config=FinetuneConfig,
    )
]
