"""FastText's subword table: hashed character n-grams and the rows they point at.

A word is "<word>" cut into character n-grams, each hashed into one of `bucket` rows with fastText's hash;
an unknown word's vector is the mean of its n-grams' trained rows. `fasttext.py` trains the rows;
`vectors.py` reads them back beside saved vectors (`PATH.ngrams.npz`), so loaded vectors still answer for
unknown words. Both build on this module, never on each other.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lmforge.errors import LmforgeError
from lmforge.io import atomic_write

NGRAMS_SUFFIX = ".ngrams.npz"


def fasttext_hash(data: bytes) -> int:
    """fastText's n-gram hash: 32-bit FNV-1a, each byte read as a *signed* char (fastText's C++ casts it
    to int8_t, then to uint32_t), so a byte ≥ 0x80 is sign-extended before the XOR. gensim's
    `ft_hash_bytes` does the same, so the bucket ids agree with both.

    >>> fasttext_hash(b"")
    2166136261
    >>> fasttext_hash(b"a")
    3826002220
    >>> fasttext_hash("é".encode())  # plain FNV-1a over unsigned bytes would give 513665217
    1023043777
    """
    h = 2166136261
    for byte in data:
        h = ((h ^ (byte | 0xFFFFFF00 if byte >= 0x80 else byte)) * 16777619) & 0xFFFFFFFF
    return h


def char_ngrams(word: str, min_n: int = 3, max_n: int = 6) -> list[str]:
    """The character n-grams of "<word>", shortest first.

    >>> char_ngrams("cat", 3, 4)
    ['<ca', 'cat', 'at>', '<cat', 'cat>']
    """
    marked = f"<{word}>"
    return [marked[i : i + n] for n in range(min_n, max_n + 1) for i in range(len(marked) - n + 1)]


def ngram_buckets(word: str, min_n: int, max_n: int, bucket: int) -> list[int]:
    """The hash bucket of each of a word's n-grams, repeats kept: fastText and gensim average over every
    n-gram occurrence, so "<banana>"'s "ana" weighs twice and two n-grams sharing a bucket both count."""
    return [fasttext_hash(gram.encode("utf-8")) % bucket for gram in char_ngrams(word, min_n, max_n)]


class NgramTable:
    """The n-gram rows in use (sorted bucket ids and their vectors) and how to hash a word into them."""

    def __init__(self, bucket_ids, bucket_rows: np.ndarray, min_n: int, max_n: int, bucket: int):
        self.bucket_ids = np.asarray(bucket_ids, dtype=np.int64)  # (U,) sorted: the buckets that have a row
        self.bucket_rows = bucket_rows  # (U, D): their vectors
        self.min_n, self.max_n, self.bucket = min_n, max_n, bucket

    def rows(self, word: str) -> np.ndarray:
        """Indices into `bucket_rows` of the word's n-grams that have a row (repeats kept)."""
        wanted = np.array(ngram_buckets(word, self.min_n, self.max_n, self.bucket), dtype=np.int64)
        at = np.searchsorted(self.bucket_ids, wanted)
        at = np.minimum(at, len(self.bucket_ids) - 1)
        return at[self.bucket_ids[at] == wanted] if len(self.bucket_ids) else at[:0]

    def oov_vector(self, word: str) -> np.ndarray | None:
        """Mean of the trained n-gram rows of an unknown word; None when none of its n-grams was trained."""
        rows = self.rows(word)
        if len(rows) == 0:
            return None
        return self.bucket_rows[rows].mean(axis=0)


def ngram_file(vectors_path: str | os.PathLike) -> Path:
    """Where the n-gram rows of the vectors saved at `vectors_path` live."""
    return Path(str(vectors_path) + NGRAMS_SUFFIX)


def write_ngram_file(vectors_path, words: Sequence[str], word_rows: np.ndarray, table: NgramTable) -> Path:
    """The words' own rows and the n-gram table beside the vectors at `vectors_path`, atomically."""
    arrays = {
        "words": np.array(list(words), dtype=object).astype(str),
        "word_rows": word_rows,
        "bucket_ids": table.bucket_ids,
        "bucket_rows": table.bucket_rows,
        "settings": np.array([table.min_n, table.max_n, table.bucket], dtype=np.int64),
    }

    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:  # a file object: np.savez would add .npz to a name
            np.savez(handle, **arrays)

    return atomic_write(ngram_file(vectors_path), write)


def read_ngram_file(vectors_path) -> tuple[list[str], np.ndarray, NgramTable]:
    """(words, their own rows, the n-gram table) saved beside the vectors at `vectors_path`."""
    path = ngram_file(vectors_path)
    if not path.is_file():
        raise LmforgeError(
            f"{path}: no n-gram file beside {vectors_path}; it was not saved by a FastText model"
        )
    with np.load(path, allow_pickle=False) as data:
        min_n, max_n, bucket = (int(x) for x in data["settings"])
        table = NgramTable(data["bucket_ids"], data["bucket_rows"], min_n, max_n, bucket)
        return [str(w) for w in data["words"]], data["word_rows"], table
