"""Word-level tokenization: one token per word, a vocabulary of the most frequent words, ``[UNK]`` for the rest.

This file implements:
  - `WordLevelModel`: a word is its id, or the unknown token (HF's `WordLevel` model);
  - `WordTokenizer`: splits on whitespace and punctuation (BERT's rules, `BertPreTokenizer`), optional
    lower-casing, a vocabulary by frequency with a minimum count and a maximum size.

It shows the two faults subword tokenizers fix: the vocabulary is huge, yet new words still become [UNK].

    >>> tok = WordTokenizer.train(["the frog sat on the log"], vocab_size=6, min_frequency=1)
    >>> tok.encode("the frog jumped").tokens
    ['the', 'frog', '[UNK]']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from lmforge.errors import LmforgeError
from lmforge.tokenizers.base import AddedToken, Model, Tokenizer
from lmforge.tokenizers.bpe import END_OF_TEXT, check_vocab_size, count_words
from lmforge.tokenizers.pipeline import Lowercase, WordPieceDecoder
from lmforge.tokenizers.wordpiece import BertPreTokenizer

WORD_SPECIAL_TOKENS = ("[PAD]", "[UNK]", END_OF_TEXT)


class WordLevelModel(Model):
    """Each word is one token: its id, or `unk_token` when it is not in the vocabulary."""

    def __init__(self, vocab: dict[str, int], unk_token: str | None = "[UNK]"):
        self.vocab = vocab
        self.unk_token = unk_token
        self._unk_id = vocab.get(unk_token) if unk_token is not None else None

    def tokenize(self, word: str) -> list[tuple[int, str, int, int]]:
        token_id = self.vocab.get(word)
        if token_id is not None:
            return [(token_id, word, 0, len(word))]
        if self._unk_id is None:
            raise LmforgeError(f"{word!r} is not in the vocabulary and the tokenizer has no unknown token")
        return [(self._unk_id, self.unk_token, 0, len(word))]

    def to_json(self) -> dict:
        return {"type": "WordLevel", "vocab": self.vocab, "unk_token": self.unk_token}


def vocabulary_by_frequency(
    counter: Counter, special_tokens: Sequence[str], vocab_size: int, min_frequency: int
) -> dict[str, int]:
    """Special tokens first, then the most frequent entries (ties: alphabetical) seen `min_frequency` times.

    >>> vocabulary_by_frequency(Counter("abbccc"), ["[UNK]"], 3, 1)
    {'[UNK]': 0, 'c': 1, 'b': 2}
    """
    vocab = {token: i for i, token in enumerate(special_tokens)}
    for entry, count in sorted(counter.items(), key=lambda item: (-item[1], item[0])):
        if len(vocab) >= vocab_size or count < min_frequency:
            break
        if entry not in vocab:
            vocab[entry] = len(vocab)
    return vocab


class WordTokenizer(Tokenizer):
    """Whole words as tokens (split on whitespace and punctuation); `[UNK]` for words outside the vocabulary."""

    kind = "word"

    @classmethod
    def from_vocab(
        cls,
        vocab: dict[str, int],
        special_tokens: Sequence[str] = WORD_SPECIAL_TOKENS,
        lowercase: bool = False,
    ) -> WordTokenizer:
        return cls(
            WordLevelModel(vocab, unk_token="[UNK]" if "[UNK]" in vocab else None),
            normalizer=Lowercase() if lowercase else None,
            pre_tokenizer=BertPreTokenizer(),
            # Joining words with spaces, then "hello , world" -> "hello, world": HF's WordPiece cleanup.
            decoder=WordPieceDecoder(prefix="##", cleanup=True),
            added_tokens=[AddedToken(t, vocab[t], special=True) for t in special_tokens],
        )

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 30000,
        special_tokens: Sequence[str] = WORD_SPECIAL_TOKENS,
        min_frequency: int = 1,
        lowercase: bool = False,
    ) -> WordTokenizer:
        """Keep the `vocab_size` most frequent words (with at least `min_frequency` occurrences)."""
        special_tokens = list(special_tokens)
        check_vocab_size(vocab_size, special_tokens, 1, "word")
        normalizer = Lowercase() if lowercase else None
        pre_tokenizer = BertPreTokenizer()
        if normalizer is None:
            split = pre_tokenizer.words
        else:

            def split(text: str) -> list[str]:
                return pre_tokenizer.words(normalizer.normalize(text)[0])

        counter = count_words(texts, split)
        vocab = vocabulary_by_frequency(counter, special_tokens, vocab_size, min_frequency)
        return cls.from_vocab(vocab, special_tokens, lowercase=lowercase)
