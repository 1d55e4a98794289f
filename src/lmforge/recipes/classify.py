"""`lmforge classify`: the label (and every label's probability) a fine-tuned classifier gives a text.

    lmforge classify --model runs/sst2-minilm/model "a gorgeous, witty, seductive movie ."
    lmforge classify --model runs/sst2-minilm/model --pair "second text" "first text"
    lmforge classify --model runs/sst2-minilm/model --file reviews.txt --json    # one text per line

The model directory is the `model/` (or, for LoRA runs saved as adapters, `adapters/`) that `lmforge
finetune` wrote. `predict` is the library function: texts in, (label, probabilities) out, in batches.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lmforge.errors import LmforgeError
from lmforge.recipes import Command, count


@dataclass
class Prediction:
    text: str
    label: str
    probabilities: dict[str, float]  # every label's probability, in the model's label order


def load_classifier(directory: str | Path, name: str = "--model"):
    """(model, tokenizer, label names) of a fine-tuned classifier directory (full model or adapters)."""
    from lmforge.model_source import load_model_and_tokenizer

    model, tokenizer, _ = load_model_and_tokenizer(
        str(directory),
        {"encoder": ("sequence-classification",)},
        purpose="classify text",
        hint="fine-tune one with `lmforge finetune` (task classify)",
        name=name,
        adapters=True,
    )
    labels = model.config.extra.get("labels") or [str(i) for i in range(model.config.num_labels)]
    return model, tokenizer, list(labels)


def predict(
    model,
    tokenizer,
    labels: Sequence[str],
    texts: Sequence[str],
    pairs: Sequence[str] | None = None,
    *,
    batch_size: int = 32,
    max_length: int = 128,
) -> list[Prediction]:
    """Classify `texts` (with `pairs` as second texts) in batches of `batch_size`, padded per batch.

    >>> model, tokenizer, labels = load_classifier("runs/sst2-minilm/model")
    >>> predict(model, tokenizer, labels, ["a gorgeous movie ."])[0].label
    'positive'
    """
    import torch

    from lmforge.data.classification import Example, classifier_logits, encode_examples, pad_batch

    pad_id = model.config.pad_token_id or 0
    examples = [Example(text, pairs[i] if pairs is not None else None, "") for i, text in enumerate(texts)]
    encoded = encode_examples(tokenizer, examples, labels, min(max_length, model.config.max_positions))
    model.eval()
    results = []
    with torch.no_grad():
        for first in range(0, len(examples), batch_size):
            rows = list(range(first, min(first + batch_size, len(examples))))
            probabilities = classifier_logits(model, pad_batch(encoded, rows, pad_id)).float().softmax(-1)
            for row, p in zip(rows, probabilities.tolist(), strict=True):
                best = max(range(len(p)), key=p.__getitem__)
                results.append(Prediction(texts[row], labels[best], dict(zip(labels, p, strict=True))))
    return results


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
    model, tokenizer, labels = load_classifier(args.model)
    pairs = [args.pair] if args.pair is not None else None
    for item in predict(
        model, tokenizer, labels, texts, pairs, batch_size=args.batch_size, max_length=args.max_length
    ):
        if args.json:
            record = {"text": item.text, "label": item.label, "probabilities": item.probabilities}
            print(json.dumps(record, ensure_ascii=False))
        else:
            others = ", ".join(f"{k} {v:.3f}" for k, v in item.probabilities.items())
            print(f"{item.label}\t{item.probabilities[item.label]:.3f}\t({others})\t{item.text}")
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
