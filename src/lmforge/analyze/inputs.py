"""The texts a report is about, with their dates and groups, from any corpus format lmforge reads.

    from lmforge.analyze.inputs import read_texts
    inputs = read_texts(["reviews.csv"], date_column="date", group_column="product")
    inputs.texts, inputs.dates, inputs.groups

A CSV/TSV file (header line) or JSONL file holds one text per row in its text column (`--text-column`;
by default `text`, else `sentence`, as GLUE's SST-2 names it) and, when asked for, a date and a group
column; a plain text file holds one text per non-blank line and has no columns. Rows whose text is blank are
left out (and counted). Every problem is one `CorpusError` naming the file, the line and, for a missing
column, the columns there are and the option that chooses one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from lmforge.errors import CorpusError

DEFAULT_TEXT_COLUMNS = ("text", "sentence")


@dataclass
class Texts:
    texts: list[str]
    dates: list[str | None] | None  # None when no date column was asked for
    groups: list[str | None] | None
    files: list[str]
    text_columns: dict[str, str] = field(default_factory=dict)  # file -> the column its texts came from
    blank: int = 0  # rows left out because their text was blank


def read_texts(paths: Sequence[str | os.PathLike], *, text_column: str | None = None, date_column: str | None = None,
               group_column: str | None = None) -> Texts:  # fmt: skip
    """The texts of `paths` (files or directories of them), in order, with the asked-for columns."""
    from lmforge.text import JSONL_SUFFIXES, TABLE_SUFFIXES, check_utf8, iter_records, resolve_files

    files = resolve_files(paths)
    for path in files:  # a bad byte anywhere fails before any work
        check_utf8(path)
    texts: list[str] = []
    dates: list[str | None] | None = [] if date_column else None
    groups: list[str | None] | None = [] if group_column else None
    chosen: dict[str, str] = {}
    blank = 0
    for path in files:
        structured = path.suffix.lower() in (*JSONL_SUFFIXES, *TABLE_SUFFIXES)
        if not structured and (date_column or group_column):
            option = "--date-column" if date_column else "--group-column"
            raise CorpusError(
                f"{path}: plain text has no columns for {option}; give a CSV, TSV or JSONL file with a header"
            )
        column = text_column if structured else "text"
        for number, record in iter_records(path):
            where = f"{path}:{number}"
            if column is None:
                column = next((c for c in DEFAULT_TEXT_COLUMNS if c in record), None)
                if column is None:
                    raise CorpusError(f"{where}: no 'text' or 'sentence' column (columns: {_names(record)}); "
                                      "choose one with --text-column")  # fmt: skip
            text = _cell(record, column, where, "--text-column", required=True)
            if text is None or not text.strip():
                blank += 1
                continue
            texts.append(text.strip())
            if dates is not None:
                dates.append(_cell(record, date_column, where, "--date-column"))
            if groups is not None:
                groups.append(_cell(record, group_column, where, "--group-column"))
        if column is not None:
            chosen[str(path)] = column
    if not texts:
        names = ", ".join(str(p) for p in files[:3]) + (" ..." if len(files) > 3 else "")
        raise CorpusError(f"{names}: no text (empty); expected one text per line, or CSV/TSV/JSONL rows with a "
                          "text column")  # fmt: skip
    return Texts(texts, dates, groups, [str(p) for p in files], chosen, blank)


def _names(record: dict) -> str:
    return ", ".join(map(str, record)) or "none"


def _cell(record: dict, column: str | None, where: str, option: str, required: bool = False) -> str | None:
    """The value of `column` as a string (None for a JSON null or an empty cell, unless `required`)."""
    if column not in record:
        raise CorpusError(f"{where}: no column '{column}' for {option} (columns: {_names(record)})")
    value = record[column]
    if value is None or value == "":
        return "" if required else None
    if isinstance(value, (dict, list)):
        raise CorpusError(f"{where}: column '{column}' holds a JSON {type(value).__name__}, not a value")
    if required and not isinstance(value, str):
        raise CorpusError(f"{where}: column '{column}' is {type(value).__name__}, not text")
    return str(value).strip() if not required else value
