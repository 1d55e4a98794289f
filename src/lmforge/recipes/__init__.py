"""One module per verb of the `lmforge` command.

Each module defines ``COMMANDS``: a list of `Command`s. `lmforge.cli` finds them by listing this package,
so adding a verb is adding a module. Recipes only compose the library: everything a verb does is a
function a notebook can call. Keep module-level imports light (no torch at import time) so that
`lmforge --help` stays instant; import heavy things inside `run`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str  # the verb: `lmforge NAME`
    help: str  # one line for `lmforge --help`
    configure: Callable[[argparse.ArgumentParser], None]  # adds the verb's options
    run: Callable[[argparse.Namespace], int | None]  # does the work; returns the exit code (None = 0)
    description: str = ""  # longer text shown by `lmforge NAME --help`
    takes_overrides: bool = False  # accepts `--section.key=value` config overrides (in args.overrides)


def with_library_doc(recipe_doc: str, library_doc: str) -> str:
    """A verb's `--help` text: its own docstring (what it is, how to call it) followed by the body of the
    library module's docstring — everything after that docstring's title and Python example — so the
    steps are written once, where the code is."""
    body = library_doc.strip().split("\n\n", 2)[2:]
    return recipe_doc.rstrip() + ("\n\n" + body[0] if body else "") + "\n"
