"""`lmforge translate`: translate sentences with an encoder-decoder model directory.

    lmforge translate --model runs/translate-en-es-tatoeba/model "How are you?"
    lmforge translate --model runs/translate-en-es-tatoeba/model "I am hungry." "Where is Tom?" --num-beams 1
    lmforge translate --model runs/translate-en-es-tatoeba/model --file sentences.txt --json

The model directory is the `model/` that `lmforge finetune` (task translate) wrote, or a Marian model
converted by `lmforge convert --from-hf`. Decoding settings default to the directory's generation.json
(the beam width the model was scored with); `--num-beams` and `--max-new-tokens` override them. Sentences
are translated in batches of similar length; the output keeps the input order, one translation per line.
The library function is `lmforge.finetune.translate.translate`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmforge.errors import LmforgeError, MissingFileError
from lmforge.recipes import Command


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="*", help="sentence(s) to translate")
    parser.add_argument("--model", required=True, help="an encoder-decoder model directory")
    parser.add_argument("--file", help="a file of sentences, one per line ('-' = standard input)")
    parser.add_argument("--num-beams", type=int, help="beam width; 1 = greedy (default: generation.json)")
    parser.add_argument("--max-new-tokens", type=int, help="tokens per translation at most")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default 64)")
    parser.add_argument("--json", action="store_true", help="one JSON object per sentence")


def run(args: argparse.Namespace) -> int:
    for name in ("num_beams", "max_new_tokens", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise LmforgeError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    texts = list(args.text)
    if args.file:
        if args.file != "-" and not Path(args.file).is_file():
            raise MissingFileError(f"--file: not found: {args.file}")
        stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
        with stream:
            texts += [line.rstrip("\r\n") for line in stream if line.strip()]
    if not texts:
        raise LmforgeError("nothing to translate: give a sentence, or --file with one sentence per line")

    from lmforge.finetune.translate import load_translator, translate

    model, tokenizer, defaults = load_translator(args.model)
    config = defaults.replace(
        num_beams=args.num_beams, max_new_tokens=args.max_new_tokens, temperature=0.0
    )  # translation is deterministic: greedy or beam search, never sampling
    for item in translate(model, tokenizer, texts, config, batch_size=args.batch_size):
        if args.json:
            record = {"source": item.source, "translation": item.text, "token_ids": item.token_ids}
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(item.text)
    return 0


COMMANDS = [
    Command(
        name="translate",
        help="translate sentences with an encoder-decoder model directory (batched; greedy or beam search)",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
