"""`lmforge translate`: translate sentences with an encoder-decoder model directory.

    lmforge translate --model runs/translate-en-es-tatoeba/model "How are you?"
    lmforge translate --model runs/translate-en-es-tatoeba/model "I am hungry." "Where is Tom?" --num-beams 1
    lmforge translate --model runs/translate-en-es-tatoeba/model --file sentences.txt --json

The model directory is the `model/` that `lmforge finetune` (task translate) wrote, or a Marian model
converted by `lmforge convert --from-hf`. Decoding settings default to the directory's generation.json
(the beam width the model was scored with); `--num-beams` and `--max-new-tokens` override them. Sentences
are translated in batches of similar length; the output keeps the input order, one translation per line.
`--draft DIR` (a smaller translation model on the same tokenizer) or `--prompt-lookup N` decode
speculatively: the same translations, `--json` adds the acceptance rate.
The library behind it is `lmforge.pipelines.Translation`.
"""

from __future__ import annotations

import argparse
import json

from lmforge.errors import LmforgeError
from lmforge.recipes import (
    Command,
    add_speculation_options,
    count,
    speculation_options,
    speculation_record,
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="*", help="sentence(s) to translate")
    parser.add_argument("--model", required=True, metavar="DIR", help="an encoder-decoder model directory")
    parser.add_argument(
        "--file", metavar="FILE", help="a file of sentences, one per line ('-' = standard input)"
    )
    parser.add_argument("--num-beams", type=count, help="beam width; 1 = greedy (default: generation.json)")
    parser.add_argument("--max-new-tokens", type=count, help="tokens per translation at most")
    parser.add_argument("--batch-size", type=count, default=64, help="sentences per batch (default 64)")
    parser.add_argument("--json", action="store_true", help="one JSON object per sentence")
    add_speculation_options(parser)


def run(args: argparse.Namespace) -> int:
    texts = list(args.text)
    if args.file:
        from lmforge.text import read_items

        texts += read_items(args.file, option="--file", what="sentence")
    if not texts:
        raise LmforgeError("nothing to translate: give a sentence, or --file with one sentence per line")

    from lmforge.pipelines import Translation

    translate = Translation.load(args.model, name="--model")
    results = translate(
        texts,
        batch_size=args.batch_size,
        num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens,
        temperature=0.0,  # translation is deterministic: greedy or beam search, never sampling
        **speculation_options(args),
    )
    for text, item in zip(texts, results, strict=True):
        if args.json:
            record = {"source": text, "translation": item.text, "token_ids": item.token_ids}
            record.update(speculation_record(item))
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
