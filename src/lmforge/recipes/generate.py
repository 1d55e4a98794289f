"""`lmforge generate`: continue text with a model directory's model and tokenizer.

    lmforge generate --model runs/quickstart/model --prompt "def fib(n):" --max-new-tokens 60
    lmforge generate --model DIR --prompts prompts.txt --json      # one prompt per line, batched
    lmforge generate --model DIR --prompt "import " --stream      # print text as it is decoded
    lmforge generate --model DIR                                   # interactive: a prompt per line

Decoding defaults come from the model directory's generation.json (if any); every option given here
overrides them for this call. `--temperature 0` is greedy; `--num-beams B` is beam search.
"""

from __future__ import annotations

import argparse
import json
import sys

from lmforge.errors import LmforgeError
from lmforge.recipes import Command, count, count_or_zero


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
    parser.add_argument(
        "--batch-size", type=count, default=16, help="prompts per batch with --prompts (default 16)"
    )
    parser.add_argument(
        "--stream", action="store_true", help="print the text as it is generated (one prompt)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per prompt: text, token_ids"
    )


def load_for_generation(model_dir: str, name: str = "--model"):
    """(model, tokenizer, GenerationConfig defaults) from a model directory, with clear errors."""
    from lmforge.generate import GenerationConfig
    from lmforge.model_source import load_model_and_tokenizer

    model, tokenizer, directory = load_model_and_tokenizer(
        model_dir,
        {"decoder": None, "encoder-decoder": None},
        purpose="generate text",
        hint="an encoder (BERT) fills in masked tokens: `lmforge perplexity` scores text with it",
        name=name,
    )
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return model, tokenizer, GenerationConfig.load(directory)


def settings_from_args(args: argparse.Namespace, defaults):
    return defaults.replace(
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


def encode_batch(tokenizer, model, prompts: list[str]):
    """Left-padded ids and mask, so every row's last column is its last real token."""
    import torch

    rows = [tokenizer.encode(p).ids for p in prompts]
    for prompt, ids in zip(prompts, rows, strict=True):
        if not ids:
            raise LmforgeError(f"prompt {prompt!r} encodes to no tokens; give some text to continue")
    limit = model.config.max_positions
    for prompt, ids in zip(prompts, rows, strict=True):
        if len(ids) >= limit:
            raise LmforgeError(
                f"prompt {prompt[:40]!r}... is {len(ids)} tokens; the model's context is {limit}"
            )
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row)
        mask[i, width - len(row) :] = 1
    return ids, mask


def fit_to_context(config, model, prompt_length: int):
    """Learned position tables end at max_positions: never ask for more new tokens than fit."""
    room = model.config.max_positions - prompt_length
    if config.max_new_tokens > room:
        print(f"note: generating {room} new tokens, all the model's context leaves", file=sys.stderr)
        return config.replace(max_new_tokens=room)
    return config


def generate_texts(model, tokenizer, prompts: list[str], config) -> list[dict]:
    from lmforge.generate import generate

    ids, mask = encode_batch(tokenizer, model, prompts)
    config = fit_to_context(config, model, ids.shape[1])
    output = generate(
        model, ids, config, attention_mask=mask if len(prompts) > 1 else None, tokenizer=tokenizer
    )
    pad = config.pad_token_id
    results = []
    for prompt, row in zip(prompts, output.new_tokens.tolist(), strict=True):
        eos = set(
            config.eos_token_id
            or ([model.config.eos_token_id] if model.config.eos_token_id is not None else [])
        )
        if eos:  # drop the filler after a row's EOS
            end = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
            row = row[:end]
        elif pad is not None:
            pass
        results.append({"prompt": prompt, "text": tokenizer.decode(row), "token_ids": row})
    return results


def show(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(result["prompt"] + result["text"])


def run(args: argparse.Namespace) -> int:
    from lmforge.generate import stream
    from lmforge.text import read_items

    prompts = read_items(args.prompts, option="--prompts", what="prompt") if args.prompts else None
    model, tokenizer, defaults = load_for_generation(args.model)
    try:
        config = settings_from_args(args, defaults)
    except ValueError as exc:
        raise LmforgeError(f"bad decoding option: {exc}") from None

    if prompts is not None:
        for start in range(0, len(prompts), args.batch_size):
            for result in generate_texts(model, tokenizer, prompts[start : start + args.batch_size], config):
                show(result, args.json)
        return 0

    def one(prompt: str) -> None:
        if args.stream and not args.json:
            ids, _ = encode_batch(tokenizer, model, [prompt])
            print(prompt, end="", flush=True)
            for piece in stream(model, tokenizer, ids, fit_to_context(config, model, ids.shape[1])):
                print(piece, end="", flush=True)
            print()
        else:
            show(generate_texts(model, tokenizer, [prompt], config)[0], args.json)

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
