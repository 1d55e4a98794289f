"""The vocabulary and the encoded corpus that every static-embedding trainer reads.

- `Vocabulary`: words kept (count ≥ min_count), sorted by descending count, with their counts;
- `EncodedCorpus`: the whole corpus as one flat int32 array of word ids plus sentence boundaries, so the
  numba kernels walk plain arrays (no Python objects in the hot loop);
- `encode_corpus(sentences, min_count, ...)`: both, in two passes over the sentences.

Words under `min_count` are dropped before windows are drawn, as gensim and word2vec.c do, so a rare word
does not use up a window position. Sentences longer than 10,000 words are cut into pieces of 10,000 (the
limit gensim applies too), which bounds the per-thread buffers of the kernels.

    >>> corpus = encode_corpus([["a", "b", "a"], ["b", "a", "c"]], min_count=2)
    >>> corpus.vocab.words, corpus.vocab.counts.tolist(), corpus.ids.tolist(), corpus.starts.tolist()
    (['a', 'b'], [3, 2], [0, 1, 0, 1, 0], [0, 3, 5])
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from lmforge.errors import CorpusError

MAX_SENTENCE_WORDS = 10_000  # gensim's MAX_WORDS_IN_BATCH: longer sentences are split


@dataclass
class Vocabulary:
    words: list[str]  # index -> word, most frequent first
    counts: np.ndarray  # (V,) int64, count of each word in the corpus
    raw_words: int  # tokens in the corpus, including the ones under min_count

    def __post_init__(self) -> None:
        self.index = {word: i for i, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)


@dataclass
class EncodedCorpus:
    vocab: Vocabulary
    ids: np.ndarray  # (N,) int32: the kept words of every sentence, one after the other
    starts: np.ndarray  # (S + 1,) int64: sentence s is ids[starts[s]:starts[s + 1]]

    @property
    def num_sentences(self) -> int:
        return len(self.starts) - 1


def tokenize_lines(paths: Sequence[str | os.PathLike], lowercase: bool = True) -> Iterator[list[str]]:
    """One sentence per non-blank line, split on whitespace (the `embed train` input format)."""
    from lmforge.text import Corpus

    for line in Corpus(paths):
        words = (line.lower() if lowercase else line).split()
        if words:
            yield words


def build_vocabulary(sentences: Iterable[Sequence[str]], min_count: int = 5) -> Vocabulary:
    """Count the words; keep those seen at least `min_count` times, most frequent first (ties: first seen)."""
    if min_count < 1:
        raise CorpusError(f"min_count must be at least 1, got {min_count}")
    counter: Counter[str] = Counter()
    for sentence in sentences:
        counter.update(sentence)
    raw = sum(counter.values())
    kept = [(word, count) for word, count in counter.items() if count >= min_count]
    kept.sort(key=lambda item: -item[1])  # stable: ties keep their first-seen order
    if not kept:
        raise CorpusError(
            f"no word occurs {min_count} times or more in the corpus ({raw:,} words, {len(counter):,} types); "
            "give a larger corpus or a smaller --min-count"
        )
    return Vocabulary(
        words=[w for w, _ in kept], counts=np.array([c for _, c in kept], dtype=np.int64), raw_words=raw
    )


def encode_corpus(sentences: Iterable[Sequence[str]], min_count: int = 5) -> EncodedCorpus:
    """Vocabulary + the corpus as word ids (out-of-vocabulary words dropped, long sentences split)."""
    sentences = sentences if isinstance(sentences, list) else list(sentences)
    vocab = build_vocabulary(sentences, min_count)
    index = vocab.index
    chunks: list[np.ndarray] = []
    lengths: list[int] = []
    for sentence in sentences:
        ids = [i for i in map(index.get, sentence) if i is not None]
        for begin in range(0, len(ids), MAX_SENTENCE_WORDS):
            piece = ids[begin : begin + MAX_SENTENCE_WORDS]
            chunks.append(np.array(piece, dtype=np.int32))
            lengths.append(len(piece))
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    return EncodedCorpus(vocab=vocab, ids=ids, starts=starts)
