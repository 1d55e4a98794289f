"""The Kneser-Ney n-gram model: = nltk's KneserNeyInterpolated on real text, distributions sum to one,
the stream scorer = one word at a time, Ney's discounts, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmforge.errors import ConfigError
from lmforge.model.ngram import KneserNeyLM, ney_discount


def _words(shared_data, count: int, skip: int = 0) -> list[str]:
    text = (shared_data / "wikitext-2" / "valid.txt").read_text(encoding="utf-8")
    return text.split()[skip : skip + count]


@pytest.mark.parametrize("order", [2, 3])
def test_equals_nltk_kneser_ney_interpolated(shared_data, order):
    from nltk.lm import KneserNeyInterpolated
    from nltk.util import everygrams

    train = _words(shared_data, 1500)
    held_out = _words(shared_data, 400, skip=5000)
    vocab = {w: i for i, w in enumerate(dict.fromkeys(train))}
    reference = KneserNeyInterpolated(order=order, discount=0.75)
    reference.fit([list(everygrams(train, max_len=order))], vocabulary_text=train)
    ours = KneserNeyLM.fit([vocab[w] for w in train], len(vocab), order=order, discount=0.75, uniform=False)

    # every position of held-out text whose words were seen (nltk gives an unseen word probability 0),
    # contexts seen or not, and the training text itself
    compared = 0
    for text in (held_out, train[:300]):
        for i in range(order - 1, len(text)):
            gram = text[i - order + 1 : i + 1]
            if any(w not in vocab for w in gram):
                continue
            if gram[:-1] == train[: order - 1]:  # seen only at the stream's start: nltk divides by 0
                continue
            expected = reference.score(gram[-1], gram[:-1])
            found = ours.prob(vocab[gram[-1]], [vocab[w] for w in gram[:-1]])
            assert found == pytest.approx(expected, rel=1e-9, abs=1e-15), gram
            compared += 1
    assert compared > 300


def test_each_context_gives_a_distribution(shared_data):
    train = _words(shared_data, 3000)
    vocab = {w: i for i, w in enumerate(dict.fromkeys(train))}
    ids = np.array([vocab[w] for w in train])
    V = len(vocab)
    lm = KneserNeyLM.fit(ids, V, order=3)  # Ney's discounts, the unigram floor
    rng = np.random.default_rng(0)
    contexts = [tuple(ids[i : i + 2]) for i in rng.integers(0, len(ids) - 2, 5)]  # seen
    contexts += [tuple(rng.integers(0, V, 2)) for _ in range(5)]  # mostly unseen
    contexts += [(ids[5],), ()]
    for context in contexts:
        total = math.fsum(lm.prob(w, context) for w in range(V))
        assert total == pytest.approx(1.0, abs=1e-9), context
    # a word the model never saw still has a probability (> 0) through the unigram floor
    assert KneserNeyLM.fit(ids, V + 1, order=3).prob(V, ids[:2]) > 0


def test_stream_scores_equal_one_at_a_time():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 30, 2000) ** 2 % 30  # a skewed distribution: repeats and gaps
    lm = KneserNeyLM.fit(ids, 30, order=3)
    stream = rng.integers(0, 30, 60)
    scores = lm.log_probs(stream)
    expected = [math.log(lm.prob(int(w), stream[max(0, i - 2) : i])) for i, w in enumerate(stream)]
    np.testing.assert_allclose(scores, expected, rtol=1e-12)


def test_ney_discount_and_levels():
    assert ney_discount(np.array([1, 1, 2])) == pytest.approx(2 / 4)
    lm = KneserNeyLM.fit(np.arange(100) % 7, 7, order=3, discount=[0.5, 0.6, 0.7])
    assert [level.discount for level in lm.levels] == [0.6, 0.7]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"order": 0}, "order must be at least 1"),
        ({"discount": 1.5}, "discounts must lie in"),
        ({"discount": [0.5]}, "1 discounts for 3 levels"),
        ({"vocab_size": 3}, "token ids must lie in 0..2"),
    ],
)
def test_bad_settings(kwargs, message):
    settings = {"vocab_size": 10, "order": 3, **kwargs}
    with pytest.raises(ConfigError, match=message):
        KneserNeyLM.fit(np.arange(20) % 10, **settings)
