"""FastText (Bojanowski et al. 2017): skip-gram over words and their character n-grams.

- a word is "<word>" cut into character n-grams of 3..6 characters, each hashed into one of `bucket` rows
  with fastText's hash (FNV-1a over the UTF-8 bytes read as signed chars, so the bucket ids are fastText's
  and gensim's); in skip-gram its input vector is the sum of its own row and its n-gram rows divided by
  the n-gram count, as gensim's FastText (fastText divides by count + 1; gensim's divisor scored higher
  over 10 seeds, see docs/embeddings.md), an n-gram that occurs twice ("ana" in "<banana>") or two
  n-grams that share a bucket counted each time, as fastText and gensim count them;
- training is word2vec's negative-sampling kernel (`word2vec.train_block`) with several input rows per
  word, so skip-gram and CBOW both work and share Hogwild threads, tables and learning-rate decay;
- the vector of a known word is the mean of its rows after training (as gensim's FastText); an unknown
  word's vector is the mean of its n-gram rows, so misspellings and inflections get sensible vectors;
- only the buckets some vocabulary word uses are stored (a bucket nothing trained holds only its random
  initial value, so it is left out of unknown words' means rather than adding noise).

`FastTextModel.save(path)` writes the word vectors in the word2vec format (readable by gensim) and the
n-gram rows beside them in `PATH.ngrams.npz`; `load_fasttext` / `WordVectors.load` read both back, so the
loaded vectors still answer for unknown words.

    model = train_fasttext(sentences, FastTextConfig())
    model.vectors["kingly"]        # not in the vocabulary: built from <ki, kin, ing, ngl, gly, ly>, ...
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmforge.embeddings.common import TrainStats, check_device, init_input_vectors
from lmforge.embeddings.ngrams import NgramTable, ngram_buckets, read_ngram_file, write_ngram_file
from lmforge.embeddings.vectors import WordVectors
from lmforge.embeddings.vocab import EncodedCorpus, encode_corpus
from lmforge.embeddings.word2vec import train_on_device
from lmforge.errors import ConfigError


@dataclass
class FastTextConfig:
    method: str = "skipgram"  # FastText's subword model as the paper trains it; "cbow" also works
    dim: int = 100  # gensim's default
    window: int = 5
    min_count: int = 5
    negative: int = 5
    sample: float = 1e-3
    alpha: float = 0.025
    min_alpha: float = 0.0001
    epochs: int = 5
    min_n: int = 3  # shortest character n-gram (fastText's default)
    max_n: int = 6  # longest; 3..6 covers most English affixes
    bucket: int = 2_000_000  # hash buckets for n-grams (fastText's and gensim's default)
    workers: int = 0  # 0 = all cores
    seed: int = 1
    progress: bool = True
    device: str = "auto"  # as Word2VecConfig: auto, cpu, cuda, cuda:N, mps
    backend: str = "auto"  # auto = numba on CPU, torch on a GPU; torch forces the torch path

    def check(self) -> None:
        check_device(self.device, self.backend)
        if self.method not in ("skipgram", "cbow"):
            raise ConfigError(f"method must be 'skipgram' or 'cbow', got {self.method!r}")
        if not 1 <= self.min_n <= self.max_n:
            raise ConfigError(f"need 1 ≤ min_n ≤ max_n, got min_n={self.min_n}, max_n={self.max_n}")
        if self.bucket < 1:
            raise ConfigError(f"bucket must be at least 1, got {self.bucket}")
        for name in ("dim", "window", "min_count", "epochs", "negative"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")


class FastTextModel:
    """Trained FastText vectors: word rows, the n-gram rows in use, and how to hash new words."""

    def __init__(
        self,
        words: Sequence[str],
        word_rows: np.ndarray,  # (V, D): each word's own input row
        bucket_ids: np.ndarray,  # (U,) int64, sorted: the buckets that have a row
        bucket_rows: np.ndarray,  # (U, D): their vectors
        min_n: int,
        max_n: int,
        bucket: int,
    ):
        self.words = list(words)
        self.word_rows = word_rows
        self.ngrams = NgramTable(bucket_ids, bucket_rows, min_n, max_n, bucket)
        self.bucket_ids, self.bucket_rows = self.ngrams.bucket_ids, bucket_rows
        self.min_n, self.max_n, self.bucket = min_n, max_n, bucket
        full = np.empty_like(word_rows)
        for i, word in enumerate(self.words):  # a known word: the mean of its own row and its n-gram rows
            rows = self.ngrams.rows(word)
            full[i] = (word_rows[i] + bucket_rows[rows].sum(axis=0)) / (1 + len(rows))
        self.vectors = WordVectors(self.words, full, oov=self.oov_vector)

    def oov_vector(self, word: str) -> np.ndarray | None:
        """Mean of the trained n-gram rows of an unknown word; None when none of its n-grams was trained."""
        return self.ngrams.oov_vector(word)

    def save(self, path: str | os.PathLike, binary: bool | None = None) -> Path:
        """Word vectors in the word2vec format at `path`, n-gram rows in `path` + '.ngrams.npz'."""
        write_ngram_file(path, self.words, self.word_rows, self.ngrams)
        return self.vectors.save(path, binary)


def load_fasttext(path: str | os.PathLike) -> FastTextModel:
    """Read what `FastTextModel.save` wrote (needs the `.ngrams.npz` beside the vectors)."""
    words, word_rows, table = read_ngram_file(path)
    return FastTextModel(
        words, word_rows, table.bucket_ids, table.bucket_rows, table.min_n, table.max_n, table.bucket
    )


@dataclass
class TrainedFastText:
    model: FastTextModel
    stats: TrainStats

    @property
    def vectors(self) -> WordVectors:
        return self.model.vectors


def train_fasttext(
    sentences: Iterable[Sequence[str]] | EncodedCorpus, config: FastTextConfig | None = None
) -> TrainedFastText:
    """Train FastText vectors (words + hashed character n-grams) on tokenized sentences."""
    config = config or FastTextConfig()
    config.check()
    corpus = sentences if isinstance(sentences, EncodedCorpus) else encode_corpus(sentences, config.min_count)
    words = corpus.vocab.words
    vocab_size = len(words)
    per_word = [ngram_buckets(w, config.min_n, config.max_n, config.bucket) for w in words]
    used = np.unique(
        np.concatenate([np.array(b, dtype=np.int64) for b in per_word if b] or [np.zeros(0, np.int64)])
    )
    # Input rows: 0..V-1 the words, V.. the buckets in use, compacted (sorted bucket id -> row).
    row_lists = [
        np.concatenate([[w], vocab_size + np.searchsorted(used, np.array(b, dtype=np.int64))]).astype(
            np.int32
        )
        for w, b in enumerate(per_word)
    ]
    row_starts = np.zeros(vocab_size + 1, dtype=np.int64)
    np.cumsum([len(r) for r in row_lists], out=row_starts[1:])
    rows = np.concatenate(row_lists).astype(np.int32)
    inputs = init_input_vectors(vocab_size + len(used), config.dim, config.seed, 1.0 / config.dim)
    output = np.zeros((vocab_size, config.dim), dtype=np.float32)
    stats = train_on_device(
        config.device, config.backend, corpus, inputs, output, rows, row_starts,
        cbow=config.method == "cbow", window=config.window, negative=config.negative, sample=config.sample,
        alpha=config.alpha, min_alpha=config.min_alpha, epochs=config.epochs, workers=config.workers,
        seed=config.seed, progress=config.progress, label=f"fasttext-{config.method}",
    )  # fmt: skip
    model = FastTextModel(
        words, inputs[:vocab_size], used, inputs[vocab_size:], config.min_n, config.max_n, config.bucket
    )
    return TrainedFastText(model, stats)
