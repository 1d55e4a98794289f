"""The index on disk: chunks in SQLite, their embeddings as a memory-mapped matrix, BM25 and HNSW beside.

    IDX/manifest.json          what the index is: embedder (hash, dimension, pooling, normalisation),
                               chunking, counts, BM25 settings, the HNSW index's measured recall, and
                               `data`: the version directory that holds the current files
    IDX/v-000003/chunks.sqlite documents (id, title, text) and chunks (document, offsets, text)
    IDX/v-000003/embeddings.npy float32 or float16 (chunks, dim), L2-normalised rows: cosine = a dot product
    IDX/v-000003/bm25/         bm25s's index over the chunk texts (Porter stems, English stop words)
    IDX/v-000003/ann.faiss     faiss HNSW over the embeddings (inner product)

Writes are atomic. `build` into a new directory fills a hidden sibling and renames it into place; `build`
over an existing index and `add` write a whole new version directory, then replace manifest.json (one
atomic rename): until that moment readers and a killed writer see the previous version, untouched; after
it, the new one. Older version directories and unfinished ones are removed by the next write. One writer
at a time.

`add` rewrites the BM25 index over every chunk, old and new: document frequencies and the average length
then match a `build` of all the documents at once (updating only the new chunks' scores leaves the old
ones with stale statistics).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmforge.errors import ConfigError, LmforgeError, MissingFileError
from lmforge.io import write_json
from lmforge.search.documents import (
    DEFAULT_FIELDS,
    Chunk,
    Document,
    Fields,
    paragraphs,
    read_documents,
    token_windows,
)

FORMAT = "lmforge-index/1"
DTYPES = ("float32", "float16")  # of the stored embeddings
MANIFEST = "manifest.json"
BM25_SETTINGS = {"k1": 1.5, "b": 0.75, "method": "lucene", "stopwords": "en", "stemmer": "porter"}
HNSW_SETTINGS = {"M": 32, "ef_construction": 80, "ef_search": 128}
ANN_PROBES = 200  # synthetic queries that measure the HNSW index's recall@10 against exact search


class EmbedderMismatchError(ConfigError):
    """The embedder given is not the one the index was built with."""


@dataclass(frozen=True)
class Chunking:
    """By paragraph (chunk_tokens None), or windows of `chunk_tokens` tokens overlapping by `overlap`."""

    chunk_tokens: int | None = None
    overlap: int = 0

    def to_dict(self) -> dict:
        if self.chunk_tokens is None:
            return {"mode": "paragraph"}
        return {"mode": "tokens", "chunk_tokens": self.chunk_tokens, "overlap": self.overlap}

    @classmethod
    def from_dict(cls, data: dict) -> Chunking:
        if data.get("mode") == "tokens":
            return cls(int(data["chunk_tokens"]), int(data["overlap"]))
        return cls()

    def cut(self, document: Document, tokenizer) -> list[Chunk]:
        if self.chunk_tokens is None:
            return paragraphs(document)
        return token_windows(document, tokenizer, self.chunk_tokens, self.overlap)


@dataclass(frozen=True)
class StoredChunk:
    chunk_id: int  # its row in the embedding matrix
    doc_id: str
    title: str
    start: int
    end: int
    text: str


def require(module: str):
    """Import one of the `search` extra's libraries (bm25s, faiss), or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise LmforgeError(f"lmforge.search needs {module}: pip install 'lmforge[search]'") from None


# --- the embedder ---------------------------------------------------------------------------------------


def embedder_identity(source) -> dict:
    """{"source", "hash"} of an embedder: a model source (DIR, py:PACKAGE/DIR, a Hugging Face checkpoint) or
    a loaded `SentenceEmbedding`, hashed over the files of its directory (`checkpoint_hash`)."""
    from lmforge.model_source import checkpoint_hash, resolve_model_source

    spec = getattr(source, "source", source)
    directory = resolve_model_source(str(spec), name="--embedder")
    spec = str(spec)
    if not spec.startswith("py:"):
        spec = str(Path(spec).resolve())
    return {"source": spec, "hash": checkpoint_hash(directory)}


def load_embedder(source, device: str = "cpu"):
    """A `SentenceEmbedding` (returned as is when `source` already is one)."""
    from lmforge.pipelines import SentenceEmbedding

    if isinstance(source, SentenceEmbedding):
        return source
    return SentenceEmbedding.load(str(source), name="--embedder", device=device)


# --- the index --------------------------------------------------------------------------------------------


class Index:
    """An index opened for reading: `Index.open(IDX)`; `search` lives in `lmforge.search.retrieval`."""

    def __init__(self, directory: Path, manifest: dict, embedder=None):
        self.directory = Path(directory)
        self.manifest = manifest
        self.data = self.directory / manifest["data"]
        self._embedder = embedder
        self._bm25 = None
        self._ann = None
        self.embeddings = np.load(self.data / "embeddings.npy", mmap_mode="r")  # (chunks, dim) float32/16
        self.connection = sqlite3.connect(
            f"file:{self.data / 'chunks.sqlite'}?mode=ro", uri=True, check_same_thread=False
        )
        self.doc_ids: list[str] = [
            row[0] for row in self.connection.execute("SELECT doc_id FROM chunks ORDER BY chunk_id")
        ]
        # chunks of one document are consecutive rows: its best chunk is a maximum over a slice
        starts = [0] + [i for i in range(1, len(self.doc_ids)) if self.doc_ids[i] != self.doc_ids[i - 1]]
        self.doc_starts = np.asarray(starts, dtype=np.int64)
        self.doc_order = [self.doc_ids[i] for i in starts]

    @classmethod
    def open(cls, directory: str | os.PathLike, *, embedder=None) -> Index:
        """The index in `directory`. `embedder` (a source or a `SentenceEmbedding`): use it instead of the
        one the manifest names, after checking it is the same model; None loads the recorded one when a
        dense search first needs it."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        if embedder is not None:
            check_embedder(manifest, embedder_identity(embedder), directory)
            embedder = load_embedder(embedder) if not isinstance(embedder, str | os.PathLike) else embedder
        return cls(directory, manifest, embedder)

    def __len__(self) -> int:
        return len(self.doc_ids)

    @property
    def num_documents(self) -> int:
        return len(self.doc_order)

    @property
    def embedder(self):
        """The `SentenceEmbedding` the index was built with, loaded (and checked) on first use."""
        if self._embedder is None or isinstance(self._embedder, str | os.PathLike):
            recorded = self._embedder or self.manifest["embedder"]["source"]
            if self._embedder is None:
                try:
                    identity = embedder_identity(recorded)
                except MissingFileError as exc:
                    raise MissingFileError(f"{exc}; give the index's embedder with --embedder") from None
                check_embedder(self.manifest, identity, self.directory)
            self._embedder = load_embedder(recorded)
        return self._embedder

    @property
    def bm25(self):
        if self._bm25 is None:
            self._bm25 = require("bm25s").BM25.load(
                str(self.data / "bm25"), mmap=True, show_progress=False, verbosity=0
            )
        return self._bm25

    @property
    def ann(self):
        if self._ann is None:
            self._ann = require("faiss").read_index(str(self.data / "ann.faiss"))
            self._ann.hnsw.efSearch = self.manifest["ann"]["ef_search"]
        return self._ann

    def chunks(self, chunk_ids: Sequence[int]) -> list[StoredChunk]:
        """The stored chunks, in the order asked."""
        ids = [int(i) for i in chunk_ids]
        if not ids:
            return []
        rows = self.connection.execute(
            f"SELECT chunk_id, doc_id, title, start, end, text FROM chunks WHERE chunk_id IN ({','.join('?' * len(ids))})",
            ids,
        )
        found = {row[0]: StoredChunk(*row) for row in rows}
        return [found[i] for i in ids]

    def document_text(self, doc_id: str) -> str:
        row = self.connection.execute("SELECT text FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None:
            raise LmforgeError(f"{self.directory}: no document {doc_id!r}")
        return row[0]

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised rows."""
        return _unit_rows(np.stack([r.vector for r in self.embedder(texts, batch_size=batch_size)]))

    def close(self) -> None:
        self.connection.close()

    def __repr__(self) -> str:
        return f"Index({self.directory}: {self.num_documents:,} documents, {len(self):,} chunks, {self.manifest['embedder']['source']})"


def read_manifest(directory: Path) -> dict:
    """The manifest of an index directory, checked; a missing or half-written index is a one-line error."""
    if not directory.is_dir():
        what = "a file, not a directory" if directory.exists() else "no such directory"
        raise MissingFileError(f"--index {directory}: {what} (build one with `lmforge index build`)")
    path = directory / MANIFEST
    if not path.is_file():
        raise MissingFileError(
            f"--index {directory}: no {MANIFEST}: not an index, or a build that was interrupted (build it again)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LmforgeError(f"--index {directory}: {path} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise LmforgeError(f"--index {directory}: {path} is not an lmforge index manifest (format {FORMAT})")
    data = directory / str(manifest.get("data", ""))
    missing = [n for n in ("chunks.sqlite", "embeddings.npy", "bm25", "ann.faiss") if not (data / n).exists()]
    if missing:
        raise MissingFileError(
            f"--index {directory}: {data} lacks {', '.join(missing)} (a damaged index; build it again)"
        )
    return manifest


def check_embedder(manifest: dict, identity: dict, directory: Path) -> None:
    recorded = manifest["embedder"]
    if identity["hash"] != recorded["hash"]:
        raise EmbedderMismatchError(
            f"--embedder {identity['source']} is not the embedder of the index {directory} "
            f"({recorded['source']}, hash {recorded['hash'][:12]}; this one hashes to {identity['hash'][:12]}); "
            "use that model, or build a new index"
        )


# --- building and adding ----------------------------------------------------------------------------------


def build_index(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    embedder,
    *,
    chunking: Chunking = Chunking(),
    fields: Fields = DEFAULT_FIELDS,
    batch_size: int = 32,
    dtype: str = "float32",
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> Path:
    """Index the documents of `paths` into `out` (a new directory, or an index to replace). Returns `out`.
    `dtype` "float16" stores the embeddings in half the space (scores agree to ~1e-3; HNSW is built from
    the float32 vectors)."""
    out = Path(out)
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if out.exists() and not (out / MANIFEST).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise LmforgeError(f"--out {out}: exists and is not an index; choose a new directory")
    if not out.parent.is_dir():
        raise MissingFileError(f"--out {out}: directory {out.parent} does not exist; create it first")
    documents = read_documents(paths, fields)
    require("bm25s"), require("faiss")  # before the long part: the extra must be installed
    identity = embedder_identity(embedder)
    pipe = load_embedder(embedder)
    chunks = _cut(documents, chunking, pipe.tokenizer)
    log(f"{len(documents):,} documents → {len(chunks):,} chunks")
    vectors = _embed(pipe, [c.text for c in chunks], batch_size, progress)
    manifest = {
        "format": FORMAT,
        "embedder": {
            **identity,
            "dim": pipe.dim,
            "pooling": pipe.pooling,
            "normalize": pipe.normalize,
            "max_length": pipe.embedder.max_length,
        },
        "metric": "cosine",
        "dtype": dtype,
        "chunking": chunking.to_dict(),
        "bm25": BM25_SETTINGS,
        "created": _now(),
    }
    if (out / MANIFEST).is_file():  # replace an index: a new version beside the old, then the pointer
        previous = read_manifest(out)
        _write_version(out, previous["version"] + 1, manifest, documents, chunks, vectors)
        return out
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        _write_version(scratch, 1, manifest, documents, chunks, vectors)
        if out.is_dir():
            out.rmdir()  # an empty directory made for it
        os.rename(scratch, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def add_to_index(
    directory: str | os.PathLike,
    paths: Sequence[str | os.PathLike],
    *,
    embedder=None,
    fields: Fields = DEFAULT_FIELDS,
    batch_size: int = 32,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> Path:
    """Add the documents of `paths` to the index in `directory`; the same as building it with them."""
    index = Index.open(directory, embedder=embedder)
    manifest = index.manifest
    documents = read_documents(paths, fields)
    old_documents = [
        Document(*row)
        for row in index.connection.execute("SELECT doc_id, title, text FROM documents ORDER BY position")
    ]
    known = {d.doc_id for d in old_documents}
    again = next((d.doc_id for d in documents if d.doc_id in known), None)
    if again is not None:
        raise LmforgeError(f"document id {again!r} is already in the index {directory}; ids must be unique")
    pipe = index.embedder
    chunks = _cut(documents, Chunking.from_dict(manifest["chunking"]), pipe.tokenizer)
    log(f"{len(documents):,} documents → {len(chunks):,} chunks, added to {len(index):,}")
    old_chunks = [
        Chunk(*row)
        for row in index.connection.execute(
            "SELECT doc_id, title, start, end, text FROM chunks ORDER BY chunk_id"
        )
    ]
    vectors = np.concatenate(
        [
            np.asarray(index.embeddings, dtype=np.float32),
            _embed(pipe, [c.text for c in chunks], batch_size, progress),
        ]
    )
    index.close()
    _write_version(
        Path(directory),
        manifest["version"] + 1,
        dict(manifest),
        old_documents + documents,
        old_chunks + chunks,
        vectors,
    )
    return Path(directory)


def _cut(documents: list[Document], chunking: Chunking, tokenizer) -> list[Chunk]:
    chunks = [chunk for document in documents for chunk in chunking.cut(document, tokenizer)]
    if not chunks:
        raise LmforgeError("empty corpus: the documents hold no text to index")
    return chunks


def _embed(pipe, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
    from tqdm.auto import tqdm

    block = batch_size * 8  # the pipeline sorts each block by length: less padding per batch
    parts = []
    with tqdm(total=len(texts), desc="embedding", unit="chunk", disable=not progress, leave=False) as bar:
        for first in range(0, len(texts), block):
            results = pipe(texts[first : first + block], batch_size=batch_size)
            parts.append(np.stack([r.vector for r in results]))
            bar.update(len(results))
    return _unit_rows(np.concatenate(parts).astype(np.float32))


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def _write_version(
    directory: Path,
    version: int,
    manifest: dict,
    documents: list[Document],
    chunks: list[Chunk],
    vectors: np.ndarray,
) -> None:
    """Fill `directory`/v-VERSION (through a `.partial` name), then point manifest.json at it."""
    current = (
        json.loads((directory / MANIFEST).read_text())["data"] if (directory / MANIFEST).is_file() else None
    )
    for stale in directory.glob("v-*"):  # left by a writer that died before or at its switch
        if stale.name != current:
            shutil.rmtree(stale)
    name = f"v-{version:06d}"
    partial = directory / f"{name}.partial"
    partial.mkdir()
    _write_sqlite(partial / "chunks.sqlite", documents, chunks)
    np.save(partial / "embeddings.npy", vectors.astype(manifest.get("dtype", "float32")))
    _write_bm25(partial / "bm25", [c.text for c in chunks])
    manifest["ann"] = _write_hnsw(partial / "ann.faiss", vectors)
    for path in partial.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    os.rename(partial, directory / name)
    manifest.update(
        version=version,
        data=name,
        documents=len(documents),
        chunks=len(chunks),
        dim=int(vectors.shape[1]),
        updated=_now(),
    )
    write_json(directory / MANIFEST, manifest, newline=True)  # the atomic switch
    for old in directory.glob("v-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def _write_sqlite(path: Path, documents: list[Document], chunks: list[Chunk]) -> None:
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "CREATE TABLE documents (doc_id TEXT PRIMARY KEY, title TEXT, text TEXT, position INTEGER)"
        )
        connection.execute(
            "CREATE TABLE chunks (chunk_id INTEGER PRIMARY KEY, doc_id TEXT, title TEXT, start INTEGER, end INTEGER, text TEXT)"
        )
        connection.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?)",
            ((d.doc_id, d.title, d.text, i) for i, d in enumerate(documents)),
        )
        connection.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
            ((i, c.doc_id, c.title, c.start, c.end, c.text) for i, c in enumerate(chunks)),
        )
    connection.close()


def bm25_tokens(texts: list[str]) -> list[list[str]]:
    """The BM25 terms of each text: bm25s's word pattern, English stop words out, Porter stems."""
    from lmforge.metrics.porter import stem

    return require("bm25s").tokenize(
        texts,
        stopwords=BM25_SETTINGS["stopwords"],
        stemmer=lambda words: [stem(w) for w in words],
        return_ids=False,
        show_progress=False,
    )


def _write_bm25(path: Path, texts: list[str]) -> None:
    retriever = require("bm25s").BM25(
        k1=BM25_SETTINGS["k1"], b=BM25_SETTINGS["b"], method=BM25_SETTINGS["method"]
    )
    retriever.index(bm25_tokens(texts), show_progress=False)
    retriever.save(str(path), show_progress=False)


def _write_hnsw(path: Path, vectors: np.ndarray) -> dict:
    """A faiss HNSW index over the rows, and its recall@10 against exact search, measured on synthetic
    queries: the normalised mean of two chunks' vectors, a point between documents as a query is."""
    faiss = require("faiss")
    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_SETTINGS["M"], faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_SETTINGS["ef_construction"]
    index.add(np.ascontiguousarray(vectors))
    index.hnsw.efSearch = HNSW_SETTINGS["ef_search"]
    faiss.write_index(index, str(path))
    generator = np.random.default_rng(0)
    pairs = generator.integers(0, len(vectors), size=(min(ANN_PROBES, len(vectors)), 2))
    queries = _unit_rows(vectors[pairs[:, 0]] + vectors[pairs[:, 1]])
    k = min(10, len(vectors))
    exact = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]
    _, approximate = index.search(queries, k)
    recall = float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approximate, exact, strict=True)]))
    return {"kind": "hnsw", **HNSW_SETTINGS, "recall@10": round(recall, 4), "probes": len(queries)}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
