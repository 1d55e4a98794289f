"""Reading corpora: plain text, JSONL, CSV/TSV and directories of them, streamed.

Every reader yields one string per document and never holds a whole corpus in memory. Problems are
`CorpusError`s that say which file, which line or byte, and what to do:

    corpus = Corpus(["data/"], field="text")     # .txt lines, .jsonl "text" fields, .csv/.tsv "text" columns
    for doc in corpus: ...                     # may be iterated more than once

Formats by file suffix: ``.jsonl``/``.ndjson`` (one JSON object per line, `field`), ``.csv``/``.tsv``
(header line, `column`; TSV is split on tabs with no quoting, as GLUE ships it), anything else is plain
UTF-8 text (`unit="line"`: one document per non-blank line, its end-of-line dropped; `unit="file"`: one per
file; `unit="chunk"`: every character of the file, newlines included, in pieces of about a megabyte, for
training a tokenizer on what `unit="file"` shards will hold without reading a file whole).
The embedded default corpus is the Python standard library's own source (`stdlib_files`).
"""

from __future__ import annotations

import csv
import json
import os
import sys
import sysconfig
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

from lmforge.errors import CorpusError, MissingFileError

TEXT_SUFFIXES = (
    ".txt",
    ".text",
    ".md",
    ".rst",
    ".py",
    ".jsonl",
    ".ndjson",
    ".csv",
    ".tsv",
    ".tokens",
    ".raw",
)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
TABLE_SUFFIXES = (".csv", ".tsv")

Unit = Literal["line", "file", "chunk"]
UNITS = ("line", "file", "chunk")
CHUNK_CHARS = 1 << 20  # unit="chunk": pieces of about this many characters


def resolve_files(paths: Iterable[str | os.PathLike], suffixes: Sequence[str] = TEXT_SUFFIXES) -> list[Path]:
    """Expand directories (recursively, sorted; files with one of `suffixes`) and check every path exists.

    Called before any file is read, so a typo fails at once rather than after an hour of work.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise CorpusError(f"{path}: directory has no files ending in {', '.join(suffixes)}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise CorpusError(f"{path}: not a regular file or directory")
        else:
            raise MissingFileError(f"{path}: no such file or directory")
    if not files:
        raise CorpusError("no input files given; pass one or more FILE or DIRECTORY arguments")
    return files


class Corpus:
    """A re-iterable stream of documents from files.

    field:  JSONL key holding the text (default "text").
    column: CSV/TSV column holding the text (default "text", else "sentence", else an error listing them).
    unit:   for plain text, "line" (each non-blank line is a document, without its end-of-line), "file"
            (each file is one) or "chunk" (each file in pieces that keep every character; see `iter_chunks`).
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        field: str = "text",
        column: str | None = None,
        unit: Unit = "line",
        suffixes: Sequence[str] = TEXT_SUFFIXES,
    ):
        if unit not in UNITS:
            raise CorpusError(f"unit must be one of {', '.join(map(repr, UNITS))}, got {unit!r}")
        self.files = resolve_files(paths, suffixes)
        self.field = field
        self.column = column
        self.unit = unit

    def __iter__(self) -> Iterator[str]:
        empty = True
        for path in self.files:
            for doc in iter_file(path, field=self.field, column=self.column, unit=self.unit):
                if empty and doc.strip():
                    empty = False
                yield doc
        if empty:
            names = ", ".join(str(p) for p in self.files[:3]) + (" ..." if len(self.files) > 3 else "")
            raise CorpusError(
                f"empty corpus: no text in {names}; check the files and the field/column option"
            )

    def check(self) -> Corpus:
        """Read every file once, keeping nothing: each must be UTF-8 and the corpus must hold some text.

        For commands to call before they print or write anything: a bad byte or an empty file is then one
        line naming the file, not an error halfway through the work. Decoding runs at hundreds of MB/s.
        """
        for path in self.files:
            check_utf8(path)
        for doc in self:  # stops at the first document with text; an empty corpus raises at the end
            if doc.strip():
                break
        return self

    @property
    def num_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)

    def __repr__(self) -> str:
        return f"Corpus({len(self.files)} files, {self.num_bytes:,} bytes)"


def read_corpus(paths: Iterable[str | os.PathLike], **options) -> Iterator[str]:
    """Stream the documents of `paths` (see `Corpus` for the options)."""
    return iter(Corpus(paths, **options))


def iter_file(
    path: str | os.PathLike, *, field: str = "text", column: str | None = None, unit: Unit = "line"
) -> Iterator[str]:
    """Documents of one file, chosen by its suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        yield from _iter_jsonl(path, field)
    elif suffix in TABLE_SUFFIXES:
        yield from _iter_table(path, column)
    elif unit == "file":
        yield read_text(path)
    elif unit == "chunk":
        yield from iter_chunks(path)
    else:
        for _, line in iter_lines(path):
            if line.strip():
                yield line


def read_text(path: str | os.PathLike) -> str:
    """A whole UTF-8 file (BOM dropped); a bad byte raises `CorpusError` with its offset."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _not_utf8(path, exc.start, line, data[exc.start : exc.start + 1]) from None
    return text[1:] if text.startswith("\ufeff") else text


def check_utf8(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> None:
    """Raise `CorpusError` (file, byte offset, line) at the first byte of `path` that is not UTF-8, reading
    it in chunks; a character cut by a chunk boundary is carried over to the next chunk."""
    path = Path(path)
    offset, lines, carry = 0, 0, b""
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(chunk_bytes)
            data = carry + chunk
            try:
                data.decode("utf-8")
                end = len(data)
            except UnicodeDecodeError as exc:
                if not (chunk and exc.reason == "unexpected end of data"):
                    line = lines + data.count(b"\n", 0, exc.start) + 1
                    raise _not_utf8(path, offset + exc.start, line, data[exc.start : exc.start + 1]) from None
                end = exc.start  # the start of a character the next chunk completes
            offset, lines, carry = offset + end, lines + data.count(b"\n", 0, end), data[end:]
            if not chunk:
                return


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number, line without its end-of-line) for each line of a UTF-8 file, streamed."""
    for number, line in _iter_raw_lines(path):
        yield number, line.rstrip("\r\n")


def iter_chunks(path: str | os.PathLike, chunk_chars: int = CHUNK_CHARS) -> Iterator[str]:
    """A UTF-8 file in pieces of about `chunk_chars` that keep every character, newlines included, streamed.

    Joined, the pieces are `read_text(path)`. A piece ends only where a line ending sits between two
    non-space characters ("...end.\nNext..."): there every tokenizer's pre-tokenizer cuts anyway (GPT-2's
    regex makes the newline a word of its own), so training on the pieces counts the same words as training
    on the whole file would. A file with no such place stays one piece.

        >>> import pathlib, tempfile
        >>> play = pathlib.Path(tempfile.mkdtemp()) / "play.txt"
        >>> _ = play.write_text("First line.\\nSecond.\\n  indented\\n")
        >>> list(iter_chunks(play, chunk_chars=10))
        ['First line.\\n', 'Second.\\n  indented\\n']
    """
    pieces: list[str] = []
    size = 0
    for _, line in _iter_raw_lines(path):
        if size >= chunk_chars and _cuttable(pieces[-1], line):
            yield "".join(pieces)
            pieces, size = [], 0
        pieces.append(line)
        size += len(line)
    if pieces:
        yield "".join(pieces)


def _cuttable(previous: str, line: str) -> bool:
    """Whether a piece may end after `previous` (a line with its ending) and the next begin with `line`."""
    body = previous.rstrip("\r\n")
    return body != previous and body[-1:].strip() != "" and line[:1].strip() != ""


def _iter_raw_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number, line with its end-of-line) for each line of a UTF-8 file (BOM dropped), streamed."""
    path = Path(path)
    offset = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8(path, offset + exc.start, number, raw[exc.start : exc.start + 1]) from None
            if number == 1 and line.startswith("\ufeff"):
                line = line[1:]
            offset += len(raw)
            yield number, line


def read_items(source: str | os.PathLike, *, option: str = "", what: str = "text") -> list[str]:
    """The non-blank lines of a UTF-8 file (end-of-line removed), or of standard input when `source` is
    ``-``: the inputs of the verbs that take ``--file`` / ``--prompts``. A missing, empty or non-UTF-8 file
    is a one-line error that names `option` (e.g. ``--file``), the file and, for bad bytes, the line.
    """
    where = f"{option} {source}" if option else str(source)
    if str(source) == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        try:
            lines = data.decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise _not_utf8(
                Path("standard input"), exc.start, line, data[exc.start : exc.start + 1]
            ) from None
    else:
        path = Path(source)
        if path.is_dir():
            raise CorpusError(f"{where}: a directory; give a file with one {what} per line")
        if not path.is_file():
            raise MissingFileError(f"{where}: no such file")
        try:
            lines = [line for _, line in iter_lines(path)]
        except CorpusError as exc:
            raise CorpusError(f"{option + ' ' if option else ''}{exc}") from None
    items = [line for line in lines if line.strip()]
    if not items:
        raise CorpusError(f"{where}: no text (empty); expected one {what} per line")
    return items


def stdlib_files(include_tests: bool = False) -> list[Path]:
    """The Python standard library's own ``.py`` files: lmforge's embedded default corpus.

    Found through `sysconfig`, so it is present wherever Python is. Third-party packages (site-packages)
    are left out; so are the test suites unless `include_tests`, since some of them are deliberately not
    UTF-8.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages", "__pycache__"}
    if not include_tests:
        skip |= {"test", "tests", "idle_test"}
    files = []
    for path in sorted(root.rglob("*.py")):
        parts = set(path.relative_to(root).parts[:-1])
        if not parts & skip:
            files.append(path)
    if not files:
        raise CorpusError(f"no .py files found under the standard library at {root}")
    return files


# --- internals ---------------------------------------------------------------------------------------


def _not_utf8(path: Path, offset: int, line: int, byte: bytes) -> CorpusError:
    return CorpusError(
        f"{path}: byte {offset} (line {line}) is not valid UTF-8 ({byte!r}); "
        "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
    )


def iter_json_objects(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file; a line that is not a JSON object is a
    `CorpusError` naming the file and the line."""
    path = Path(path)
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise CorpusError(
                f"{path}:{number}: expected a JSON object per line, got {type(record).__name__}"
            )
        yield number, record


def _iter_jsonl(path: Path, field: str) -> Iterator[str]:
    for number, record in iter_json_objects(path):
        if field not in record:
            raise CorpusError(
                f"{path}:{number}: no field '{field}' (fields: {', '.join(record) or 'none'}); "
                "choose one with the field option"
            )
        value = record[field]
        if not isinstance(value, str):
            raise CorpusError(f"{path}:{number}: field '{field}' is {type(value).__name__}, not a string")
        yield value


def iter_table(path: str | os.PathLike) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each row of a CSV or TSV file, the header line first (its names stripped);
    blank rows are skipped, and a row with another number of cells than the header is a `CorpusError`
    naming its line. TSV is split on tabs with no quoting (as GLUE ships it), CSV read as RFC 4180 (quoted
    cells may hold commas and newlines)."""
    path = Path(path)
    lines = (line + "\n" for _, line in iter_lines(path))
    if path.suffix.lower() == ".tsv":
        rows = (line.rstrip("\n").split("\t") for line in lines)
    else:
        rows = csv.reader(lines)
    header: list[str] | None = None
    for number, cells in enumerate(rows, 1):
        if header is None:
            header = [h.strip() for h in cells]
            yield number, header
            continue
        if not any(cell.strip() for cell in cells):
            continue
        where = getattr(rows, "line_num", number)
        if len(cells) != len(header):
            raise CorpusError(f"{path}:{where}: {len(cells)} cells, but the header has {len(header)}")
        yield where, cells


def iter_records(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(line number, record) of each entry of a corpus file, by its suffix: a JSONL object, a CSV/TSV row as
    {column: cell}, or a non-blank line of plain text as {"text": line}.

        >>> import pathlib, tempfile
        >>> table = pathlib.Path(tempfile.mkdtemp()) / "reviews.csv"
        >>> _ = table.write_text('text,date\\n"Great, really",2024-03\\n')
        >>> list(iter_records(table))
        [(2, {'text': 'Great, really', 'date': '2024-03'})]
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        yield from iter_json_objects(path)
    elif suffix in TABLE_SUFFIXES:
        rows = iter_table(path)
        _, header = next(rows, (0, []))
        for number, cells in rows:
            yield number, dict(zip(header, cells, strict=True))
    else:
        for number, line in iter_lines(path):
            if line.strip():
                yield number, {"text": line}


def _iter_table(path: Path, column: str | None) -> Iterator[str]:
    index = 0
    for number, cells in iter_table(path):
        if number == 1:
            header = cells
            if column is None:
                column = next((c for c in ("text", "sentence") if c in header), None)
                if column is None:
                    raise CorpusError(
                        f"{path}:1: no 'text' or 'sentence' column (columns: {', '.join(header)}); "
                        "choose one with the column option"
                    )
            if column not in header:
                raise CorpusError(f"{path}:1: no column '{column}' (columns: {', '.join(header)})")
            index = header.index(column)
            continue
        yield cells[index].strip()
