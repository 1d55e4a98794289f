"""One module per verb of the `lmforge` command.

Each module defines ``COMMANDS``: a list of `Command`s. `lmforge.cli` finds them by listing this package,
so adding a verb is adding a module. Recipes only compose the library: everything a verb does is a
function a notebook can call. Keep module-level imports light (no torch at import time) so that
`lmforge --help` stays instant; import heavy things inside `run`.

Numeric options say their range through their argparse type, so a bad value is refused by the parser, in
one line that names the option, before any work: `count` (how many of something: 1 or more),
`count_or_zero` (0 has the meaning the option's help gives it: off, all, every core), `positive_number`.
A plain ``type=int`` is for values that may be negative (a layer index counted from the end). Inputs say
what they are through their metavar: ``FILE`` (a UTF-8 text file read), ``VECTORS`` (word vectors),
``JSON``, ``CONFIG`` (a YAML preset), ``DIR`` (a model directory). `tests/test_bad_inputs.py` finds every
verb and every such option by these, and gives each the bad inputs that apply to it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


def count(text: str) -> int:
    """argparse type: an integer of at least 1.

    >>> count("3")
    3
    """
    return _integer_at_least(text, 1)


def count_or_zero(text: str) -> int:
    """argparse type: an integer of at least 0."""
    return _integer_at_least(text, 0)


def positive_number(text: str) -> float:
    """argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _integer_at_least(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


@dataclass(frozen=True)
class Command:
    name: str  # the verb: `lmforge NAME`
    help: str  # one line for `lmforge --help`
    configure: Callable[[argparse.ArgumentParser], None]  # adds the verb's options
    run: Callable[[argparse.Namespace], int | None]  # does the work; returns the exit code (None = 0)
    description: str = ""  # longer text shown by `lmforge NAME --help`
    takes_overrides: bool = False  # accepts `--section.key=value` config overrides (in args.overrides)
    config: type | None = None  # the config dataclass its --config YAML and overrides fill, if any
    # `lmforge NAME ARGS` means `lmforge NAME DEFAULT_SUBVERB ARGS` unless ARGS starts with a sub-verb or
    # --help: `lmforge summarize --method lead-1 FILE` beside `lmforge summarize eval ...`
    default_subverb: str = ""


def with_library_doc(recipe_doc: str, library_doc: str) -> str:
    """A verb's `--help` text: its own docstring (what it is, how to call it) followed by the body of the
    library module's docstring — everything after that docstring's title and Python example — so the
    steps are written once, where the code is."""
    body = library_doc.strip().split("\n\n", 2)[2:]
    return recipe_doc.rstrip() + ("\n\n" + body[0] if body else "") + "\n"


def retrieval_options(parser: argparse.ArgumentParser, *, k: int, mode: str = "dense") -> None:
    """The options `search` and `ask` share (lmforge.search): the index, how to retrieve, how many."""
    parser.add_argument(
        "--index", required=True, metavar="IDX", help="an index built by `lmforge index build`"
    )
    parser.add_argument("--mode", choices=("dense", "bm25", "hybrid"), default=mode, help=f"default: {mode}")
    parser.add_argument(
        "--fusion", choices=("rrf", "sum"), default="rrf", help="hybrid: rrf (default) or sum"
    )
    parser.add_argument(
        "--alpha", type=float, default=0.5, help="--fusion sum: weight of dense (default 0.5)"
    )
    parser.add_argument("--ann", action="store_true", help="dense through the HNSW index instead of exactly")
    parser.add_argument("-k", type=count, default=k, help=f"how many results (default {k})")
    parser.add_argument(
        "--embedder", metavar="DIR", help="the index's embedder, if it moved (checked by hash)"
    )


def add_speculation_options(parser: argparse.ArgumentParser) -> None:
    """The speculative-decoding options `generate` and `translate` share (lmforge.generate)."""
    parser.add_argument(
        "--draft",
        metavar="DIR",
        help="speculative decoding with this draft model directory (same tokenizer; the output is the same, "
        "faster when the draft guesses well; default: generation.json's draft, if any; 'none': no draft)",
    )
    parser.add_argument(
        "--prompt-lookup",
        type=count_or_zero,
        metavar="N",
        help="draft up to N tokens by copying what followed the last words earlier in the text (0 = off)",
    )
    parser.add_argument(
        "--num-speculative-tokens",
        type=count,
        metavar="GAMMA",
        help="tokens the draft proposes per round (the start of an adaptive schedule; default 4)",
    )


def speculation_options(args: argparse.Namespace) -> dict:
    """GenerationConfig fields from those options; --prompt-lookup alone (or --draft none) turns
    generation.json's draft off."""
    import os

    draft = os.path.abspath(args.draft) if args.draft else None
    if args.draft == "none":
        draft = ""
    if draft is None and args.prompt_lookup:
        draft = ""  # "" = no draft (None would keep the model directory's default)
    return dict(
        draft=draft,
        prompt_lookup_num_tokens=args.prompt_lookup,
        num_speculative_tokens=args.num_speculative_tokens,
    )


def speculation_record(result) -> dict:
    """The --json fields of speculative decoding (none when it did not run)."""
    if result.drafted_tokens is None:
        return {}
    return {
        "acceptance_rate": result.acceptance_rate,
        "drafted_tokens": result.drafted_tokens,
        "accepted_tokens": result.accepted_tokens,
    }
