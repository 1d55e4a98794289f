"""The PyTorch training path of the static embeddings: the same models on any torch device (a GPU first).

- which path trains is `common.select_device(device, backend)`: None = the numba kernels on CPU threads
  (the default on CPU, where they are the fast path), else the torch device ("cuda" when present);
- `train_negative_sampling_torch`: skip-gram and CBOW with negative sampling, for word2vec (one input
  row per word) and FastText (word row + hashed n-gram rows, the lists `fasttext.py` builds), with the
  numba path's preprocessing: subsampling (sqrt(f/s) + 1)·s/f, windows drawn from 1..window, noise words
  ∝ count^0.75 by Walker's alias tables, linear learning-rate decay by corpus position, the same initial
  vectors;
- `fit_glove_torch`: GloVe's weighted least squares by AdaGrad over the co-occurrence entries that
  `glove.cooccurrence` counts.

Batching, the one change of algorithm: the corpus is cut into chunks of whole sentences (~200k words);
each chunk is subsampled and its windows drawn on the device, then its centre words are taken in corpus
order, a block of them at a time (see `block_pairs_for`: sized so that the most-touched row sums at most
~200 steps at the initial learning rate, more as the rate decays). Every pair of a block reads the same
snapshot of the matrices; the gradients are written out by hand (no autograd, no optimiser state) and added
to the rows they touch with `index_add_`, so a step costs O(pairs × dim), never O(vocabulary × dim). A row
used by several pairs of a block gets the sum of their steps — what Hogwild SGD applies one after the
other, here at once. FastText keeps fastText's rule: the input vector is the mean of the word's rows and
each row receives the full gradient. The sigmoid is computed, not read from word2vec.c's table; a pair
scored beyond ±6 takes no step, as in the numba kernel and gensim.

    from lmforge.embeddings import Word2VecConfig, train_word2vec
    trained = train_word2vec(sentences, Word2VecConfig(device="cuda"))        # the GPU path
    trained = train_word2vec(sentences, Word2VecConfig(backend="torch"))      # torch, on CPU if no GPU
"""

from __future__ import annotations

import time

import numpy as np

from lmforge.embeddings.common import (
    MAX_EXP,
    TrainStats,
    alias_table,
    chunk_sentences,
    device_name,
    keep_probability,
    progress_bar,
    torch_threads,
)
from lmforge.embeddings.vocab import EncodedCorpus

CHUNK_WORDS = 200_000  # words whose windows are drawn at once: enough work to keep a GPU busy
MIN_BLOCK_PAIRS, MAX_BLOCK_PAIRS = 256, 65_536  # (centre, context) pairs per step, within these bounds
ROW_STEPS = 200  # steps the most-touched row may sum in one block at REFERENCE_ALPHA (`block_pairs_for`)
REFERENCE_ALPHA = 0.025  # word2vec's (and gensim's) initial rate: at a rate r the budget is 200 · 0.025 / r
GLOVE_BATCH = 65_536  # co-occurrence entries per AdaGrad step


# --- skip-gram and CBOW with negative sampling -------------------------------------------------------


class _Rows:
    """The input rows of each word on the device: `rows[starts[w]:starts[w] + counts[w]]`."""

    def __init__(self, rows: np.ndarray, row_starts: np.ndarray, device):
        import torch

        self.one_row = row_starts[-1] == len(row_starts) - 1  # word2vec: row = word id
        self.rows = torch.as_tensor(rows.astype(np.int64), device=device)
        self.starts = torch.as_tensor(row_starts[:-1].astype(np.int64), device=device)
        self.counts = torch.as_tensor(np.diff(row_starts).astype(np.int64), device=device)

    def expand(self, words):
        """(N,) word ids -> (flat rows (M,), owner (M,): which of the N words each row belongs to).

        For words [5, 9] with rows 5: [5, 20, 31] and 9: [9, 44]: ([5, 20, 31, 9, 44], [0, 0, 0, 1, 1])."""
        import torch

        if self.one_row:
            return words, torch.arange(len(words), device=words.device)
        counts = self.counts[words]
        owner = torch.repeat_interleave(torch.arange(len(words), device=words.device), counts)
        first_of_owner = torch.cumsum(counts, 0) - counts  # where each word's rows begin in the output
        within = torch.arange(len(owner), device=words.device) - first_of_owner[owner]
        return self.rows[self.starts[words][owner] + within], owner


def hottest_row_share(
    counts: np.ndarray, keep: np.ndarray, rows: np.ndarray, row_starts: np.ndarray, *, negative: int,
    window: int, cbow: bool
) -> float:  # fmt: skip
    """Expected steps the most-touched row takes per (centre, context) pair of a block, input or output side.

    Output row w, per prediction: 1 as the true word (kept share of w) + `negative` noise draws (count^0.75
    share); skip-gram predicts once per pair, CBOW once per centre (about window + 1 pairs). Input row r:
    once per pair whose input word owns it — the context word (word2vec skip-gram, CBOW) or the centre
    (FastText skip-gram), and FastText's n-gram rows are shared by many words: "ed>" sums the kept shares
    of every word ending in -ed. On all of WikiText-2 (defaults): 0.101, the output row of "the" (FastText
    CBOW: 0.058, the row of "ed>")."""
    kept = counts * keep.astype(np.float64)
    kept /= kept.sum()
    noise = np.asarray(counts, dtype=np.float64) ** 0.75
    noise /= noise.sum()
    predictions_per_pair = 1.0 / (window + 1) if cbow else 1.0
    output = (kept + negative * noise).max() * predictions_per_pair
    owner = np.repeat(np.arange(len(counts)), np.diff(row_starts))  # the word of each entry of `rows`
    inputs = np.bincount(rows, weights=kept[owner]).max()
    return float(max(output, inputs))


def block_pairs_for(share: float, vocab_size: int, rate: float) -> int:
    """Pairs per step at learning rate `rate`, for the hottest row's `share` (`hottest_row_share`).

    Every pair of a step reads the same snapshot, so a row touched n times in a step takes the sum of n
    steps computed from stale vectors, where Hogwild SGD applies them one after the other, each seeing the
    last. The sum overshoots when rate × n is large, and n follows the block size and the frequency of the
    commonest words, not the vocabulary. Two bounds at the initial rate, both relaxed as the rate decays
    (rate × n stays the same), within 256..65,536 pairs:
    - the hottest row sums at most ROW_STEPS (200) steps. On all of WikiText-2 (skip-gram, 5 epochs; the
      output row of "the" takes 0.101 steps per pair), fixed blocks lose analogies as they grow: 4.9 % at
      3,072 pairs, 4.3 % at 6,144, 3.3 % at 12,288, 1.9 % at 20,487 (numba: 4.65 %, seed 1); growing
      blocks from 1,969 pairs are level with the numba path over 3 seeds, from 3,937 they are 0.6 point under
      (docs/embeddings.md);
    - the average row: about one pair per vocabulary word. On a small vocabulary every row is hot; the
      100-word corpus of the tests learns with 256 pairs and not with 2,048.

    >>> block_pairs_for(0.101, 20_487, 0.025), block_pairs_for(0.101, 20_487, 0.0125)
    (1980, 3960)
    >>> block_pairs_for(0.101, 100, 0.025), block_pairs_for(0.101, 20_487, 0.0001)
    (256, 65536)
    """
    pairs = min(ROW_STEPS / share, vocab_size) * REFERENCE_ALPHA / rate
    return int(min(MAX_BLOCK_PAIRS, max(MIN_BLOCK_PAIRS, pairs)))


def _draw_noise(probability, alias, shape, generator):
    """Word ids ∝ count^0.75 by Walker's alias method: a uniform column, kept or swapped for its alias."""
    import torch

    column = torch.randint(len(probability), shape, generator=generator, device=probability.device)
    coin = torch.rand(shape, generator=generator, device=probability.device)
    return torch.where(coin < probability[column], column, alias[column])


def _negative_sampling_step(hidden, targets, output, probability, alias, negative, alpha, generator):
    """Logistic loss of each hidden vector against its target word and `negative` noise words.

    hidden (B, D), targets (B,). Updates the output rows (summed per row, `index_add_`) and returns the
    gradient for the input side, (B, D), already scaled by the learning rate."""
    import torch

    batch, dim = hidden.shape
    noise = _draw_noise(probability, alias, (batch, negative), generator)  # (B, K)
    candidates = torch.cat([targets[:, None], noise], dim=1)  # (B, 1 + K): the true word first
    vectors = output[candidates]  # (B, 1 + K, D)
    scores = torch.bmm(vectors, hidden[:, :, None]).squeeze(2)  # (B, 1 + K)
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    step = (labels - torch.sigmoid(scores)) * alpha  # (B, 1 + K)
    step.masked_fill_(scores.abs() >= MAX_EXP, 0.0)  # a saturated pair takes no step, as in the numba kernel
    step[:, 1:].masked_fill_(noise == targets[:, None], 0.0)  # a noise draw of the true word is skipped
    work = torch.bmm(step[:, None, :], vectors).squeeze(1)  # (B, D), from the old output rows
    output.index_add_(0, candidates.reshape(-1), (step[:, :, None] * hidden[:, None, :]).reshape(-1, dim))
    return work


def _chunk_windows(ids, sentence_of, keep, window, generator):
    """Subsample a chunk and draw each kept word's window (1..window), on the device.

    Returns (kept ids (n,), sentence of each (n,), reach of each (n,))."""
    import torch

    kept = torch.rand(len(ids), generator=generator, device=ids.device) < keep[ids]
    ids, sentence_of = ids[kept], sentence_of[kept]
    reach = torch.randint(1, window + 1, (len(ids),), generator=generator, device=ids.device)
    return ids, sentence_of, reach


def _block_pairs(ids, sentence_of, reach, first, last, offsets):
    """Context positions of centre positions [first, last): (centre ids (P,), context ids (P, 2W),
    valid (P, 2W)) — a context is valid inside the centre's sentence and reach."""
    import torch

    centres = torch.arange(first, last, device=ids.device)  # (P,)
    positions = centres[:, None] + offsets[None, :]  # (P, 2W)
    inside = (positions >= 0) & (positions < len(ids))
    positions = positions.clamp(0, len(ids) - 1)
    valid = inside & (sentence_of[positions] == sentence_of[centres][:, None])
    valid &= offsets.abs()[None, :] <= reach[centres][:, None]
    return ids[centres], ids[positions], valid


def train_negative_sampling_torch(
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
    seed: int,
    progress: bool,
    label: str,
    device: str,
    workers: int = 0,
) -> TrainStats:
    """`word2vec.train_negative_sampling` on a torch device: same arguments, `inputs` and `output`
    updated in place (copied to the device and back)."""
    import torch

    with torch_threads(workers if device == "cpu" and workers > 0 else None), torch.no_grad():
        return _train_sgns(
            corpus, inputs, output, rows, row_starts, cbow, window, negative, sample, alpha, min_alpha,
            epochs, seed, progress, label, torch.device(device),
        )  # fmt: skip


def _train_sgns(corpus, inputs_np, output_np, rows, row_starts, cbow, window, negative, sample, alpha,
                min_alpha, epochs, seed, progress, label, device) -> TrainStats:  # fmt: skip
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    inputs = torch.as_tensor(inputs_np, device=device)
    output = torch.as_tensor(output_np, device=device)
    word_rows = _Rows(rows, row_starts, device)
    keep_np = keep_probability(corpus.vocab.counts, sample)
    share = hottest_row_share(corpus.vocab.counts, keep_np, rows, row_starts, negative=negative, window=window,
                              cbow=cbow)  # fmt: skip
    keep = torch.as_tensor(keep_np, device=device)
    probability, alias = (torch.as_tensor(t, device=device) for t in alias_table(corpus.vocab.counts))
    alias = alias.long()
    ids_all = torch.as_tensor(corpus.ids.astype(np.int64), device=device)
    sentence_all = torch.repeat_interleave(
        torch.arange(corpus.num_sentences, device=device),
        torch.as_tensor(np.diff(corpus.starts), device=device),
    )
    offsets = torch.tensor([d for d in range(-window, window + 1) if d != 0], device=device)  # (2W,)
    chunks = chunk_sentences(corpus.starts, CHUNK_WORDS)
    corpus_words = max(1, len(corpus.ids))
    raw_per_epoch = corpus.vocab.raw_words
    bar = progress_bar(raw_per_epoch * epochs, f"{label} [{device}]", progress)
    effective = 0
    started = time.perf_counter()
    for epoch in range(epochs):
        for c in range(len(chunks) - 1):
            begin, end = int(corpus.starts[chunks[c]]), int(corpus.starts[chunks[c + 1]])
            ids, sentence_of, reach = _chunk_windows(
                ids_all[begin:end], sentence_all[begin:end], keep, window, generator
            )
            effective += len(ids)
            first = 0
            while first < len(ids):
                done = epoch * corpus_words + begin + (end - begin) * first / max(1, len(ids))
                rate = max(min_alpha, alpha - (alpha - min_alpha) * done / (epochs * corpus_words))
                block = max(
                    1, block_pairs_for(share, len(corpus.vocab), rate) // (window + 1)
                )  # ~window + 1 pairs a centre
                last = min(first + block, len(ids))
                centres, contexts, valid = _block_pairs(ids, sentence_of, reach, first, last, offsets)
                if cbow:
                    _cbow_block(inputs, output, word_rows, centres, contexts, valid, probability, alias,
                                negative, rate, generator)  # fmt: skip
                else:
                    _skipgram_block(inputs, output, word_rows, centres, contexts, valid, probability, alias,
                                    negative, rate, generator)  # fmt: skip
                first = last
            if bar is not None:
                bar.update(int((end - begin) * raw_per_epoch / corpus_words))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    if bar is not None:
        bar.close()
    inputs_np[...] = inputs.cpu().numpy()
    output_np[...] = output.cpu().numpy()
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    return TrainStats(
        seconds=seconds, raw_words=raw_per_epoch * epochs, effective_words=effective, workers=threads,
        backend="torch", device=device_name(str(device)),
    )  # fmt: skip


def _skipgram_block(inputs, output, word_rows, centres, contexts, valid, probability, alias, negative, rate,
                    generator) -> None:  # fmt: skip
    """Skip-gram. word2vec (one row per word), as word2vec.c: each context word's row predicts the centre.
    FastText: the sum of the centre's rows (word + n-grams) divided by its n-gram count, as gensim (and the
    numba kernel), predicts each context word, and the summed input gradient of the centre's pairs goes,
    in full, to every one of its rows."""
    import torch

    pair_centre, pair_slot = valid.nonzero(as_tuple=True)  # (B,), (B,): which centre, which context
    if len(pair_centre) == 0:
        return
    if word_rows.one_row:
        context_words = contexts[pair_centre, pair_slot]
        work = _negative_sampling_step(
            inputs[context_words], centres[pair_centre], output, probability, alias, negative, rate, generator
        )
        inputs.index_add_(0, context_words, work)
        return
    flat_rows, owner = word_rows.expand(centres)  # every row of every centre word
    ngrams = (word_rows.counts[centres] - 1).clamp_(min=1).to(inputs.dtype)  # rows minus the word's own
    mean = torch.zeros((len(centres), inputs.shape[1]), dtype=inputs.dtype, device=inputs.device)
    mean.index_add_(0, owner, inputs[flat_rows]).div_(ngrams[:, None])  # (P, D)
    work = _negative_sampling_step(
        mean[pair_centre], contexts[pair_centre, pair_slot], output, probability, alias, negative, rate,
        generator,
    )  # fmt: skip
    per_centre = torch.zeros_like(mean).index_add_(0, pair_centre, work)  # (P, D)
    inputs.index_add_(0, flat_rows, per_centre[owner])


def _cbow_block(inputs, output, word_rows, centres, contexts, valid, probability, alias, negative, rate,
                generator) -> None:  # fmt: skip
    """CBOW: the mean of the rows of the window's words predicts the centre; each of those rows receives
    the input gradient in full (word2vec.c's and gensim's cbow_mean)."""
    import torch

    pair_centre, pair_slot = valid.nonzero(as_tuple=True)
    if len(pair_centre) == 0:
        return
    flat_rows, owner = word_rows.expand(contexts[pair_centre, pair_slot])
    row_centre = pair_centre[owner]  # (M,): the centre each row contributes to
    dim = inputs.shape[1]
    hidden = torch.zeros((len(centres), dim), dtype=inputs.dtype, device=inputs.device)
    hidden.index_add_(0, row_centre, inputs[flat_rows])
    counts = torch.bincount(row_centre, minlength=len(centres))
    has_context = counts > 0
    hidden = hidden[has_context] / counts[has_context, None].to(inputs.dtype)  # (P', D)
    work = torch.zeros((len(centres), dim), dtype=inputs.dtype, device=inputs.device)
    work[has_context] = _negative_sampling_step(
        hidden, centres[has_context], output, probability, alias, negative, rate, generator
    )
    inputs.index_add_(0, flat_rows, work[row_centre])


# --- GloVe -------------------------------------------------------------------------------------------


def _adagrad_rows(param, squares, index, grads) -> None:
    """One AdaGrad step on the rows `index` touches: each row's gradients summed over the batch, its
    squared sum added to `squares`, then the row moved by sum / sqrt(squares).

    The squares are added before the step (as torch.optim.Adagrad), where glove.c and the numba path
    divide by the sums before this gradient: a row's batch gradient can sum hundreds of entries ("the"
    meets ~400 of every 65k), and divided by the initial 1 it throws the row out of range (NaN within
    an epoch on 500k words of WikiText-2); divided by its own size, a coordinate moves by less than 1."""
    import torch

    rows, inverse = torch.unique(index, return_inverse=True)  # (U,), (B,)
    total = torch.zeros((len(rows), *grads.shape[1:]), dtype=grads.dtype, device=grads.device)
    total.index_add_(0, inverse, grads)
    squares.index_add_(0, rows, total * total)
    param.index_add_(0, rows, -total / squares[rows].sqrt())


def fit_glove_torch(words, contexts, word_bias, context_bias, rows, cols, log_counts, weights, *,
                    epochs: int, learning_rate: float, seed: int, device: str, workers: int = 0, bar=None,
                    batch: int = GLOVE_BATCH) -> list[float]:  # fmt: skip
    """AdaGrad over the co-occurrence entries (numpy arrays, updated in place), a random order each
    pass, `batch` entries per step; returns the mean weighted cost of each pass.

    Per entry e = (i, j): diff = w_i·c_j + b_i + b̃_j − log X_ij, g = f(X_ij)·diff·lr; each parameter
    row steps by its batch gradient / sqrt(its sum of squared gradients), the sums starting at 1 (as
    glove.py), see `_adagrad_rows`."""
    import torch

    with torch_threads(workers if device == "cpu" and workers > 0 else None):
        return _fit_glove(words, contexts, word_bias, context_bias, rows, cols, log_counts, weights, epochs,
                          learning_rate, seed, torch.device(device), bar, batch)  # fmt: skip


def _fit_glove(words, contexts, word_bias, context_bias, rows, cols, log_counts, weights, epochs, learning_rate,
               seed, device, bar, batch) -> list[float]:  # fmt: skip
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    with torch.no_grad():
        params = [torch.as_tensor(a, device=device) for a in (words, contexts, word_bias, context_bias)]
        w, c, bw, bc = params
        sums = [torch.ones_like(p) for p in params]  # AdaGrad's squared-gradient sums
        gw, gc, gbw, gbc = sums
        i_all = torch.as_tensor(rows.astype(np.int64), device=device)
        j_all = torch.as_tensor(cols.astype(np.int64), device=device)
        log_all = torch.as_tensor(log_counts, device=device)
        weight_all = torch.as_tensor(weights, device=device)
        costs = []
        for _ in range(epochs):
            order = torch.randperm(len(i_all), generator=generator, device=device)
            cost = torch.zeros((), dtype=torch.float64, device=device)
            for first in range(0, len(order), batch):
                take = order[first : first + batch]
                i, j = i_all[take], j_all[take]
                wi, cj = w[i], c[j]  # (B, D)
                diff = (wi * cj).sum(1) + bw[i] + bc[j] - log_all[take]  # (B,)
                weighted = weight_all[take] * diff
                cost += (0.5 * weighted * diff).sum(dtype=torch.float64)
                g = (weighted * learning_rate)[:, None]  # (B, 1)
                grad_w, grad_c = g * cj, g * wi  # from the old values of both vectors
                _adagrad_rows(w, gw, i, grad_w)
                _adagrad_rows(c, gc, j, grad_c)
                _adagrad_rows(bw, gbw, i, g[:, 0])
                _adagrad_rows(bc, gbc, j, g[:, 0])
            costs.append(float(cost) / max(1, len(i_all)))
            if bar is not None:
                bar.update(bar.total // epochs)
                bar.set_postfix(cost=f"{costs[-1]:.4f}")
        for array, tensor in zip((words, contexts, word_bias, context_bias), params, strict=True):
            array[...] = tensor.cpu().numpy()
    return costs
