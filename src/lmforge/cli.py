"""`lmforge <verb> ...`: parse the command line, then call the verb's function in `lmforge.recipes`.

Verbs are discovered from the modules of `lmforge.recipes` (each lists its `COMMANDS`), so a verb that is
not built does not appear. Errors the user can cause (`LmforgeError`, a missing file, a bad option) print
one line — what, where, what to do — and exit with status 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from lmforge import __version__
from lmforge.config import split_overrides
from lmforge.errors import LmforgeError
from lmforge.recipes import Command

# The order of the course; verbs not named here are listed after these, alphabetically.
COURSE_ORDER = [
    "quickstart",
    "tokenizer",
    "embed",
    "prepare",
    "pretrain",
    "perplexity",
    "generate",
    "attention",
    "convert",
    "finetune",
    "classify",
    "translate",
    "answer",
    "eval",
    "humaneval",
    "experiment",
]

EPILOG = "Run `lmforge VERB --help` for the options of a verb. Add --debug to see tracebacks."


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps each verb and its help on one line."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=24, width=110)
        self._action_max_length = 20  # room for the longest verb, which argparse does not measure


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that points at --help."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def discover_commands() -> list[Command]:
    import lmforge.recipes as recipes

    commands: dict[str, Command] = {}
    for info in pkgutil.iter_modules(recipes.__path__):
        module = importlib.import_module(f"lmforge.recipes.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            if command.name in commands:
                raise RuntimeError(f"verb {command.name!r} is defined twice (in {info.name})")
            commands[command.name] = command

    def rank(name: str) -> tuple[int, str]:
        return (COURSE_ORDER.index(name) if name in COURSE_ORDER else len(COURSE_ORDER), name)

    return [commands[name] for name in sorted(commands, key=rank)]


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lmforge",
        description="lmforge: tokenize, embed, build, pre-train, fine-tune, evaluate and use language models.",
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lmforge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", title="verbs", parser_class=_Parser)
    for command in commands:
        sub = verbs.add_parser(
            command.name,
            help=command.help,
            description=command.description or command.help,
            formatter_class=_HelpFormatter,
        )
        sub.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
        )
        command.configure(sub)
        sub.set_defaults(_command=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("LMFORGE_DEBUG") == "1"
    try:
        commands = discover_commands()
        parser = build_parser(commands)
        overrides: list[str] = []
        verb = next((a for a in argv if not a.startswith("-")), None)
        command = next((c for c in commands if c.name == verb), None)
        if command is not None and command.default_subverb:
            argv = with_default_subverb(argv, command.name, command.default_subverb, parser)
        if command is not None and command.takes_overrides:
            overrides, argv = split_overrides(argv)
        args = parser.parse_args(argv)
        if getattr(args, "_command", None) is None:
            parser.print_help()
            return 0 if not argv or argv == ["--debug"] else 2
        args.overrides = overrides
        return int(args._command.run(args) or 0)
    except LmforgeError as exc:
        if debug:
            raise
        return _fail(verb_of(argv), str(exc))
    except OSError as exc:  # missing file, permission, disk full: the user's to fix
        if debug:
            raise
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        return _fail(verb_of(argv), f"{exc.strerror or exc}{where}")
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def with_default_subverb(
    argv: list[str], verb: str, default: str, parser: argparse.ArgumentParser
) -> list[str]:
    """`argv` with `default` inserted after `verb` unless a sub-verb of it (or -h/--help) follows."""
    verb_parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[verb]
    subverbs = next(a for a in verb_parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    position = argv.index(verb)
    following = argv[position + 1 : position + 2]
    if following and (following[0] in subverbs or following[0] in ("-h", "--help")):
        return argv
    return [*argv[: position + 1], default, *argv[position + 1 :]]


def verb_of(argv: Sequence[str]) -> str:
    verb = next((a for a in argv if not a.startswith("-")), None)
    return f"lmforge {verb}" if verb else "lmforge"


def _fail(prog: str, message: str) -> int:
    message = " ".join(message.split("\n"))
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
