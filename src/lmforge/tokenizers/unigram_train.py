"""Training a Unigram model the way SentencePiece (and HF's `UnigramTrainer`) does: seed a large vocabulary
of substrings, fit each piece's probability by EM, prune the pieces whose loss hurts the corpus least,
repeat until the vocabulary is a little larger than asked, then keep the best.

The steps, on the distinct words of the corpus (each with its count):

1. **Seed.** Every character (scored by how often it occurs) and every substring of 2 to
   `max_piece_length` characters that occurs at least twice among the distinct words and is followed by
   more than one different character (or the end of a word) — the internal nodes of the suffix tree that
   SentencePiece and HF enumerate — scored by occurrences × length; the best `seed_size` of them. Scores
   become log-probabilities.
2. **EM** (`n_sub_iterations` rounds). E-step: forward-backward over the lattice of each word (every way
   of cutting it into pieces) gives the expected count of each piece. M-step: drop pieces expected fewer
   than 0.5 times; the new score of a piece is digamma(count) − digamma(total) (the Bayesian, sparse form
   of EM that SentencePiece uses).
3. **Prune** (while more than 1.1 × `vocab_size` pieces remain). For each piece, its loss: how much less
   likely the corpus becomes if its Viterbi occurrences are cut into its second-best segmentation instead.
   Pieces that are not their own best cut and are never used go; the others are kept by loss, down to
   `shrinking_factor` of the current size (never below 1.1 × `vocab_size`). Then EM again.
4. **Finish.** Every character of the corpus is kept (characters the model dropped get the lowest score),
   then pieces in the order pruning ranked them, up to `vocab_size` with the special tokens; sorted by score.

The seeds come from a suffix array of the distinct words joined by "\\0" (as SentencePiece's), and the
lattices are built with them, once (pieces only ever leave the vocabulary); the E-step, Viterbi and
second-best kernels run over those flat arrays in numba. Where HF's choices are arbitrary (the order of a hash
map), lmforge sorts; the result is not HF's vocabulary piece for piece, but on held-out text it encodes
within 1% of the length HF's does (tests/test_tokenizers_training.py, benchmarks/tokenizers.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numba
import numpy as np

from lmforge.errors import LmforgeError

EXPECTED_FREQUENCY_THRESHOLD = 0.5  # the M-step drops pieces expected fewer times than this
MIN_SCORE_PENALTY_DELTA = 0.0001  # characters the model lost: the lowest score, a little lower each
LOG_EPSILON = 50.0  # log_sum_exp(x, y) is max(x, y) when they differ by more than this (SentencePiece)


def digamma(x: np.ndarray | float) -> np.ndarray:
    """The digamma function by SentencePiece's series (shift x up to 7, then the asymptotic expansion).

    >>> round(float(digamma(1.0)), 6)   # −γ
    -0.577216
    """
    x = np.array(x, dtype=np.float64, copy=True)
    result = np.zeros_like(x)
    small = x < 7.0
    while small.any():
        result[small] -= 1.0 / x[small]
        x[small] += 1.0
        small = x < 7.0
    x -= 0.5
    xx = 1.0 / x
    xx2 = xx * xx
    xx4 = xx2 * xx2
    result += (
        np.log(x) + xx2 / 24.0 - 7.0 / 960.0 * xx4 + 31.0 / 8064.0 * xx4 * xx2 - 127.0 / 30720.0 * xx4 * xx4
    )
    return result


# --- the corpus as lattices ------------------------------------------------------------------------------


class Lattices:
    """Every seed piece at every place it occurs in the distinct words, as flat arrays (CSR by word): the
    nodes of word w are `word_ptr[w]:word_ptr[w + 1]`, sorted by start, then by length (HF's order: its
    trie's prefix search). `occurrence` / `occurrence_start`: one word each seed occurs in, and where."""

    def __init__(self, words: list[str], counts: np.ndarray, positions: np.ndarray, lengths: np.ndarray,
                 seeds: np.ndarray, word_begin: np.ndarray, position_word: np.ndarray, n_seeds: int):  # fmt: skip
        order = np.argsort(positions * 64 + lengths)
        positions, lengths, seeds = positions[order], lengths[order], seeds[order]
        node_word = position_word[positions]
        self.word_ptr = np.concatenate([[0], np.cumsum(np.bincount(node_word, minlength=len(words)))])
        self.node_start = (positions - word_begin[node_word]).astype(np.int32)
        self.node_length = lengths.astype(np.int32)
        self.node_seed = seeds.astype(np.int32)
        self.word_length = np.array([len(w) for w in words], dtype=np.int32)
        self.counts = counts.astype(np.float64)
        self.occurrence = np.full(n_seeds, -1, dtype=np.int64)
        self.occurrence_start = np.zeros(n_seeds, dtype=np.int32)
        self.occurrence[seeds[::-1]] = node_word[::-1]  # the first occurrence of each seed wins
        self.occurrence_start[seeds[::-1]] = self.node_start[::-1]


def seed_and_lattices(
    words: list[str], counts: np.ndarray, max_length: int, seed_size: int
) -> tuple[list[tuple[str, float]], Lattices]:
    """The seed pieces with their log-probabilities, and the corpus's lattices over them.

    As SentencePiece: the distinct words joined by "\\0" into one text; its suffixes sorted (by their
    first `max_length` + 1 characters, all that matters here); the internal nodes of the suffix tree of
    depth 2 to `max_length` that hold no "\\0" are the repeated, right-branching substrings, each with its
    occurrences (a range of the suffix array).
    """
    text = "\0".join(words) + "\0"
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    word_lengths = np.array([len(w) for w in words], dtype=np.int64)
    word_begin = np.concatenate([[0], np.cumsum(word_lengths + 1)[:-1]])
    position_word = np.repeat(np.arange(len(words)), word_lengths + 1)
    to_separator = word_begin[position_word] + word_lengths[position_word] - np.arange(len(codes))
    # characters, weighted by the counts of the words they are in: by count, then code point, descending
    where = np.flatnonzero(codes)
    char_codes, char_of = np.unique(codes[where], return_inverse=True)
    char_counts = np.bincount(char_of, weights=counts[position_word[where]].astype(np.float64))
    char_order = np.lexsort((-char_codes, -char_counts))
    char_seed = np.empty(len(char_codes), dtype=np.int64)
    char_seed[char_order] = np.arange(1, len(char_codes) + 1)  # seed 0 is the unknown piece
    seeds = [(chr(c), float(k)) for c, k in zip(char_codes[char_order], char_counts[char_order], strict=True)]
    # substrings: the suffix tree's internal nodes
    suffixes = _suffix_order(codes, max_length + 1)
    lcp = _capped_lcp(codes, suffixes, max_length + 1)
    low, high, depth = _lcp_intervals(lcp)
    first = suffixes[low]
    ok = (depth >= 2) & (depth <= max_length) & (depth <= to_separator[first])
    low, high, depth, first = low[ok], high[ok], depth[ok], first[ok]
    score = (high - low) * depth
    ranked = sorted(
        zip(score.tolist(), [text[s : s + d] for s, d in zip(first.tolist(), depth.tolist(), strict=True)],
            range(len(score)), strict=True),
        reverse=True,
    )[: max(seed_size - len(seeds), 0)]  # fmt: skip
    chosen = np.array([i for _, _, i in ranked], dtype=np.int64)
    seeds += [(piece, float(value)) for value, piece, _ in ranked]
    log_total = math.log(sum(value for _, value in seeds))
    seeds = [(piece, math.log(value) - log_total) for piece, value in seeds]
    # nodes: every character, and each chosen substring at each of its occurrences
    occurrences = high[chosen] - low[chosen]
    total = int(occurrences.sum())
    begins = np.repeat(low[chosen] - (np.cumsum(occurrences) - occurrences), occurrences)
    positions = np.concatenate([where, suffixes[begins + np.arange(total)]])
    lengths = np.concatenate([np.ones(len(where), np.int64), np.repeat(depth[chosen], occurrences)])
    seed_ids = np.concatenate(
        [char_seed[char_of], np.repeat(np.arange(len(chosen)) + len(char_codes) + 1, occurrences)]
    )
    lattices = Lattices(
        words, counts, positions, lengths, seed_ids, word_begin, position_word, len(seeds) + 1
    )
    return seeds, lattices


def seed_pieces(
    words: list[str], counts: Sequence[int], max_length: int, seed_size: int
) -> list[tuple[str, float]]:
    """Characters by count, then repeated, right-branching substrings by occurrences × length; log-probs.

    HF's own test of its seeds (trainer.rs, `test_unigram_chars`):

    >>> seeds = seed_pieces(["This is a", "こんにちは友達"], [1, 1], 16, 1_000_000)
    >>> [p for p, _ in seeds]
    ['s', 'i', ' ', '達', '友', 'ん', 'は', 'に', 'ち', 'こ', 'h', 'a', 'T', 'is ', 's ']
    >>> [round(s, 4) for _, s in seeds][::6]
    [-2.5649, -3.2581, -3.2581]
    """
    return seed_and_lattices(words, np.asarray(counts, dtype=np.int64), max_length, seed_size)[0]


def _suffix_order(codes: np.ndarray, length: int) -> np.ndarray:
    """The suffixes of `codes` sorted by their first `length` symbols (or more): prefix doubling."""
    n = len(codes)
    rank = np.unique(codes, return_inverse=True)[1].astype(np.int64) + 1  # 0: past the end
    span = 1
    while span < length:
        following = np.zeros(n, dtype=np.int64)
        following[: n - span] = rank[span:]
        rank = np.unique(rank * (n + 2) + following, return_inverse=True)[1].astype(np.int64) + 1
        span *= 2
    return np.argsort(rank, kind="stable")


@numba.njit(cache=True)
def _capped_lcp(codes, suffixes, cap):
    """lcp[i]: the common prefix of suffixes i - 1 and i, counted up to `cap`."""
    n = len(suffixes)
    lcp = np.zeros(n, np.int64)
    for i in range(1, n):
        a, b = suffixes[i - 1], suffixes[i]
        h = 0
        while h < cap and a + h < n and b + h < n and codes[a + h] == codes[b + h]:
            h += 1
        lcp[i] = h
    return lcp


@numba.njit(cache=True)
def _lcp_intervals(lcp):
    """The suffix tree's internal nodes as lcp-intervals: (first, end) ranges of the suffix array whose
    suffixes share `depth` symbols, and no wider range does (a bottom-up scan with a stack)."""
    n = len(lcp)
    low = np.empty(n, np.int64)
    high = np.empty(n, np.int64)
    depth = np.empty(n, np.int64)
    stack_depth = np.zeros(n + 1, np.int64)
    stack_low = np.zeros(n + 1, np.int64)
    top = 0
    m = 0
    for i in range(1, n + 1):
        current = lcp[i] if i < n else 0
        start = i - 1
        while current < stack_depth[top]:
            start = stack_low[top]
            low[m], high[m], depth[m] = start, i, stack_depth[top]
            m += 1
            top -= 1
        if current > stack_depth[top]:
            top += 1
            stack_depth[top] = current
            stack_low[top] = start
    return low[:m], high[:m], depth[:m]


@numba.njit(cache=True)
def _log_sum_exp(x, y, first):
    if first:
        return y
    low, high = (y, x) if x > y else (x, y)
    if high > low + LOG_EPSILON:
        return high
    return high + math.log(math.exp(low - high) + 1.0)


@numba.njit(cache=True)
def _word_nodes(lo, hi, begin, end, node_start, node_length, node_seed, seed_to_piece, scores, unk_score,
                out_start, out_end, out_piece, out_score):  # fmt: skip
    """The active nodes of one word's positions [begin, end) (pieces still in the model, nodes inside the
    span), plus an unknown node (piece 0) where no one-character piece starts; returns how many."""
    k = 0
    i = lo
    while i < hi and node_start[i] < begin:
        i += 1
    for position in range(begin, end):
        single = False
        while i < hi and node_start[i] == position:
            piece = seed_to_piece[node_seed[i]]
            stop = position + node_length[i]
            if piece >= 0 and stop <= end:
                out_start[k] = position - begin
                out_end[k] = stop - begin
                out_piece[k] = piece
                out_score[k] = scores[piece]
                k += 1
                if node_length[i] == 1:
                    single = True
            i += 1
        if not single:
            out_start[k] = position - begin
            out_end[k] = position - begin + 1
            out_piece[k] = 0
            out_score[k] = unk_score
            k += 1
    return k


@numba.njit(cache=True)
def _e_step(word_ptr, node_start, node_length, node_seed, word_length, counts, seed_to_piece, scores,
            unk_score, n_pieces):  # fmt: skip
    """Expected count of each piece over the corpus (forward-backward on each word's lattice), and the
    objective: minus the mean log-likelihood of a word."""
    expected = np.zeros(n_pieces)
    longest = 1
    for w in range(len(word_length)):
        size = word_ptr[w + 1] - word_ptr[w] + word_length[w]
        longest = max(longest, size)
    starts = np.empty(longest, np.int32)
    ends = np.empty(longest, np.int32)
    pieces = np.empty(longest, np.int32)
    node_scores = np.empty(longest, np.float64)
    total = counts.sum()
    objective = 0.0
    for w in range(len(word_length)):
        n = word_length[w]
        k = _word_nodes(word_ptr[w], word_ptr[w + 1], 0, n, node_start, node_length, node_seed,
                        seed_to_piece, scores, unk_score, starts, ends, pieces, node_scores)  # fmt: skip
        alpha = np.zeros(n + 1)
        seen = np.zeros(n + 1, np.bool_)
        seen[0] = True
        for j in range(k):
            e = ends[j]
            alpha[e] = _log_sum_exp(alpha[e], node_scores[j] + alpha[starts[j]], not seen[e])
            seen[e] = True
        beta = np.zeros(n + 1)
        seen[:] = False
        seen[n] = True
        for j in range(k - 1, -1, -1):
            s = starts[j]
            beta[s] = _log_sum_exp(beta[s], node_scores[j] + beta[ends[j]], not seen[s])
            seen[s] = True
        z = alpha[n]
        count = counts[w]
        for j in range(k):
            expected[pieces[j]] += count * math.exp(alpha[starts[j]] + node_scores[j] + beta[ends[j]] - z)
        objective -= count * z / total
    return expected, objective


@numba.njit(cache=True)
def _best_path(k, starts, ends, node_scores, n, skip, path):
    """Viterbi over nodes [0, k) of a lattice of n positions (node `skip` left out; -1: none): the node
    indices of the best path into `path`, returns their number. Ties: the first node found (HF's)."""
    best = np.full(n + 1, -np.inf)
    came = np.full(n + 1, -1, np.int64)
    reached = np.zeros(n + 1, np.bool_)
    reached[0] = True
    best[0] = 0.0
    for j in range(k):
        if j == skip or not reached[starts[j]]:
            continue
        e = ends[j]
        candidate = best[starts[j]] + node_scores[j]
        if not reached[e] or candidate > best[e]:
            best[e] = candidate
            came[e] = j
            reached[e] = True
    m = 0
    position = n
    while position > 0:
        j = came[position]
        path[m] = j
        m += 1
        position = starts[j]
    path[:m] = path[:m][::-1].copy()
    return m


@numba.njit(cache=True)
def _viterbi_counts(word_ptr, node_start, node_length, node_seed, word_length, counts, seed_to_piece,
                    scores, unk_score, n_pieces):  # fmt: skip
    """How often each piece is on the best cut of the corpus's words (weighted by word counts)."""
    frequency = np.zeros(n_pieces)
    longest = 1
    for w in range(len(word_length)):
        longest = max(longest, word_ptr[w + 1] - word_ptr[w] + word_length[w])
    starts = np.empty(longest, np.int32)
    ends = np.empty(longest, np.int32)
    pieces = np.empty(longest, np.int32)
    node_scores = np.empty(longest, np.float64)
    path = np.empty(longest, np.int64)
    for w in range(len(word_length)):
        n = word_length[w]
        k = _word_nodes(word_ptr[w], word_ptr[w + 1], 0, n, node_start, node_length, node_seed,
                        seed_to_piece, scores, unk_score, starts, ends, pieces, node_scores)  # fmt: skip
        m = _best_path(k, starts, ends, node_scores, n, -1, path)
        for i in range(m):
            frequency[pieces[path[i]]] += counts[w]
    return frequency


@numba.njit(cache=True)
def _alternatives(piece_seed, occurrence, occurrence_start, seed_length, word_ptr, node_start,
                  node_length, node_seed, seed_to_piece, scores, unk_score):  # fmt: skip
    """For each piece: whether it is its own best cut (`own_best`) and, if so and it is longer than one
    character, the pieces of its second-best cut (CSR: `ptr`, `ids`) — what its occurrences would become
    without it."""
    n_pieces = len(piece_seed)
    own_best = np.ones(n_pieces, np.bool_)
    ptr = np.zeros(n_pieces + 1, np.int64)
    ids = np.empty(n_pieces * 16, np.int32)
    size = 16 * 17
    starts = np.empty(size, np.int32)
    ends = np.empty(size, np.int32)
    pieces = np.empty(size, np.int32)
    node_scores = np.empty(size, np.float64)
    path = np.empty(size, np.int64)
    used = 0
    for p in range(n_pieces):
        ptr[p] = used
        seed = piece_seed[p]
        length = seed_length[seed]
        if p == 0 or length == 1:  # the unknown piece; one character has one cut only: kept
            own_best[p] = p != 0
            continue
        w = occurrence[seed]
        begin = occurrence_start[seed]
        k = _word_nodes(word_ptr[w], word_ptr[w + 1], begin, begin + length, node_start, node_length,
                        node_seed, seed_to_piece, scores, unk_score, starts, ends, pieces,
                        node_scores)  # fmt: skip
        m = _best_path(k, starts, ends, node_scores, length, -1, path)
        if m >= 2:
            own_best[p] = False
            continue
        whole = path[0]
        m = _best_path(k, starts, ends, node_scores, length, whole, path)
        for i in range(m):
            ids[used] = pieces[path[i]]
            used += 1
    ptr[n_pieces] = used
    return own_best, ptr, ids[:used]


# --- the trainer -----------------------------------------------------------------------------------------


def train_unigram(
    word_counts: dict[str, int],
    vocab_size: int,
    special_tokens: Sequence[str],
    unk_token: str,
    *,
    max_piece_length: int = 16,
    shrinking_factor: float = 0.75,
    n_sub_iterations: int = 2,
    seed_size: int = 1_000_000,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[tuple[str, float]], int]:
    """Unigram pieces with scores (special tokens first, score 0) and the id of `unk_token`."""
    words = list(word_counts)
    counts = np.array([word_counts[w] for w in words], dtype=np.int64)
    report = progress or (lambda message: None)
    specials = list(special_tokens)
    if unk_token not in specials:
        specials.insert(0, unk_token)
    characters = sorted({c for w in words for c in w})
    if vocab_size < len(specials) + len(characters):
        raise LmforgeError(
            f"vocab_size {vocab_size} is smaller than the {len(characters)} characters of the corpus + "
            f"{len(specials)} special tokens = {len(specials) + len(characters)}; use --vocab-size "
            f"{len(specials) + len(characters)} or more"
        )
    report(f"seeding pieces from {len(words):,} distinct words")
    seeds, lattices = seed_and_lattices(words, counts, max_piece_length, seed_size)
    strings = ["<UNK>"] + [p for p, _ in seeds]  # seed id 0: the unknown piece EM trains with
    seed_length = np.array([len(s) for s in strings], dtype=np.int32)
    piece_seed = np.arange(len(strings), dtype=np.int32)  # the model: seed id of each piece, unk first
    scores = np.array([np.nan] + [s for _, s in seeds])
    desired = vocab_size * 11 // 10
    arrays = (lattices.word_ptr, lattices.node_start, lattices.node_length, lattices.node_seed)
    round_number = 0
    while True:
        for _ in range(n_sub_iterations):
            seed_to_piece = _seed_to_piece(piece_seed, len(strings))
            unk_score = np.nanmin(scores) - 10.0
            expected, objective = _e_step(
                *arrays,
                lattices.word_length,
                lattices.counts,
                seed_to_piece,
                scores,
                unk_score,
                len(piece_seed),
            )
            keep = expected >= EXPECTED_FREQUENCY_THRESHOLD
            keep[0] = True
            piece_seed, kept = piece_seed[keep], expected[keep]
            scores = np.concatenate([[np.nan], digamma(kept[1:]) - digamma(kept[1:].sum())])
        round_number += 1
        report(f"EM round {round_number}: {len(piece_seed):,} pieces, objective {objective:.4f}")
        if len(piece_seed) <= desired:
            break
        piece_seed, scores = _prune(
            piece_seed, scores, lattices, seed_length, len(strings), desired, shrinking_factor
        )
    return _finish(piece_seed, scores, strings, characters, specials, unk_token, vocab_size)


def _seed_to_piece(piece_seed: np.ndarray, n_seeds: int) -> np.ndarray:
    mapping = np.full(n_seeds, -1, dtype=np.int32)
    mapping[piece_seed] = np.arange(len(piece_seed), dtype=np.int32)
    return mapping


def _prune(
    piece_seed: np.ndarray,
    scores: np.ndarray,
    lattices: Lattices,
    seed_length: np.ndarray,
    n_seeds: int,
    desired: int,
    shrinking_factor: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the pieces whose removal would cost the corpus the most likelihood (HF's `prune_sentence_pieces`)."""
    n = len(piece_seed)
    seed_to_piece = _seed_to_piece(piece_seed, n_seeds)
    unk_score = np.nanmin(scores) - 10.0
    arrays = (lattices.word_ptr, lattices.node_start, lattices.node_length, lattices.node_seed)
    frequency = _viterbi_counts(
        *arrays, lattices.word_length, lattices.counts, seed_to_piece, scores, unk_score, n
    )
    own_best, ptr, ids = _alternatives(
        piece_seed, lattices.occurrence, lattices.occurrence_start, seed_length, *arrays, seed_to_piece,
        scores, unk_score,
    )  # fmt: skip
    total = frequency.sum()
    n_alternatives = np.diff(ptr)
    index = np.arange(n)
    dropped = (frequency == 0) & ~own_best
    plain = ~dropped & (n_alternatives == 0)  # no alternative: kept as it is
    rated = ~dropped & (n_alternatives > 0) & (frequency > 0)
    plain[0] = rated[0] = False
    with np.errstate(divide="ignore", invalid="ignore"):
        log_probability = np.log(frequency) - math.log(total)
        # HF's form: the new total counts every other piece once more (SentencePiece: each alternative).
        log_total_alternative = np.log(total + frequency * (n - 1))
        owner = np.repeat(index, n_alternatives)
        alternative_terms = np.log(frequency[ids] + frequency[owner]) - log_total_alternative[owner]
        log_probability_alternative = np.bincount(owner, weights=alternative_terms, minlength=n)
        loss = frequency / lattices.counts.sum() * (log_probability - log_probability_alternative)
    candidates = index[rated][np.argsort(-loss[rated], kind="stable")]
    kept = [0, *index[plain].tolist()]
    size = max(desired, int(n * shrinking_factor))
    # HF stops adding candidates when the size is reached; pieces kept without a loss may exceed it alone
    room = size - len(kept) if len(kept) <= size else len(candidates)
    keep = np.array(kept + candidates[:room].tolist(), dtype=np.int64)
    return piece_seed[keep], scores[keep]


def _finish(
    piece_seed: np.ndarray,
    scores: np.ndarray,
    strings: list[str],
    characters: list[str],
    specials: list[str],
    unk_token: str,
    vocab_size: int,
) -> tuple[list[tuple[str, float]], int]:
    """Every character, then the pieces in the model's order up to `vocab_size`; sorted by score."""
    model = {strings[s]: float(score) for s, score in zip(piece_seed[1:], scores[1:], strict=True)}
    lowest = float(np.nanmin(scores))
    budget = vocab_size - len(specials)
    pieces: list[tuple[str, float]] = []
    inserted = set(specials)
    penalty = 0.0
    for char in characters:
        if char in inserted:
            continue
        if char in model:
            pieces.append((char, model[char]))
        else:
            pieces.append((char, lowest + penalty))
            penalty += MIN_SCORE_PENALTY_DELTA
        inserted.add(char)
    for piece, score in model.items():
        if len(pieces) >= budget:
            break
        if piece not in inserted:
            inserted.add(piece)
            pieces.append((piece, score))
    pieces.sort(key=lambda item: -item[1])
    return [(t, 0.0) for t in specials] + pieces, specials.index(unk_token)
