"""GloVe (Pennington et al. 2014): global co-occurrence counts fitted by weighted least squares.

- co-occurrence: within a sentence, each pair of words at distance d ≤ window adds 1/d to X[i, j] and to
  X[j, i] (numba kernel emits the pairs; one sort + run-length sum merges them into a sparse matrix);
- model: w_i · c_j + b_i + b̃_j ≈ log X_ij, weighted by f(X) = min(1, (X / x_max)^0.75) so that rare pairs
  count less and frequent ones do not dominate;
- optimiser: AdaGrad (per-coordinate step lr / sqrt(sum of squared gradients), squared sums start at 1),
  over the non-zero entries in a new random order each epoch, Hogwild across threads (numba `prange`);
- the vectors returned are word + context vectors (W + C), as the paper recommends.

    trained = train_glove(sentences, GloVeConfig(epochs=25))
    trained.vectors.most_similar("paris")
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numba
import numpy as np
from numba import prange

from lmforge.embeddings.common import (
    TrainStats,
    check_device,
    keeps_torch_threads,
    progress_bar,
    resolve_workers,
)
from lmforge.embeddings.vectors import WordVectors
from lmforge.embeddings.vocab import EncodedCorpus, encode_corpus
from lmforge.errors import ConfigError


@dataclass
class GloVeConfig:
    dim: int = 100
    window: int = 5  # symmetric; the paper uses 10, 5 keeps the comparison with word2vec fair
    min_count: int = 5
    epochs: int = 25  # passes over the non-zero counts; the paper runs 50 (dim < 300), 25 is close
    x_max: float = 10.0  # counts ≥ x_max get full weight; the paper's 100 suits billions of words, the
    # reference code's demo uses 10 for small corpora, and on WikiText-2 10 scores far better
    power: float = 0.75  # exponent of the weighting function (the paper's value)
    learning_rate: float = 0.05  # AdaGrad's initial step (the reference implementation's default)
    workers: int = 0  # 0 = all cores
    seed: int = 1
    progress: bool = True
    device: str = "auto"  # as Word2VecConfig: auto, cpu, cuda, cuda:N, mps
    backend: str = "auto"  # auto = numba on CPU, torch on a GPU; torch forces the torch path

    def check(self) -> None:
        check_device(self.device, self.backend)
        for name in ("dim", "window", "min_count", "epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.x_max <= 0 or self.learning_rate <= 0:
            raise ConfigError("x_max and learning_rate must be positive")


@numba.njit(cache=True)
def _pairs(ids, starts, window, vocab_size):
    """Every (i, j) at distance d ≤ window inside a sentence, both directions, with weight 1/d.
    Returns keys i * V + j (int64) and weights (float32)."""
    total = 0
    for s in range(len(starts) - 1):
        n = starts[s + 1] - starts[s]
        for d in range(1, window + 1):
            if n > d:
                total += 2 * (n - d)
    keys = np.empty(total, dtype=np.int64)
    weights = np.empty(total, dtype=np.float32)
    at = 0
    for s in range(len(starts) - 1):
        for p in range(starts[s], starts[s + 1]):
            for d in range(1, window + 1):
                q = p + d
                if q >= starts[s + 1]:
                    break
                keys[at] = ids[p] * np.int64(vocab_size) + ids[q]
                keys[at + 1] = ids[q] * np.int64(vocab_size) + ids[p]
                weights[at] = weights[at + 1] = 1.0 / d
                at += 2
    return keys, weights


@numba.njit(cache=True)
def _sum_runs(sorted_keys, sorted_weights):
    """Merge equal neighbouring keys: ([3, 3, 5], [1, .5, 1]) -> ([3, 5], [1.5, 1])."""
    n = len(sorted_keys)
    keys = np.empty(n, dtype=np.int64)
    sums = np.empty(n, dtype=np.float32)
    out = -1
    for e in range(n):
        if out < 0 or sorted_keys[e] != keys[out]:
            out += 1
            keys[out] = sorted_keys[e]
            sums[out] = 0.0
        sums[out] += sorted_weights[e]
    return keys[: out + 1], sums[: out + 1]


def cooccurrence(corpus: EncodedCorpus, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sparse co-occurrence matrix: (rows int32, cols int32, counts float32), rows sorted.

    >>> from lmforge.embeddings.vocab import encode_corpus
    >>> rows, cols, counts = cooccurrence(encode_corpus([["a", "b", "c"]], min_count=1), window=2)
    >>> list(zip(rows.tolist(), cols.tolist(), counts.tolist()))
    [(0, 1, 1.0), (0, 2, 0.5), (1, 0, 1.0), (1, 2, 1.0), (2, 0, 0.5), (2, 1, 1.0)]
    """
    vocab_size = len(corpus.vocab)
    keys, weights = _pairs(corpus.ids, corpus.starts, window, vocab_size)
    order = np.argsort(keys)
    keys, counts = _sum_runs(keys[order], weights[order])
    return (keys // vocab_size).astype(np.int32), (keys % vocab_size).astype(np.int32), counts


@numba.njit(parallel=True, fastmath=True, cache=True)
def _adagrad_epoch(words, contexts, word_bias, context_bias, grad_words, grad_contexts, grad_word_bias,
                   grad_context_bias, rows, cols, log_counts, weights, order, learning_rate, threads):  # fmt: skip
    """One AdaGrad pass over the entries in `order`; thread t takes the t-th slice. Returns the cost."""
    dim = words.shape[1]
    n = order.shape[0]
    cost = np.zeros(threads, dtype=np.float64)
    step_words = np.empty((threads, dim), dtype=np.float32)
    for t in prange(threads):
        step = step_words[t]
        for e in range(t * n // threads, (t + 1) * n // threads):
            p = order[e]
            i = rows[p]
            j = cols[p]
            diff = word_bias[i] + context_bias[j] - log_counts[p]
            for k in range(dim):
                diff += words[i, k] * contexts[j, k]
            weighted = weights[p] * diff
            cost[t] += 0.5 * weighted * diff
            g = np.float32(weighted * learning_rate)
            for k in range(dim):  # gradients from the old values of both vectors, then both steps
                grad_w = g * contexts[j, k]
                grad_c = g * words[i, k]
                step[k] = grad_w / np.sqrt(grad_words[i, k])
                contexts[j, k] -= grad_c / np.sqrt(grad_contexts[j, k])
                grad_words[i, k] += grad_w * grad_w
                grad_contexts[j, k] += grad_c * grad_c
            for k in range(dim):
                words[i, k] -= step[k]
            word_bias[i] -= g / np.sqrt(grad_word_bias[i])
            context_bias[j] -= g / np.sqrt(grad_context_bias[j])
            grad_word_bias[i] += g * g
            grad_context_bias[j] += g * g
    return cost.sum()


@dataclass
class TrainedGloVe:
    vectors: WordVectors
    stats: TrainStats
    pairs: int  # non-zero co-occurrence entries
    costs: list[float]  # weighted least-squares cost after each epoch (mean per entry)


@keeps_torch_threads
def train_glove(
    sentences: Iterable[Sequence[str]] | EncodedCorpus, config: GloVeConfig | None = None
) -> TrainedGloVe:
    """Count co-occurrences, fit GloVe by AdaGrad, return W + C as `WordVectors`."""
    from lmforge.embeddings.common import device_name, select_device
    from lmforge.embeddings.torch_train import fit_glove_torch

    config = config or GloVeConfig()
    config.check()
    corpus = sentences if isinstance(sentences, EncodedCorpus) else encode_corpus(sentences, config.min_count)
    torch_device = select_device(config.device, config.backend)
    threads = resolve_workers(config.workers)
    numba.set_num_threads(threads)
    started = time.perf_counter()
    rows, cols, counts = cooccurrence(corpus, config.window)  # numba, on CPU, for both paths
    log_counts = np.log(counts).astype(np.float32)
    weights = np.minimum(1.0, (counts / config.x_max) ** config.power).astype(np.float32)
    vocab_size, dim = len(corpus.vocab), config.dim
    rng = np.random.default_rng(config.seed)
    words = ((rng.random((vocab_size, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    contexts = ((rng.random((vocab_size, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    word_bias = ((rng.random(vocab_size, dtype=np.float32) - 0.5) / dim).astype(np.float32)
    context_bias = ((rng.random(vocab_size, dtype=np.float32) - 0.5) / dim).astype(np.float32)
    label = "glove" if torch_device is None else f"glove [{torch_device}]"
    bar = progress_bar(corpus.vocab.raw_words * config.epochs, label, config.progress)
    if torch_device is not None:
        costs = fit_glove_torch(
            words, contexts, word_bias, context_bias, rows, cols, log_counts, weights, epochs=config.epochs,
            learning_rate=config.learning_rate, seed=config.seed, device=torch_device, workers=config.workers,
            bar=bar,
        )  # fmt: skip
    else:
        grads = [np.ones_like(a) for a in (words, contexts, word_bias, context_bias)]  # AdaGrad sums at 1
        costs = []
        for _ in range(config.epochs):
            order = rng.permutation(len(rows)).astype(np.int64)
            cost = _adagrad_epoch(
                words, contexts, word_bias, context_bias, *grads, rows, cols, log_counts, weights, order,
                config.learning_rate, threads,
            )  # fmt: skip
            costs.append(float(cost) / max(1, len(rows)))
            if bar is not None:
                bar.update(corpus.vocab.raw_words)
                bar.set_postfix(cost=f"{costs[-1]:.4f}")
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - started
    stats = TrainStats(
        seconds=seconds,
        raw_words=corpus.vocab.raw_words * config.epochs,
        effective_words=int(len(corpus.ids)) * config.epochs,
        workers=threads if torch_device is None else (config.workers or 1),
        backend="numba" if torch_device is None else "torch",
        device="cpu" if torch_device is None else device_name(torch_device),
    )
    return TrainedGloVe(WordVectors(corpus.vocab.words, words + contexts), stats, len(rows), costs)
