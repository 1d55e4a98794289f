"""Word2Vec (Mikolov et al. 2013): CBOW and skip-gram with negative sampling, trained by numba kernels.

- skip-gram: each word predicts the words of its window; CBOW: the mean of the window predicts the word;
- negative sampling: the true word against `negative` words drawn from counts^0.75 with Walker's alias
  method (two V-entry tables that stay in cache: O(1) per draw, where word2vec.c's 100M-entry table and
  gensim's binary search miss the cache or take log V steps), logistic loss read from a precomputed
  sigmoid table; a pair scored beyond ±6 takes no step, as in gensim;
- subsampling: a word of corpus frequency f is kept with probability (sqrt(f / s) + 1) · s / f (s = sample);
- random window shrinking: each centre word uses a window drawn uniformly from 1..window;
- learning rate decays linearly from `alpha` to `min_alpha` over all epochs, by corpus position;
- Hogwild (Recht et al. 2011): the corpus is cut into chunks of whole sentences (~10k words); each thread
  (numba `prange`) takes every T-th chunk of a block and updates the shared matrices without locks, so
  all threads move through the corpus together and the learning rate stays monotone.

The same kernel trains FastText: a word's input vector is the mean of several rows (the word's own row
and its hashed n-gram rows), listed in `rows`/`row_starts`; plain word2vec lists one row per word and
takes a direct path (row = word id).
gensim's defaults are the defaults here: dim 100, window 5, min count 5, 5 negatives, sample 1e-3,
alpha 0.025 → 0.0001, 5 epochs, all cores.

    from lmforge.embeddings import train_word2vec, Word2VecConfig
    result = train_word2vec(sentences, Word2VecConfig(method="skipgram"))  # sentences: lists of words
    result.vectors.most_similar("king")
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numba
import numpy as np
from numba import prange

from lmforge.embeddings.common import (
    MAX_EXP,
    TrainStats,
    alias_table,
    check_device,
    chunk_sentences,
    init_input_vectors,
    keep_probability,
    keeps_torch_threads,
    progress_bar,
    resolve_workers,
)
from lmforge.embeddings.vectors import WordVectors
from lmforge.embeddings.vocab import MAX_SENTENCE_WORDS, EncodedCorpus, encode_corpus
from lmforge.errors import ConfigError

EXP_TABLE_SIZE = 1000  # sigmoid sampled at 1000 points on [-MAX_EXP, MAX_EXP], as word2vec.c
BLOCKS_PER_EPOCH = 20  # kernel calls per epoch: how often the progress bar moves


@dataclass
class Word2VecConfig:
    method: str = "skipgram"  # "skipgram" (better for rare words) or "cbow" (faster, smoother)
    dim: int = 100  # vector size; 100 is gensim's default and enough for analogies on ~100M words
    window: int = 5  # max distance to a context word; each centre word draws 1..window
    min_count: int = 5  # rarer words are dropped: too few examples to place them
    negative: int = 5  # noise words per true pair; 5-20 for small corpora (Mikolov et al.)
    sample: float = 1e-3  # subsampling threshold: words more frequent than this are thinned out
    alpha: float = 0.025  # initial learning rate (gensim's default for both methods)
    min_alpha: float = 0.0001  # final learning rate; linear decay over all epochs
    epochs: int = 5  # passes over the corpus
    workers: int = 0  # threads; 0 = all cores
    seed: int = 1  # initial vectors and the random stream of each chunk
    progress: bool = True  # tqdm bar with words/s on stderr
    device: str = "auto"  # auto = a CUDA GPU when torch sees one, else CPU; cpu, cuda, cuda:N, mps
    backend: str = "auto"  # auto = numba on CPU (the fast path there), torch on a GPU; torch forces torch

    def check(self) -> None:
        check_device(self.device, self.backend)
        if self.method not in ("skipgram", "cbow"):
            raise ConfigError(f"method must be 'skipgram' or 'cbow', got {self.method!r}")
        for name in ("dim", "window", "min_count", "epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.negative < 1:
            raise ConfigError(f"negative must be at least 1, got {self.negative}")
        if self.sample < 0 or not 0 < self.alpha or self.min_alpha < 0:
            raise ConfigError("sample and min_alpha must be ≥ 0 and alpha > 0")
        if self.workers < 0:
            raise ConfigError(f"workers must be ≥ 0 (0 = all cores), got {self.workers}")


@dataclass
class Trained:
    vectors: WordVectors
    stats: TrainStats


# --- tables ------------------------------------------------------------------------------------------


def sigmoid_table() -> np.ndarray:
    """(EXP_TABLE_SIZE,) float32: sigmoid at the centres of the bins of [-MAX_EXP, MAX_EXP]."""
    x = (np.arange(EXP_TABLE_SIZE, dtype=np.float64) / EXP_TABLE_SIZE * 2 - 1) * MAX_EXP
    return (1 / (1 + np.exp(-x))).astype(np.float32)


# --- the kernel --------------------------------------------------------------------------------------

_MULTIPLIER = np.uint64(25214903917)  # word2vec.c's linear congruential generator
_INCREMENT = np.uint64(11)
_SHIFT = np.uint64(16)


@numba.njit(inline="always")
def _next_random(state):
    return state * _MULTIPLIER + _INCREMENT


@numba.njit(inline="always")
def _chunk_seed(seed, epoch, chunk):
    """splitmix64 of (seed, epoch, chunk): an independent random stream per work item."""
    z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(epoch) * np.uint64(0xBF58476D1CE4E5B9)
    z += np.uint64(chunk) * np.uint64(0x94D049BB133111EB) + np.uint64(1)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(fastmath=True)  # not inlined into its four call sites: half the compile time, same speed
def _negative_sampling(
    neu1, work, output, positive, noise_probability, noise_alias, sigmoid, negative, alpha, state
):
    """One logistic step for the true word and `negative` noise words; input gradient added to `work`."""
    dim = neu1.shape[0]
    vocab_size = np.uint64(noise_probability.shape[0])
    low24 = np.uint64(0xFFFFFF)
    scale = EXP_TABLE_SIZE / MAX_EXP / 2
    for d in range(negative + 1):
        if d == 0:
            target = positive
            label = np.float32(1.0)
        else:
            state = _next_random(state)
            bits = state >> _SHIFT  # 48 random bits: 24 pick the column (no division), 24 the coin
            column = ((bits >> np.uint64(24)) * vocab_size) >> np.uint64(24)
            if (bits & low24) < noise_probability[column] * 16777216.0:
                target = np.int32(column)
            else:
                target = noise_alias[column]
            if target == positive:
                continue
            label = np.float32(0.0)
        dot = np.float32(0.0)
        for k in range(dim):
            dot += neu1[k] * output[target, k]
        if dot >= MAX_EXP or dot <= -MAX_EXP:  # saturated: no step, right or wrong (see MAX_EXP)
            continue
        g = np.float32((label - sigmoid[int((dot + MAX_EXP) * scale)]) * alpha)
        for k in range(dim):  # one pass: the input gradient from the old output row, then the row's step
            old = output[target, k]
            work[k] += g * old
            output[target, k] = old + g * neu1[k]
    return state


@numba.njit(parallel=True, fastmath=True, cache=True)
def train_block(
    inputs,  # (R, D) float32: input rows (words, and n-gram buckets for FastText)
    output,  # (V, D) float32: output (context) vectors
    rows,  # (sum of rows per word,) int32: the input rows of each word, word after word
    row_starts,  # (V + 1,) int64: word w reads rows[row_starts[w]:row_starts[w + 1]]
    ids,  # (N,) int32: the encoded corpus
    starts,  # (S + 1,) int64: sentence boundaries in ids
    chunks,  # (K + 1,) int64: work-item boundaries in sentences
    first_chunk,
    last_chunk,
    keep,  # (V,) float32: subsampling keep probabilities
    noise_probability,  # (V,) float32 alias-method tables for drawing negatives
    noise_alias,  # (V,) int32
    sigmoid,  # sigmoid table
    window,
    negative,
    cbow,
    alpha_start,
    alpha_end,
    epoch,
    epochs,
    seed,
    threads,
):
    """Train on work items [first_chunk, last_chunk); thread t takes items first+t, first+t+T, ...
    Returns the number of words trained on per thread."""
    dim = inputs.shape[1]
    corpus_words = ids.shape[0]
    trained = np.zeros(threads, dtype=np.int64)
    one_row = row_starts[row_starts.shape[0] - 1] == row_starts.shape[0] - 1  # word2vec, not FastText
    for t in prange(threads):
        neu1 = np.empty(dim, dtype=np.float32)
        work = np.empty(dim, dtype=np.float32)
        sentence = np.empty(MAX_SENTENCE_WORDS, dtype=np.int32)
        chunk = first_chunk + t
        while chunk < last_chunk:
            state = _chunk_seed(seed, epoch, chunk)
            for s in range(chunks[chunk], chunks[chunk + 1]):
                progress = (epoch * corpus_words + starts[s]) / (epochs * corpus_words)
                alpha = max(alpha_end, alpha_start - (alpha_start - alpha_end) * progress)
                n = 0
                for p in range(starts[s], starts[s + 1]):  # subsampling, before windows are drawn
                    word = ids[p]
                    if keep[word] < 1.0:
                        state = _next_random(state)
                        if keep[word] < ((state >> _SHIFT) & np.uint64(0xFFFFFF)) / 16777216.0:
                            continue
                    sentence[n] = word
                    n += 1
                trained[t] += n
                for i in range(n):
                    state = _next_random(state)
                    shrink = int((((state >> _SHIFT) & np.uint64(0xFFFF)) * np.uint64(window)) >> _SHIFT)
                    lo = max(0, i - window + shrink)
                    hi = min(n, i + window + 1 - shrink)
                    centre = sentence[i]
                    if cbow:  # mean of the window's input rows predicts the centre word
                        neu1[:] = 0.0
                        count = 0
                        if one_row:  # plain word2vec: row = word id, no indirection
                            for j in range(lo, hi):
                                if j != i:
                                    row = sentence[j]
                                    for k in range(dim):
                                        neu1[k] += inputs[row, k]
                            count = hi - lo - 1
                        else:
                            for j in range(lo, hi):
                                if j != i:
                                    w = sentence[j]
                                    for r in range(row_starts[w], row_starts[w + 1]):
                                        row = rows[r]  # hoisted: a store to inputs could alias rows
                                        for k in range(dim):
                                            neu1[k] += inputs[row, k]
                                        count += 1
                        if count == 0:
                            continue
                        inverse = np.float32(1.0 / count)
                        for k in range(dim):
                            neu1[k] *= inverse
                        work[:] = 0.0
                        state = _negative_sampling(
                            neu1,
                            work,
                            output,
                            centre,
                            noise_probability,
                            noise_alias,
                            sigmoid,
                            negative,
                            alpha,
                            state,
                        )
                        for j in range(lo, hi):
                            if j == i:
                                continue
                            if one_row:
                                row = sentence[j]
                                for k in range(dim):
                                    inputs[row, k] += work[k]
                            else:
                                w = sentence[j]
                                for r in range(row_starts[w], row_starts[w + 1]):
                                    row = rows[r]  # hoisted: a store to inputs could alias rows
                                    for k in range(dim):
                                        inputs[row, k] += work[k]
                    elif one_row:  # skip-gram as word2vec.c and gensim: each context row predicts the centre
                        for j in range(lo, hi):
                            if j == i:
                                continue
                            row = sentence[j]
                            work[:] = 0.0
                            state = _negative_sampling(
                                inputs[row],
                                work,
                                output,
                                centre,
                                noise_probability,
                                noise_alias,
                                sigmoid,
                                negative,
                                alpha,
                                state,
                            )
                            for k in range(dim):
                                inputs[row, k] += work[k]
                    else:  # skip-gram, several rows per word (FastText): for each context word, the
                        # centre's rows (word + n-grams) predict it and every row takes the step. Their sum
                        # is divided by the n-gram count, as gensim's fasttext_inner.pyx does (fastText
                        # divides by count + 1): over 10 seeds it scores higher, see docs/embeddings.md
                        first_row = row_starts[centre]
                        end_row = row_starts[centre + 1]
                        inverse = np.float32(1.0 / max(1, end_row - first_row - 1))
                        for j in range(lo, hi):
                            if j == i:
                                continue
                            neu1[:] = 0.0
                            for r in range(first_row, end_row):
                                row = rows[r]  # hoisted: a store to inputs could alias rows
                                for k in range(dim):
                                    neu1[k] += inputs[row, k]
                            for k in range(dim):
                                neu1[k] *= inverse
                            work[:] = 0.0
                            state = _negative_sampling(
                                neu1,
                                work,
                                output,
                                sentence[j],
                                noise_probability,
                                noise_alias,
                                sigmoid,
                                negative,
                                alpha,
                                state,
                            )
                            for r in range(first_row, end_row):
                                row = rows[r]
                                for k in range(dim):
                                    inputs[row, k] += work[k]
            chunk += threads
    return trained


# --- the driver --------------------------------------------------------------------------------------


@keeps_torch_threads
def train_negative_sampling(
    corpus: EncodedCorpus,
    inputs: np.ndarray,
    output: np.ndarray,
    rows: np.ndarray,
    row_starts: np.ndarray,
    *,
    cbow: bool,
    window: int,
    negative: int,
    sample: float,
    alpha: float,
    min_alpha: float,
    epochs: int,
    workers: int,
    seed: int,
    progress: bool,
    label: str,
) -> TrainStats:
    """Run the epochs of `train_block` over `corpus`, updating `inputs` and `output` in place."""
    threads = resolve_workers(workers)
    numba.set_num_threads(threads)
    keep = keep_probability(corpus.vocab.counts, sample)
    noise_probability, noise_alias = alias_table(corpus.vocab.counts)
    sigmoid = sigmoid_table()
    chunks = chunk_sentences(corpus.starts)
    n_chunks = len(chunks) - 1
    block = max(threads, -(-n_chunks // BLOCKS_PER_EPOCH))
    block = -(-block // threads) * threads  # whole rounds of the threads
    raw_per_epoch = corpus.vocab.raw_words
    bar = progress_bar(raw_per_epoch * epochs, label, progress)
    effective = 0
    started = time.perf_counter()
    for epoch in range(epochs):
        for first in range(0, n_chunks, block):
            last = min(first + block, n_chunks)
            trained = train_block(
                inputs, output, rows, row_starts, corpus.ids, corpus.starts, chunks, first, last, keep,
                noise_probability, noise_alias, sigmoid, window, negative, cbow, alpha, min_alpha, epoch, epochs, seed, threads,
            )  # fmt: skip
            effective += int(trained.sum())
            if bar is not None:
                words = corpus.starts[chunks[last]] - corpus.starts[chunks[first]]
                bar.update(int(words * raw_per_epoch / max(1, len(corpus.ids))))
    seconds = time.perf_counter() - started
    if bar is not None:
        bar.close()
    return TrainStats(
        seconds=seconds, raw_words=raw_per_epoch * epochs, effective_words=effective, workers=threads
    )


def train_on_device(device: str, backend: str, *args, **kwargs) -> TrainStats:
    """`train_negative_sampling` on the path `device`/`backend` select: the numba kernels on CPU threads,
    or `torch_train.train_negative_sampling_torch` on a torch device (same arguments, same result)."""
    from lmforge.embeddings.common import select_device
    from lmforge.embeddings.torch_train import train_negative_sampling_torch

    torch_device = select_device(device, backend)
    if torch_device is None:
        return train_negative_sampling(*args, **kwargs)
    return train_negative_sampling_torch(*args, **kwargs, device=torch_device)


def train_word2vec(
    sentences: Iterable[Sequence[str]] | EncodedCorpus, config: Word2VecConfig | None = None
) -> Trained:
    """Train CBOW or skip-gram vectors on tokenized sentences (or an already encoded corpus)."""
    config = config or Word2VecConfig()
    config.check()
    corpus = sentences if isinstance(sentences, EncodedCorpus) else encode_corpus(sentences, config.min_count)
    vocab_size = len(corpus.vocab)
    inputs = init_input_vectors(vocab_size, config.dim, config.seed, 1.0 / config.dim)  # gensim 4's range
    output = np.zeros((vocab_size, config.dim), dtype=np.float32)
    rows = np.arange(vocab_size, dtype=np.int32)  # one input row per word
    row_starts = np.arange(vocab_size + 1, dtype=np.int64)
    stats = train_on_device(
        config.device, config.backend, corpus, inputs, output, rows, row_starts,
        cbow=config.method == "cbow", window=config.window, negative=config.negative, sample=config.sample,
        alpha=config.alpha, min_alpha=config.min_alpha, epochs=config.epochs, workers=config.workers,
        seed=config.seed, progress=config.progress, label=config.method,
    )  # fmt: skip
    return Trained(WordVectors(corpus.vocab.words, inputs), stats)
