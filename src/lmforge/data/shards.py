"""Token shards: a tokenized corpus as memory-mapped arrays on disk, written once and read by every run.

What this file implements:
  - `Encoder`: the small interface a tokenizer needs to fill shards (`encode_batch`, `vocab_size`,
    `eot_id`, `fingerprint`), with `ByteEncoder` (ids 0..255 are the UTF-8 bytes, 256 is end-of-text) and
    `TokenizerEncoder` (wraps an `lmforge.tokenizers.Tokenizer` loaded from its `tokenizer.json`);
  - `prepare_shards`: streams documents from text / JSONL / CSV / TSV files, tokenizes them on several
    processes, puts the end-of-text token after every document, and writes ``train-00000.bin ...`` and
    ``val-00000.bin ...`` (uint16 when the vocabulary fits, else uint32) plus ``meta.json`` (tokenizer
    fingerprint, token and byte counts, the inputs). Run again on unchanged inputs it reuses the shards;
  - `TokenShards`: one split's shards as one long read-only array (``tokens[i:j]`` crosses shard files).

The validation split is either given files (``val_files``, e.g. wikitext-2's valid.txt) or the last
``val_fraction`` of the corpus's text bytes, cut at a line end — for one file like tinyshakespeare this is
nanoGPT's "last 10%" split. A first pass counts the text bytes (streamed) so the cut is known before
writing; nothing ever holds the whole corpus in memory.

    meta = prepare_shards(["input.txt"], "shards/", ByteEncoder(), val_fraction=0.1)
    train = TokenShards("shards/", "train")
    train[:5]                                   # uint16 array: b"First" -> [70, 105, 114, 115, 116]
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lmforge.errors import ConfigError, CorpusError
from lmforge.io import write_json
from lmforge.text import JSONL_SUFFIXES, TABLE_SUFFIXES, Corpus

FORMAT_VERSION = 1
# Documents go to the tokenizer processes in chunks of about this many text bytes: large enough that
# process hand-offs cost little, small enough that memory stays flat on a corpus larger than memory.
CHUNK_BYTES = 1 << 20
# One shard file holds at most this many tokens (1 GiB of uint32), so no single file grows without bound.
SHARD_TOKENS = 1 << 28
# Below this many text bytes a second process costs more than it saves.
PARALLEL_MIN_BYTES = 4 << 20


@runtime_checkable
class Encoder(Protocol):
    """What `prepare_shards` needs from a tokenizer."""

    vocab_size: int  # ids are in [0, vocab_size): decides uint16 vs uint32
    eot_id: int  # written after every document

    def encode_batch(self, texts: list[str]) -> list[list[int]]: ...

    @property
    def fingerprint(self) -> str: ...  # changes whenever the ids would change


class ByteEncoder:
    """UTF-8 bytes as ids 0..255 and 256 as end-of-text: the tokenizer-free baseline.

    >>> ByteEncoder().encode_batch(["hé"])
    [[104, 195, 169]]
    """

    vocab_size = 257
    eot_id = 256
    fingerprint = "bytes-v1"

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [list(text.encode("utf-8")) for text in texts]

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


# Names an end-of-text token goes by, in the order they are tried: GPT-2, BERT, T5/BART, others.
EOT_NAMES = ("<|endoftext|>", "[SEP]", "</s>", "<eos>", "<|eot|>", "[EOS]")


class TokenizerEncoder:
    """An `lmforge.tokenizers.Tokenizer` (a ``tokenizer.json``) as an `Encoder`.

    It pickles as its path, so tokenizer processes reload it rather than copying it. Documents are encoded
    without the tokenizer's own special tokens (no [CLS]/[SEP] pairs): the shard stream only adds `eot`.
    """

    def __init__(self, path: str | os.PathLike, eot: str | None = None):
        from lmforge.tokenizers import load_tokenizer  # lazy: shards work without the tokenizer package

        self.path = Path(path)
        self.eot = eot
        self.tokenizer = load_tokenizer(self.path)
        self.vocab_size = int(self.tokenizer.vocab_size)
        names = (eot,) if eot else EOT_NAMES
        ids = [self._token_id(name) for name in names]
        found = [(n, i) for n, i in zip(names, ids, strict=True) if i is not None]
        if not found:
            raise ConfigError(
                f"{self.path}: no end-of-text token ({', '.join(names)}) in the vocabulary; "
                "add one when training the tokenizer or name one with --eot"
            )
        self.eot_token, self.eot_id = found[0]
        self.fingerprint = "sha256:" + hashlib.sha256(self.path.read_bytes()).hexdigest()

    def _token_id(self, token: str) -> int | None:
        try:
            return self.tokenizer.token_to_id(token)
        except (KeyError, ValueError):  # tokenizers that raise for unknown tokens instead of returning None
            return None

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        try:
            encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        except TypeError:  # a tokenizer without that option adds none
            encodings = self.tokenizer.encode_batch(texts)
        return [list(e.ids) for e in encodings]

    def __reduce__(self):
        return (TokenizerEncoder, (str(self.path), self.eot))


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 holds ids below 65,536 (half the disk and memory bandwidth); larger vocabularies need uint32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


@dataclass
class ShardMeta:
    """What `meta.json` records; `reused` tells whether `prepare_shards` found the shards already there."""

    path: Path
    data: dict[str, Any]
    reused: bool = False

    def tokens(self, split: str) -> int:
        return int(self.data["splits"][split]["tokens"])

    def bytes(self, split: str) -> int:
        return int(self.data["splits"][split]["bytes"])


def prepare_shards(
    files: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    encoder: Encoder,
    *,
    val_files: Sequence[str | os.PathLike] = (),
    val_fraction: float = 0.1,
    field: str = "text",
    column: str | None = None,
    unit: str = "file",
    workers: int | None = None,
    shard_tokens: int = SHARD_TOKENS,
    chunk_bytes: int = CHUNK_BYTES,
    progress: bool = False,
) -> ShardMeta:
    """Tokenize `files` into token shards under `out_dir`; return their metadata.

    unit:    plain text is one document per file ("file", keeps every newline) or per line ("line").
    workers: tokenizer processes (default: every core, at most 8; 1 = in this process).
    progress: a progress bar (stderr) over the text bytes tokenized.
    Re-running with the same files (same sizes and modification times), encoder and options returns the
    existing shards (``meta.reused``) without reading the corpus.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if shard_tokens < 1:
        raise ConfigError(f"shard_tokens must be positive, got {shard_tokens}")
    train_corpus = Corpus(files, field=field, column=column, unit=unit)
    val_corpus = Corpus(val_files, field=field, column=column, unit=unit) if val_files else None
    out = Path(out_dir)
    dtype = token_dtype(encoder.vocab_size)
    if encoder.vocab_size <= encoder.eot_id:
        raise ConfigError(f"eot id {encoder.eot_id} is outside the vocabulary ({encoder.vocab_size})")
    inputs = {
        "files": [_file_stamp(p) for p in train_corpus.files],
        "val_files": [_file_stamp(p) for p in val_corpus.files] if val_corpus else [],
        "val_fraction": 0.0 if val_corpus else val_fraction,
        "field": field,
        "column": column,
        "unit": unit,
        "encoder": encoder.fingerprint,
        "format": FORMAT_VERSION,
    }
    previous = _read_meta(out)
    if previous is not None and previous.get("inputs") == inputs and _shards_intact(out, previous):
        return ShardMeta(out / "meta.json", previous, reused=True)

    for corpus in (train_corpus, val_corpus):  # a bad byte or an empty file: an error before any write
        if corpus is not None:
            corpus.check()
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)  # from here on the old shards no longer count
    for stale in out.glob("*.bin"):
        stale.unlink()
    workers = workers or min(os.cpu_count() or 1, 8)
    if train_corpus.num_bytes + (val_corpus.num_bytes if val_corpus else 0) < PARALLEL_MIN_BYTES:
        workers = 1

    splits: dict[str, dict[str, Any]] = {}
    bar = _progress_bar(train_corpus, val_corpus) if progress else None
    with _EncoderPool(encoder, workers) as pool:
        train_writer = _ShardWriter(out, "train", dtype, shard_tokens)
        val_writer = _ShardWriter(out, "val", dtype, shard_tokens)
        if val_corpus is not None:
            _write_split(pool, _chunks(iter(train_corpus), chunk_bytes), train_writer, encoder.eot_id, bar)
            _write_split(pool, _chunks(iter(val_corpus), chunk_bytes), val_writer, encoder.eot_id, bar)
        else:
            total = sum(len(doc.encode("utf-8")) for doc in train_corpus)  # streamed first pass
            cut = int(round(total * (1.0 - val_fraction)))
            train_docs, val_docs = _split_at_byte(iter(train_corpus), cut)
            _write_split(pool, _chunks(train_docs, chunk_bytes), train_writer, encoder.eot_id, bar)
            _write_split(pool, _chunks(val_docs, chunk_bytes), val_writer, encoder.eot_id, bar)
        for writer in (train_writer, val_writer):
            splits[writer.split] = writer.close()
    if bar is not None:
        bar.close()
    if splits["train"]["tokens"] == 0:
        raise CorpusError("no training tokens: the corpus is empty or val_fraction took all of it")
    if splits["val"]["tokens"] == 0 and val_fraction > 0:
        raise CorpusError("no validation tokens: give --val files or a larger val_fraction")
    data = {
        "format": FORMAT_VERSION,
        "dtype": dtype.name,
        "vocab_size": int(encoder.vocab_size),
        "eot_id": int(encoder.eot_id),
        "tokenizer": encoder.fingerprint,
        "splits": splits,
        "inputs": inputs,
    }
    write_json(out / "meta.json", data)  # written last: its presence means the shards are whole
    return ShardMeta(out / "meta.json", data)


class TokenShards:
    """One split of a shard directory, read through memory maps as one long array of token ids.

    tokens = TokenShards("shards/", "val")
    len(tokens), tokens.dtype, tokens[100:104]      # slices may cross shard files
    """

    def __init__(self, directory: str | os.PathLike, split: str = "train"):
        self.directory = Path(directory)
        meta = _read_meta(self.directory)
        if meta is None:
            raise CorpusError(
                f"{self.directory}: no meta.json — not a shard directory; run `lmforge prepare` first"
            )
        if split not in meta["splits"]:
            raise CorpusError(f"{self.directory}: no split '{split}' (splits: {', '.join(meta['splits'])})")
        self.meta = meta
        self.split = split
        self.dtype = np.dtype(meta["dtype"])
        self.vocab_size = int(meta["vocab_size"])
        self.eot_id = int(meta["eot_id"])
        self.num_bytes = int(meta["splits"][split]["bytes"])
        self.arrays = [
            np.memmap(self.directory / name, dtype=self.dtype, mode="r")
            for name in meta["splits"][split]["files"]
        ]
        self.offsets = np.cumsum([0] + [len(a) for a in self.arrays])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def bytes_per_token(self) -> float:
        return self.num_bytes / max(len(self), 1)

    def count(self, token_id: int) -> int:
        """How many times `token_id` occurs (e.g. the unknown token: text the tokenizer does not cover)."""
        return sum(int(np.count_nonzero(array == token_id)) for array in self.arrays)

    def __getitem__(self, index: slice | int) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            index = int(index) + (len(self) if index < 0 else 0)
            return self.read(index, 1)[0]
        start, stop, step = index.indices(len(self))
        if step != 1:
            raise IndexError("TokenShards supports contiguous slices only")
        return self.read(start, max(stop - start, 0))

    def read(self, start: int, length: int) -> np.ndarray:
        """`length` ids from position `start` (a view when inside one shard, else a copy)."""
        if start < 0 or start + length > len(self):
            raise IndexError(f"tokens [{start}, {start + length}) outside [0, {len(self)})")
        shard = int(np.searchsorted(self.offsets, start, side="right")) - 1
        local = start - int(self.offsets[shard])
        if local + length <= len(self.arrays[shard]):
            return self.arrays[shard][local : local + length]
        pieces, remaining = [], length
        while remaining > 0:
            piece = self.arrays[shard][local : local + remaining]
            pieces.append(piece)
            remaining -= len(piece)
            shard, local = shard + 1, 0
        return np.concatenate(pieces)


def unknown_tokens(directory: str | os.PathLike, unk_id: int | None, split: str = "train") -> str | None:
    """A sentence on the unknown-token ids of a split (text its tokenizer cannot spell), or None if none.

    On gpt-char-shakespeare's shards when its character vocabulary lacked the newline:

        unknown_tokens("runs/gpt-char-shakespeare/shards", tokenizer.token_to_id("[UNK]"))
        # '35,525 of the 1,003,837 train tokens (3.54%) are unknown (id 1): the tokenizer does not cover the corpus'
    """
    if unk_id is None:  # byte-level BPE: every text is spelt
        return None
    tokens = TokenShards(directory, split)
    unknown = tokens.count(unk_id)
    if not unknown:
        return None
    return (
        f"{unknown:,} of the {len(tokens):,} {split} tokens ({100 * unknown / len(tokens):.2f}%) are unknown "
        f"(id {unk_id}): the tokenizer does not cover the corpus"
    )


# --- internals ---------------------------------------------------------------------------------------


def _file_stamp(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _read_meta(directory: Path) -> dict[str, Any] | None:
    path = directory / "meta.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def _shards_intact(directory: Path, meta: dict[str, Any]) -> bool:
    itemsize = np.dtype(meta["dtype"]).itemsize
    for split in meta["splits"].values():
        sizes = [(directory / n).stat().st_size if (directory / n).is_file() else -1 for n in split["files"]]
        if sum(sizes) != split["tokens"] * itemsize or min(sizes, default=0) < 0:
            return False
    return True


def _split_at_byte(docs: Iterator[str], cut: int) -> tuple[Iterator[str], Iterator[str]]:
    """Documents before text byte `cut` and after it; the document holding the cut is split at a line end.

    Returns two iterators over one stream: the first must be exhausted before the second is read.
    """
    held: list[str] = []

    def before() -> Iterator[str]:
        seen = 0
        for doc in docs:
            size = len(doc.encode("utf-8"))
            if seen + size <= cut:
                yield doc
                seen += size
                continue
            encoded = doc.encode("utf-8")
            at = encoded.rfind(b"\n", 0, cut - seen) + 1 or (cut - seen)
            head = encoded[:at].decode("utf-8", errors="ignore")
            tail = encoded[len(head.encode("utf-8")) :].decode("utf-8")
            if head:
                yield head
            if tail:
                held.append(tail)
            return

    def after() -> Iterator[str]:
        yield from held
        yield from docs

    return before(), after()


def _chunks(docs: Iterator[str], chunk_bytes: int) -> Iterator[tuple[list[str], int]]:
    """Group documents into lists of about `chunk_bytes` text bytes; yields (documents, their bytes)."""
    chunk: list[str] = []
    size = 0
    for doc in docs:
        chunk.append(doc)
        size += len(doc.encode("utf-8"))
        if size >= chunk_bytes:
            yield chunk, size
            chunk, size = [], 0
    if chunk:
        yield chunk, size


_worker_encoder: Encoder | None = None


def _init_worker(encoder: Encoder) -> None:
    global _worker_encoder
    _worker_encoder = encoder


def _encode_in_worker(texts: list[str]) -> list[list[int]]:
    assert _worker_encoder is not None
    return _worker_encoder.encode_batch(texts)


class _EncoderPool:
    """`map` over document chunks in order, on `workers` processes (or in this one when workers == 1)."""

    def __init__(self, encoder: Encoder, workers: int):
        self.encoder = encoder
        self.workers = workers
        self.pool = None

    def __enter__(self) -> _EncoderPool:
        if self.workers > 1:
            # spawn, not fork: the parent may hold torch's thread pools, which do not survive a fork
            context = multiprocessing.get_context("spawn")
            self.pool = context.Pool(self.workers, initializer=_init_worker, initargs=(self.encoder,))
        return self

    def imap(self, chunks: Iterator[tuple[list[str], int]]) -> Iterator[tuple[list[list[int]], int]]:
        if self.pool is None:
            for texts, size in chunks:
                yield self.encoder.encode_batch(texts), size
            return
        sizes: list[int] = []

        def texts_only() -> Iterator[list[str]]:
            for texts, size in chunks:
                sizes.append(size)
                yield texts

        # imap keeps chunks in order and pulls the input lazily, so memory stays flat
        for i, ids in enumerate(self.pool.imap(_encode_in_worker, texts_only())):
            yield ids, sizes[i]

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.terminate() if exc[0] else self.pool.close()
            self.pool.join()


def _progress_bar(train_corpus: Corpus, val_corpus: Corpus | None):
    """A bar over the text bytes to tokenize: the files' sizes for plain text (JSONL / CSV hold more than
    their text, so there the bar counts without a total)."""
    from tqdm.auto import tqdm

    corpora = [train_corpus] + ([val_corpus] if val_corpus is not None else [])
    structured = JSONL_SUFFIXES + TABLE_SUFFIXES
    plain = all(p.suffix.lower() not in structured for c in corpora for p in c.files)
    total = sum(c.num_bytes for c in corpora) if plain else None
    return tqdm(total=total, desc="tokenizing", unit="B", unit_scale=True, leave=False)


def _write_split(pool: _EncoderPool, chunks: Iterator, writer: _ShardWriter, eot_id: int, bar=None) -> None:
    for encoded, size in pool.imap(chunks):
        if bar is not None:
            bar.update(size)
        pieces = []
        for ids in encoded:
            pieces.append(np.asarray(ids, dtype=writer.dtype))
            pieces.append(np.asarray([eot_id], dtype=writer.dtype))
        if pieces:
            writer.write(np.concatenate(pieces), size, len(encoded))


class _ShardWriter:
    """Appends token arrays to ``SPLIT-00000.bin``, starting a new file every `shard_tokens` tokens."""

    def __init__(self, directory: Path, split: str, dtype: np.dtype, shard_tokens: int):
        self.directory, self.split, self.dtype, self.shard_tokens = directory, split, dtype, shard_tokens
        self.files: list[str] = []
        self.handle = None
        self.in_current = 0
        self.tokens = 0
        self.bytes = 0
        self.documents = 0

    def _open_next(self) -> None:
        self._close_current()
        name = f"{self.split}-{len(self.files):05d}.bin"
        self.files.append(name)
        self.handle = open(self.directory / name, "wb")
        self.in_current = 0

    def write(self, ids: np.ndarray, text_bytes: int, documents: int) -> None:
        self.bytes += text_bytes
        self.documents += documents
        while len(ids):
            if self.handle is None or self.in_current == self.shard_tokens:
                self._open_next()
            take = min(len(ids), self.shard_tokens - self.in_current)
            self.handle.write(ids[:take].tobytes())
            self.in_current += take
            self.tokens += take
            ids = ids[take:]

    def _close_current(self) -> None:
        if self.handle is not None:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
            self.handle = None

    def close(self) -> dict[str, Any]:
        self._close_current()
        return {"files": self.files, "tokens": self.tokens, "bytes": self.bytes, "documents": self.documents}
