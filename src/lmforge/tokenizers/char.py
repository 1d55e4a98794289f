"""Character-level tokenization: every character is a token.

This file implements `CharTokenizer`: the vocabulary is the characters of the corpus by frequency (at most
`vocab_size`, each seen `min_frequency` times), ``[UNK]`` for the others. It is saved as HF's `WordLevel`
model behind a `Split` pre-tokenizer that isolates every character, with the `Fuse` decoder.

The smallest vocabulary, the longest sequences: the other end of the trade-off from word-level tokens.

    >>> tok = CharTokenizer.train(["to be or not to be"])
    >>> tok.encode("be").tokens
    ['b', 'e']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from lmforge.errors import LmforgeError
from lmforge.tokenizers.base import AddedToken, Tokenizer
from lmforge.tokenizers.bpe import END_OF_TEXT, check_vocab_size
from lmforge.tokenizers.pipeline import Fuse, Split
from lmforge.tokenizers.word import WordLevelModel, vocabulary_by_frequency

CHAR_SPECIAL_TOKENS = ("[PAD]", "[UNK]", END_OF_TEXT)
EVERY_CHARACTER = r"[\s\S]"  # one character, newlines included, in both Python's and HF's (Oniguruma) regex


class EveryCharacter(Split):
    """`Split` on every character, isolated: each character is a word. Same file format, faster."""

    def __init__(self):
        super().__init__(EVERY_CHARACTER, "isolated")

    def split(self, text: str) -> tuple[list[str], list[int]]:
        return list(text), list(range(len(text)))


class CharTokenizer(Tokenizer):
    """One token per character; unknown characters become `[UNK]`."""

    kind = "char"

    @classmethod
    def from_vocab(
        cls, vocab: dict[str, int], special_tokens: Sequence[str] = CHAR_SPECIAL_TOKENS
    ) -> CharTokenizer:
        return cls(
            WordLevelModel(vocab, unk_token="[UNK]" if "[UNK]" in vocab else None),
            pre_tokenizer=EveryCharacter(),
            decoder=Fuse(),
            added_tokens=[AddedToken(t, vocab[t], special=True) for t in special_tokens],
        )

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 1024,
        special_tokens: Sequence[str] = CHAR_SPECIAL_TOKENS,
        min_frequency: int = 1,
    ) -> CharTokenizer:
        """Keep the `vocab_size` most frequent characters (after the special tokens)."""
        special_tokens = list(special_tokens)
        check_vocab_size(vocab_size, special_tokens, 1, "character")
        counter: Counter = Counter()
        for text in texts:
            if not isinstance(text, str):
                raise LmforgeError(
                    f"train takes an iterator of str, got an item of type {type(text).__name__}"
                )
            counter.update(text)
        if not counter:
            raise LmforgeError(
                "empty corpus: the training texts hold no characters; pass files with text in them"
            )
        vocab = vocabulary_by_frequency(counter, special_tokens, vocab_size, min_frequency)
        return cls.from_vocab(vocab, special_tokens)
