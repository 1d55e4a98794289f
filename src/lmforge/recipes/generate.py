"""`lmforge generate`: continue text with a model directory's model and tokenizer.

    lmforge generate --model runs/quickstart/model --prompt "def fib(n):" --max-new-tokens 60
    lmforge generate --model DIR --prompts prompts.txt --json      # one prompt per line, batched
    lmforge generate --model DIR --prompt "import " --stream      # print text as it is decoded
    lmforge generate --model DIR                                   # interactive: a prompt per line
    lmforge generate --model DIR --prompt "def f(" --draft DRAFT    # speculative decoding, same text
    lmforge generate --model DIR --prompt "def f(" --prompt-lookup 10 --json   # drafts copied from the text

Decoding defaults come from the model directory's generation.json (if any); every option given here
overrides them for this call. `--temperature 0` is greedy; `--num-beams B` is beam search.
Speculative decoding makes the same text in fewer forward passes of the model: `--draft DIR` (a small model
trained on the same tokenizer, e.g. `lmforge pretrain --set draft_for=DIR`) proposes
`--num-speculative-tokens` tokens at a time, or `--prompt-lookup N` copies up to N tokens that followed the
last words where they appeared before; `--json` then gives the acceptance rate.
"""

from __future__ import annotations

import argparse
import json
import sys

from lmforge.recipes import (
    Command,
    add_speculation_options,
    count,
    count_or_zero,
    speculation_options,
    speculation_record,
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="model directory (config.json, model.safetensors, tokenizer.json)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--prompt", help="the text to continue")
    source.add_argument(
        "--prompts", metavar="FILE", help="a file with one prompt per line; generated in batches"
    )
    parser.add_argument(
        "--max-new-tokens", type=count, help="upper bound on new tokens (default: generation.json or 100)"
    )
    parser.add_argument("--temperature", type=float, help="0 = greedy; higher = more random (default 1.0)")
    parser.add_argument("--top-k", type=count_or_zero, help="sample among the k most likely tokens (0 = off)")
    parser.add_argument("--top-p", type=float, help="nucleus sampling: smallest set with probability >= p")
    parser.add_argument("--min-p", type=float, help="drop tokens below min_p x the top token's probability")
    parser.add_argument("--repetition-penalty", type=float, help="> 1 discourages repeating tokens (CTRL)")
    parser.add_argument(
        "--no-repeat-ngram-size", type=count_or_zero, help="never repeat an n-gram of this size"
    )
    parser.add_argument("--num-beams", type=count, help="beam search with this many beams (deterministic)")
    parser.add_argument("--stop", action="append", help="stop when this text appears (repeatable)")
    parser.add_argument("--seed", type=count_or_zero, help="seed for reproducible sampling")
    add_speculation_options(parser)
    parser.add_argument(
        "--batch-size", type=count, default=16, help="prompts per batch with --prompts (default 16)"
    )
    parser.add_argument(
        "--stream", action="store_true", help="print the text as it is generated (one prompt)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per prompt: text, token_ids"
    )


def options_from_args(args: argparse.Namespace) -> dict:
    """The decoding options given on the command line (unset ones left to generation.json)."""
    return dict(
        **speculation_options(args),
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        num_beams=args.num_beams,
        stop_strings=args.stop,
        seed=args.seed,
    )


def show(prompt: str, result, as_json: bool) -> None:
    if as_json:
        record = {"prompt": prompt, "text": result.text, "token_ids": result.token_ids}
        record.update(speculation_record(result))
        print(json.dumps(record, ensure_ascii=False))
    else:
        print(prompt + result.text)


def run(args: argparse.Namespace) -> int:
    from lmforge.pipelines import TextGeneration
    from lmforge.text import read_items

    prompts = read_items(args.prompts, option="--prompts", what="prompt") if args.prompts else None
    generate = TextGeneration.load(args.model, name="--model", log=lambda note: print(note, file=sys.stderr))
    options = options_from_args(args)
    generate.settings(**options)  # a bad option fails before any prompt is generated

    if prompts is not None:
        for start in range(0, len(prompts), args.batch_size):  # printed batch by batch
            batch = prompts[start : start + args.batch_size]
            for prompt, result in zip(
                batch, generate(batch, batch_size=args.batch_size, **options), strict=True
            ):
                show(prompt, result, args.json)
        return 0

    def one(prompt: str) -> None:
        if args.stream and not args.json:
            pieces = generate.stream(prompt, **options)
            print(prompt, end="", flush=True)
            for piece in pieces:
                print(piece, end="", flush=True)
            print()
        else:
            show(prompt, generate(prompt, **options), args.json)

    if args.prompt is not None:
        one(args.prompt)
        return 0
    print(
        "interactive generation: type a prompt and press Enter (empty line or Ctrl-D to quit)",
        file=sys.stderr,
    )
    while True:
        try:
            prompt = input("> ")
        except EOFError:
            break
        if not prompt:
            break
        one(prompt)
    return 0


COMMANDS = [
    Command(
        name="generate",
        help="continue text with a model: greedy, sampling, beam search, streaming, batches",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
