"""Documents in, chunks out: what an index holds, read from any corpus format lmforge reads.

- JSONL (``.jsonl``/``.ndjson``): one record per line giving the document's id, title and text (fields
  `id`, `title`, `text` by default; a record without an id is ``FILE:LINE``, one without a title has "");
- CSV/TSV: the same names as columns (a header line), the id ``FILE:LINE`` when there is no id column;
- anything else is UTF-8 text, one document per non-blank line, its id ``FILE:LINE``, no title.

A chunk is a piece of one document with its character offsets in it (``text[start:end]``). Two ways to
cut: by paragraph (pieces between blank lines; a one-line document is one paragraph) or by windows of
`chunk_tokens` tokens of the embedder's tokenizer that overlap by `overlap` tokens.

    >>> [(c.start, c.end, c.text) for c in paragraphs(Document("d", "", "One.\\n\\nTwo and\\nthree."))]
    [(0, 4, 'One.'), (6, 20, 'Two and\\nthree.')]
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lmforge.errors import ConfigError, CorpusError
from lmforge.text import JSONL_SUFFIXES, TABLE_SUFFIXES, check_utf8, iter_lines, resolve_files

BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*\n\s*")


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    title: str
    start: int  # character offsets in the document's text, end exclusive
    end: int
    text: str


@dataclass(frozen=True)
class Fields:
    """Where a record keeps its id, title and text (`--id-field`, `--title-field`, `--text-field`)."""

    id: str = "id"
    title: str = "title"
    text: str = "text"


DEFAULT_FIELDS = Fields()


def read_documents(paths: Sequence[str | Path], fields: Fields = DEFAULT_FIELDS) -> list[Document]:
    """Every document of `paths` (files or directories), checked first: each file must exist and be UTF-8,
    ids must be unique, and there must be some text. Problems are one-line `CorpusError`s."""
    files = resolve_files(paths)
    for path in files:
        check_utf8(path)
    documents: list[Document] = []
    seen: dict[str, str] = {}
    for path in files:
        for where, document in _documents_of(path, fields):
            if document.doc_id in seen:
                raise CorpusError(
                    f"{where}: document id {document.doc_id!r} is also at {seen[document.doc_id]}; ids must be unique"
                )
            seen[document.doc_id] = where
            if document.text.strip():
                documents.append(document)
    if not documents:
        names = ", ".join(str(p) for p in files[:3]) + (" ..." if len(files) > 3 else "")
        raise CorpusError(f"empty corpus: no text in {names}; check the files and --text-field")
    return documents


def _documents_of(path: Path, fields: Fields) -> Iterator[tuple[str, Document]]:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        for number, line in iter_lines(path):
            if line.strip():
                where = f"{path}:{number}"
                yield where, _record(_json_object(line, where), where, fields)
    elif suffix in TABLE_SUFFIXES:
        lines = [line for _, line in iter_lines(path)]
        rows = (line.split("\t") for line in lines) if suffix == ".tsv" else csv.reader(lines)
        header = None
        for number, cells in enumerate(rows, 1):
            if header is None:
                header = [cell.strip() for cell in cells]
                if fields.text not in header:
                    raise CorpusError(
                        f"{path}:1: no column {fields.text!r} (columns: {', '.join(header)}); choose one with --text-field"
                    )
                continue
            if not any(cell.strip() for cell in cells):
                continue
            where = f"{path}:{number}"
            if len(cells) != len(header):
                raise CorpusError(f"{where}: {len(cells)} cells, but the header has {len(header)}")
            yield where, _record(dict(zip(header, cells, strict=True)), where, fields)
    else:
        for number, line in iter_lines(path):
            if line.strip():
                yield f"{path}:{number}", Document(f"{path}:{number}", "", line)


def _json_object(line: str, where: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected a JSON object per line, got {type(record).__name__}")
    return record


def _record(record: dict, where: str, fields: Fields) -> Document:
    if fields.text not in record:
        raise CorpusError(
            f"{where}: no field {fields.text!r} (fields: {', '.join(record) or 'none'}); choose one with --text-field"
        )
    values = {}
    for name in (fields.id, fields.title, fields.text):
        value = record.get(name)
        if value is not None and not isinstance(value, str | int):
            raise CorpusError(f"{where}: field {name!r} is {type(value).__name__}, not a string")
        values[name] = "" if value is None else str(value)
    return Document(values[fields.id] or where, values[fields.title], values[fields.text])


# --- chunking ---------------------------------------------------------------------------------------------


def paragraphs(document: Document) -> list[Chunk]:
    """The document's paragraphs (text between blank lines), stripped, with their offsets."""
    chunks, start = [], 0
    for match in [*BLANK_LINES.finditer(document.text), None]:
        end = match.start() if match else len(document.text)
        chunk = _stripped(document, start, end)
        if chunk is not None:
            chunks.append(chunk)
        if match:
            start = match.end()
    return chunks


def token_windows(document: Document, tokenizer, chunk_tokens: int, overlap: int) -> list[Chunk]:
    """Windows of `chunk_tokens` tokens (the embedder's tokenizer, special tokens left out), each starting
    `chunk_tokens - overlap` tokens after the previous; the last window ends at the last token."""
    if not 0 <= overlap < chunk_tokens:
        raise ConfigError(
            f"--overlap must be at least 0 and less than --chunk-tokens ({chunk_tokens}), got {overlap}"
        )
    encoding = tokenizer.encode(document.text, add_special_tokens=False)
    offsets = [span for span in encoding.offsets if span[1] > span[0]]
    chunks, first = [], 0
    while first < len(offsets):
        last = min(first + chunk_tokens, len(offsets)) - 1
        chunk = _stripped(document, offsets[first][0], offsets[last][1])
        if chunk is not None:
            chunks.append(chunk)
        if last == len(offsets) - 1:
            break
        first += chunk_tokens - overlap
    return chunks


def _stripped(document: Document, start: int, end: int) -> Chunk | None:
    piece = document.text[start:end]
    lead = len(piece) - len(piece.lstrip())
    body = piece.strip()
    if not body:
        return None
    return Chunk(document.doc_id, document.title, start + lead, start + lead + len(body), body)
