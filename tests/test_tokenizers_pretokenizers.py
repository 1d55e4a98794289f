"""The pre-tokenizers that cut text by a pattern or a length — `Split` (every behaviour, inverted or not,
string or regex patterns, patterns that match the empty string), `FixedLength`, `CharDelimiterSplit`,
`Punctuation`, `Digits`, `Whitespace`, `WhitespaceSplit` — against HF's `pre_tokenize_str` on the same
strings (words and character offsets), alone and inside whole tokenizers read from and written to
`tokenizer.json`."""

from __future__ import annotations

import json
import random

import pytest

hf = pytest.importorskip("tokenizers")
from tokenizers import Regex, models, normalizers  # noqa: E402
from tokenizers import pre_tokenizers as hp  # noqa: E402

from lmforge.tokenizers import Tokenizer  # noqa: E402
from lmforge.tokenizers.pipeline import (  # noqa: E402
    Digits,
    FixedLength,
    PreTokenizerSequence,
    Punctuation,
    Split,
    Whitespace,
    WhitespaceSplit,
)

BEHAVIORS = ("removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous")
PATTERNS = [  # (pattern, is_regex)
    ("-", False),
    ("--", False),
    ("ab", False),
    ("🐸", False),
    ("", False),  # matches the empty string: HF cuts between every two characters
    (r"\s+", True),
    (r"[,.!?]", True),
    (r"a|b", True),
    (r"\w+", True),
    (r"\p{L}+", True),
    (r" ?[^\s\w]+", True),
    ("a*", True),  # empty matches, and none right after a match (Oniguruma's rule)
    ("x?", True),
    (r"\b", True),
    (r"(?<=a)", True),
    ("b|", True),
]
PIECES = list("ab  ,.-!?\n\t123") + ["é", "e\u0301", "🐸", "日本", "ab", "--", "٣", "\u00a0", "  "]


def strings(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = ["", " ", "a", "--", "🐸"]
    while len(out) < count:
        out.append("".join(rng.choice(PIECES) for _ in range(rng.randint(1, 16))))
    return out


def ours(pre_tokenizer, text: str) -> list[tuple[str, tuple[int, int]]]:
    words, starts = pre_tokenizer.split(text)
    return [(word, (start, start + len(word))) for word, start in zip(words, starts, strict=True)]


def assert_same(theirs, mine, texts: list[str]) -> None:
    for text in texts:
        assert ours(mine, text) == theirs.pre_tokenize_str(text), (repr(theirs), text)


@pytest.mark.parametrize("behavior", BEHAVIORS)
@pytest.mark.parametrize("invert", [False, True])
def test_split_matches_hf(behavior, invert):
    texts = strings(120, seed=BEHAVIORS.index(behavior) * 2 + invert)
    for pattern, is_regex in PATTERNS:
        theirs = hp.Split(Regex(pattern) if is_regex else pattern, behavior, invert)
        assert_same(theirs, Split(pattern, behavior, invert, is_regex), texts)


@pytest.mark.parametrize("length", [1, 2, 3, 5, 8])
def test_fixed_length_matches_hf(length):
    assert_same(hp.FixedLength(length), FixedLength(length), strings(200, seed=length))


def test_pattern_pre_tokenizers_match_hf():
    texts = strings(300, seed=99)
    assert_same(hp.CharDelimiterSplit("-"), Split("-", "removed", False, False), texts)
    assert_same(hp.Whitespace(), Whitespace(), texts)
    assert_same(hp.WhitespaceSplit(), WhitespaceSplit(), texts)
    assert_same(hp.Digits(individual_digits=True), Digits(True), texts)
    assert_same(hp.Digits(individual_digits=False), Digits(False), texts)
    for behavior in BEHAVIORS:
        assert_same(hp.Punctuation(behavior), Punctuation(behavior), texts)


def word_level(words: list[str]) -> dict[str, int]:
    vocab = {"[UNK]": 0}
    for word in words:
        vocab.setdefault(word, len(vocab))
    return vocab


def test_split_and_fixed_length_in_tokenizer_files_both_ways():
    """HF builds a tokenizer whose pre-tokenizer is a Sequence of Split and FixedLength behind a normalizer
    that moves offsets; lmforge reads its file and encodes identically; the file lmforge writes back is read
    by HF and encodes identically too."""
    texts = strings(300, seed=5)
    stages = hp.Sequence(
        [
            hp.Split(Regex(r"\s+"), "removed"),
            hp.Split("-", "merged_with_next", invert=True),
            hp.FixedLength(3),
        ]
    )
    vocab = word_level([w for t in texts[:150] for w, _ in stages.pre_tokenize_str(t.lower())])
    theirs = hf.Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    theirs.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.Lowercase()])
    theirs.pre_tokenizer = stages
    mine = Tokenizer.from_str(theirs.to_str())
    assert isinstance(mine.pre_tokenizer, PreTokenizerSequence)
    back = hf.Tokenizer.from_str(mine.to_str())
    assert json.loads(back.to_str())["pre_tokenizer"] == json.loads(theirs.to_str())["pre_tokenizer"]
    for text in texts:
        reference = theirs.encode(text)
        for encoding in (mine.encode(text), back.encode(text)):
            assert (encoding.ids, encoding.tokens, encoding.offsets) == (
                reference.ids,
                reference.tokens,
                reference.offsets,
            ), text
