"""Character-level BPE with an end-of-word suffix: the original BPE of Sennrich et al. (2016), as HF's
`CharBPETokenizer` builds it.

Words are characters, and the last character of each word carries ``</w>``, so ``"low"`` starts as
``l o w</w>``: a merge learns whether a piece ends a word (``est</w>`` in "lowest" is not the ``est`` of
"estate"). Decoding turns each ``</w>`` back into a space (`BPEDecoder`).

This file implements `CharBPETokenizer`: HF's stages (`BertNormalizer` without lower-casing, BERT's
whitespace-and-punctuation split, the `BPE` model with ``unk_token`` and ``end_of_word_suffix``, the
`BPEDecoder`) and `train`, which learns the merges HF's `BpeTrainer(end_of_word_suffix="</w>")` learns on
the same text, in the same order (the shared loop `bpe.learn_merges`).

    >>> tok = CharBPETokenizer.train(["low lower lowest newest widest"] * 5, vocab_size=20)
    >>> tok.merges[:3]
    [('e', 's'), ('l', 'o'), ('es', 't</w>')]
    >>> tok.encode("slowest newer").tokens
    ['s', 'lo', 'west</w>', 'n', 'e', 'w', 'er</w>']
    >>> tok.decode(tok.encode("slowest newer").ids)
    'slowest newer'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from lmforge.errors import LmforgeError
from lmforge.tokenizers.base import AddedToken, Tokenizer
from lmforge.tokenizers.bpe import BPEModel, check_vocab_size, count_words, learn_merges
from lmforge.tokenizers.pipeline import BPEDecoder, Lowercase, Normalizer, NormalizerSequence
from lmforge.tokenizers.wordpiece import BertNormalizer, BertPreTokenizer

END_OF_WORD = "</w>"
CHARBPE_SPECIAL_TOKENS = ("<unk>",)


def _normalizer(lowercase: bool) -> Normalizer:
    """HF's: BERT's cleaning and CJK spacing without lower-casing, then `Lowercase` if asked."""
    bert = BertNormalizer(lowercase=False)
    return NormalizerSequence([bert, Lowercase()]) if lowercase else bert


class CharBPETokenizer(Tokenizer):
    """Original BPE: characters, ``</w>`` ending each word, `<unk>` for characters it never saw."""

    kind = "charbpe"

    @classmethod
    def from_merges(
        cls,
        vocab: dict[str, int],
        merges: Sequence[tuple[str, str]],
        special_tokens: Sequence[str] = CHARBPE_SPECIAL_TOKENS,
        unk_token: str = "<unk>",
        suffix: str = END_OF_WORD,
        lowercase: bool = False,
    ) -> CharBPETokenizer:
        """HF `CharBPETokenizer`'s stages around a vocabulary and its merges (special tokens in `vocab`)."""
        return cls(
            BPEModel(
                vocab,
                merges,
                byte_level=False,
                unk_token=unk_token if unk_token in vocab else None,
                end_of_word_suffix=suffix,
            ),
            normalizer=_normalizer(lowercase),
            pre_tokenizer=BertPreTokenizer(),
            decoder=BPEDecoder(suffix),
            added_tokens=[AddedToken(t, vocab[t], special=True) for t in special_tokens],
        )

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 8192,
        special_tokens: Sequence[str] = CHARBPE_SPECIAL_TOKENS,
        min_frequency: int = 2,
        limit_alphabet: int = 1000,
        suffix: str = END_OF_WORD,
        lowercase: bool = False,
        *,
        endings: Sequence[str] | None = None,
    ) -> CharBPETokenizer:
        """Learn merges from `texts` (any iterator of strings, read once), as HF's `BpeTrainer` with
        `end_of_word_suffix` does.

        Ids: the special tokens, the alphabet (the `limit_alphabet` most frequent characters, by code
        point), each character that ends a word with the suffix (``e</w>``; sorted, where HF takes them in
        the order of its hash map), then one id per merge, up to `vocab_size`. Characters outside the
        alphabet are left out of the words they are in, as HF does; encoding makes them `<unk>`.

        Merges of equally frequent pairs go by the smaller pair of ids, as in HF, so the order of the
        suffixed characters decides some ties: `endings` (e.g. those of an HF-trained vocabulary, by id)
        puts them in that order first, to reproduce that vocabulary id for id.
        """
        special_tokens = list(special_tokens)
        if not suffix:
            raise LmforgeError("the end-of-word suffix must not be empty (HF's default is '</w>')")
        if limit_alphabet < 1:
            raise LmforgeError(f"limit_alphabet must be at least 1, got {limit_alphabet}")
        check_vocab_size(vocab_size, special_tokens, 1, "character")
        normalizer = _normalizer(lowercase)
        pre_tokenizer = BertPreTokenizer()
        counter = count_words(texts, lambda text: pre_tokenizer.words(normalizer.normalize(text)[0]))
        characters: Counter = Counter()
        for word, count in counter.items():
            for char in word:
                characters[char] += count
        kept = list(characters)
        if len(kept) > limit_alphabet:  # HF drops the rarest (its order among equal counts is unstable)
            kept = sorted(kept, key=lambda c: (characters[c], c))[len(kept) - limit_alphabet :]
        symbols = list(special_tokens)
        ids = {s: i for i, s in enumerate(symbols)}
        for char in sorted(kept):
            if char not in ids:
                ids[char] = len(symbols)
                symbols.append(char)
        final = sorted({word[-1] + suffix for word in counter if word[-1] in ids})
        if endings is not None:
            wanted, given = set(final), set(endings)
            final = [e for e in endings if e in wanted] + [e for e in final if e not in given]
        for symbol in final:
            if symbol not in ids:
                ids[symbol] = len(symbols)
                symbols.append(symbol)
        words = []
        for word in counter:
            known = [c for c in word if c in ids]
            last = word[-1] in ids  # HF adds the suffix only when the word's last character is kept
            symbol_ids = [ids[c] for c in (known[:-1] if last else known)]
            if last:
                symbol_ids.append(ids[word[-1] + suffix])
            words.append(symbol_ids)
        counts = list(counter.values())
        del counter
        merges = learn_merges(words, counts, symbols, vocab_size, min_frequency)
        vocab = {s: i for i, s in enumerate(symbols)}
        merge_strings = [(symbols[a], symbols[b]) for a, b in merges]
        return cls.from_merges(vocab, merge_strings, special_tokens, "<unk>", suffix, lowercase)

    @property
    def merges(self) -> list[tuple[str, str]]:
        return list(self.model.merges)
