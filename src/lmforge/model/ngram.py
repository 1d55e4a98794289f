"""The n-gram language model where the course's story of language models starts: interpolated Kneser-Ney
(Kneser & Ney 1995; Chen & Goodman 1998), counted with numpy over a stream of token ids.

What this file implements:
  - `KneserNeyLM.fit(ids, vocab_size, order=3)`: n-gram counts of a token stream (n = 1..order) as sorted
    integer keys (an n-gram is the number u·V^(n-1) + ... + w), and what the estimates need of them;
  - `log_probs(ids)`: the natural log-probability of every token of a stream given the up to order - 1
    tokens before it, vectorised over the stream; `prob(word, context)` for one word.

The estimate, recursively from the longest context down (d = the discount of that level):

    top level (raw counts):         p(w | ctx) = max(c(ctx w) - d, 0) / c(ctx ·) + γ(ctx) p(w | ctx[1:])
    lower levels (continuations):   c is replaced by N1+(· ctx w), the number of distinct words seen
                                    *before* ctx w: a word that follows many contexts is a likely
                                    continuation even if it is rare ("Francisco" follows only "San")
    γ(ctx) = d · N1+(ctx ·) / total  (the mass the discount took, spread by the lower level)
    unigrams:                       p(w) = N1+(· w) / N1+(· ·), interpolated with 1 / V when
                                    `uniform=True` so that a word never seen gets a probability too

A context never seen gives all its weight to the shorter one. With `uniform=False` and one discount for
every level this is nltk's `KneserNeyInterpolated` exactly (tests/test_ngram.py checks it); by default each
level gets the discount n1 / (n1 + 2 n2) of its own count-of-counts (Ney, Essen & Kneser 1994).

    >>> lm = KneserNeyLM.fit(np.array([0, 1, 2, 0, 1, 3, 0, 1, 2]), vocab_size=4, order=3)
    >>> round(lm.prob(2, (0, 1)), 4), round(lm.prob(3, (0, 1)), 4)
    (0.5714, 0.2381)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmforge.errors import ConfigError


def ngram_keys(ids: np.ndarray, n: int, vocab_size: int) -> np.ndarray:
    """The n-grams of a stream as int64 keys: u·V^(n-1) + ... + w, one per start position.

    >>> ngram_keys(np.array([1, 2, 3]), 2, 10).tolist()
    [12, 23]
    """
    keys = np.zeros(len(ids) - n + 1, dtype=np.int64)
    for j in range(n):
        keys = keys * vocab_size + ids[j : len(ids) - n + 1 + j]
    return keys


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[k] where keys[k] == query (keys sorted), else 0."""
    if len(keys) == 0:
        return np.zeros(len(query), dtype=values.dtype)
    at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[at] == query, values[at], 0)


def _grouped(keys: np.ndarray, counts: np.ndarray, vocab_size: int):
    """For n-gram keys with counts: (sorted prefix keys, summed counts, distinct last words) per prefix."""
    prefixes = keys // vocab_size
    unique, start = np.unique(prefixes, return_index=True)  # keys are sorted, so prefixes are too
    totals = np.add.reduceat(counts, start) if len(counts) else counts
    types = np.diff(np.append(start, len(prefixes)))
    return unique, totals.astype(np.float64), types.astype(np.float64)


def ney_discount(counts: np.ndarray) -> float:
    """n1 / (n1 + 2 n2) from how many n-grams occur once (n1) and twice (n2); 0.75 when undefined.

    >>> ney_discount(np.array([1, 1, 1, 2, 5]))
    0.6
    """
    n1, n2 = int(np.sum(counts == 1)), int(np.sum(counts == 2))
    return n1 / (n1 + 2 * n2) if n1 + n2 else 0.75


@dataclass
class _Level:
    """What one context length needs: the (k+1)-gram numerators, and per context its total and types."""

    keys: np.ndarray  # sorted (k+1)-gram keys
    counts: np.ndarray  # their numerators: raw counts (top level) or continuation counts (lower)
    context_keys: np.ndarray  # sorted k-gram context keys seen in the raw (k+1)-gram counts
    context_totals: np.ndarray  # denominator per context: sum of the numerators
    context_types: np.ndarray  # N1+(ctx ·): distinct words after the context (raw counts)
    discount: float


class KneserNeyLM:
    """An interpolated Kneser-Ney n-gram model over token ids 0..vocab_size-1 (see the module docstring)."""

    def __init__(self, vocab_size: int, order: int, levels: list[_Level], unigram: np.ndarray, uniform: bool):
        self.vocab_size = vocab_size
        self.order = order
        self.levels = levels  # levels[k - 1]: contexts of length k
        self.unigram = unigram  # (V,) p(w) at the lowest level
        self.uniform = uniform

    @classmethod
    def fit(
        cls,
        ids: Sequence[int] | np.ndarray,
        vocab_size: int,
        order: int = 3,
        discount: float | Sequence[float] | None = None,
        uniform: bool = True,
    ) -> KneserNeyLM:
        """Count a stream of token ids. `discount`: one value for every level, one per level (unigram
        level first), or None for Ney's estimate per level."""
        ids = np.asarray(ids, dtype=np.int64)
        if order < 1:
            raise ConfigError(f"order must be at least 1, got {order}")
        if float(vocab_size) ** order >= 2.0**63:
            raise ConfigError(f"a {order}-gram of a {vocab_size}-word vocabulary does not fit an int64 key")
        if len(ids) < order:
            raise ConfigError(f"{len(ids)} tokens are too few to count {order}-grams")
        if ids.min() < 0 or ids.max() >= vocab_size:
            raise ConfigError(f"token ids must lie in 0..{vocab_size - 1}")
        V = vocab_size
        raw = {n: np.unique(ngram_keys(ids, n, V), return_counts=True) for n in range(1, order + 1)}
        # continuation counts of each n-gram (n < order): how many distinct tokens precede it
        continuation = {n: np.unique(raw[n + 1][0] % V**n, return_counts=True) for n in range(1, order)}
        if discount is None:
            discounts = [ney_discount(continuation[1][1]) if order > 1 else ney_discount(raw[1][1])]
            discounts += [
                ney_discount(raw[k + 1][1] if k + 1 == order else continuation[k + 1][1])
                for k in range(1, order)
            ]
        elif isinstance(discount, (int, float)):
            discounts = [float(discount)] * order
        else:
            discounts = [float(d) for d in discount]
            if len(discounts) != order:
                raise ConfigError(f"{len(discounts)} discounts for {order} levels")
        if any(not 0 < d < 1 for d in discounts):
            raise ConfigError(f"discounts must lie in (0, 1), got {discounts}")

        levels = []
        for k in range(1, order):  # context length k: (k+1)-grams
            # the contexts seen, and how many distinct words follow each: from the raw counts
            context_keys, raw_totals, context_types = _grouped(*raw[k + 1], V)
            if k + 1 == order:
                keys, counts, totals = *raw[k + 1], raw_totals
            else:  # a context may have raw counts and no continuation (seen only at the stream's start)
                keys, counts = continuation[k + 1]
                grouped_keys, grouped_totals, _ = _grouped(keys, counts, V)
                totals = _lookup(grouped_keys, grouped_totals, context_keys)
            levels.append(
                _Level(keys, counts.astype(np.float64), context_keys, totals, context_types, discounts[k])
            )

        if order == 1:
            words, counts = raw[1]
            total = float(counts.sum())
        else:
            words, counts = continuation[1]
            total = float(counts.sum())  # N1+(· ·): distinct bigrams
        unigram = np.zeros(V, dtype=np.float64)
        if uniform:
            d = discounts[0]
            unigram[words] = np.maximum(counts - d, 0) / total
            unigram += d * len(words) / total / V
        else:
            unigram[words] = counts / total
        return cls(V, order, levels, unigram, uniform)

    def _probs(self, words: np.ndarray, contexts: list[np.ndarray | None]) -> np.ndarray:
        """p(words[i] | context) where contexts[k - 1][i] is the key of the length-k context (None or -1:
        no such context, e.g. at the start of a stream)."""
        p = self.unigram[words]
        for level, context in zip(self.levels, contexts, strict=False):
            if context is None:
                continue
            valid = context >= 0
            total = _lookup(level.context_keys, level.context_totals, context)
            types = _lookup(level.context_keys, level.context_types, context)
            seen = valid & (total > 0)
            numerator = _lookup(level.keys, level.counts, context * self.vocab_size + words)
            safe = np.where(seen, total, 1.0)
            alpha = np.maximum(numerator - level.discount, 0) / safe
            gamma = level.discount * types / safe
            p = np.where(seen, alpha + gamma * p, p)
        return p

    def log_probs(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """(N,) natural-log probability of each token given the up to order - 1 tokens before it in `ids`
        (the first tokens of the stream get shorter contexts)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ConfigError(f"token ids must lie in 0..{self.vocab_size - 1}")
        contexts: list[np.ndarray | None] = []
        for k in range(1, self.order):
            context = np.full(len(ids), -1, dtype=np.int64)
            if len(ids) > k:
                context[k:] = ngram_keys(ids[:-1], k, self.vocab_size)
            contexts.append(context)
        with np.errstate(divide="ignore"):
            return np.log(self._probs(ids, contexts))

    def prob(self, word: int, context: Sequence[int] = ()) -> float:
        """p(word | context): the last order - 1 ids of `context` count."""
        context = list(context)[-(self.order - 1) :] if self.order > 1 else []
        keys: list[np.ndarray | None] = []
        for k in range(1, self.order):
            if k > len(context):
                keys.append(None)
                continue
            key = 0
            for token in context[-k:]:
                key = key * self.vocab_size + int(token)
            keys.append(np.array([key], dtype=np.int64))
        return float(self._probs(np.array([word], dtype=np.int64), keys)[0])
