"""`lmforge classify`: the label (and every label's probability) a fine-tuned classifier gives a text.

    lmforge classify --model runs/sst2-minilm/model "a gorgeous, witty, seductive movie ."
    lmforge classify --model runs/sst2-minilm/model --pair "second text" "first text"
    lmforge classify --model runs/sst2-minilm/model --file reviews.txt --json    # one text per line

The model directory is the `model/` (or, for LoRA runs saved as adapters, `adapters/`) that `lmforge
finetune` wrote. The library behind it is `lmforge.pipelines.Classification`: texts in, (label,
probabilities) out, in batches.
"""

from __future__ import annotations

import argparse
import json

from lmforge.errors import LmforgeError
from lmforge.recipes import Command, count


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="*", help="text(s) to classify")
    parser.add_argument(
        "--model", required=True, metavar="DIR", help="a model directory written by `lmforge finetune`"
    )
    parser.add_argument("--pair", help="second text, for a model fine-tuned on text pairs")
    parser.add_argument("--file", metavar="FILE", help="a file of texts, one per line ('-' = standard input)")
    parser.add_argument("--batch-size", type=count, default=32, help="texts per forward pass (default 32)")
    parser.add_argument("--max-length", type=count, default=128, help="tokens per text after truncation")
    parser.add_argument("--json", action="store_true", help="one JSON object per text")


def run(args: argparse.Namespace) -> int:
    texts = list(args.text)
    if args.file:
        from lmforge.text import read_items

        texts += read_items(args.file, option="--file", what="text")
    if not texts:
        raise LmforgeError("nothing to classify: give a text, or --file with one text per line")
    if args.pair is not None and len(texts) != 1:
        raise LmforgeError("--pair goes with exactly one text")
    from lmforge.pipelines import Classification

    classify = Classification.load(args.model, name="--model")
    pairs = [args.pair] if args.pair is not None else None
    results = classify(texts, pairs, batch_size=args.batch_size, max_length=args.max_length)
    for text, item in zip(texts, results, strict=True):
        if args.json:
            record = {"text": text, "label": item.label, "probabilities": item.probabilities}
            print(json.dumps(record, ensure_ascii=False))
        else:
            others = ", ".join(f"{k} {v:.3f}" for k, v in item.probabilities.items())
            print(f"{item.label}\t{item.probabilities[item.label]:.3f}\t({others})\t{text}")
    return 0


COMMANDS = [
    Command(
        name="classify",
        help="label texts with a fine-tuned classifier (label + probabilities; a file in batches)",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
