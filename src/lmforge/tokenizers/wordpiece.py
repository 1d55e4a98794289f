"""WordPiece, as in BERT: normalize, split on spaces and punctuation, then greedy longest-match subwords.

This file implements:
  - `BertNormalizer`: drops control characters, turns whitespace into spaces, puts spaces around CJK
    ideographs, strips accents (NFD, then no non-spacing marks) and lower-cases — HF's rules exactly, with
    a fast path for plain ASCII and an alignment back to the original text otherwise;
  - `BertPreTokenizer`: whitespace is dropped, each punctuation mark is its own word;
  - `WordPieceModel`: the longest vocabulary entry that starts the word, then the longest ``##``
    continuation, and so on; a word it cannot cover (or longer than 100 characters) is one ``[UNK]``;
  - `WordPieceTokenizer`: `train` (HF's way: BPE merges over characters and ``##`` continuations, then the
    merged strings are the vocabulary) and BERT's ``[CLS] a [SEP] b [SEP]`` template.

    tok = load_tokenizer("all-MiniLM-L6-v2/tokenizer.json")
    tok.encode("Frog on a log.").tokens[:7]
    # ['[CLS]', 'frog', 'on', 'a', 'log', '.', '[SEP]']
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import regex

from lmforge.errors import LmforgeError
from lmforge.tokenizers.base import AddedToken, Model, Tokenizer
from lmforge.tokenizers.bpe import check_vocab_size, count_words, learn_merges
from lmforge.tokenizers.pipeline import (
    PUNCTUATION,
    WHITESPACE,
    Alignment,
    Normalizer,
    PreTokenizer,
    TemplateProcessing,
    WordPieceDecoder,
    gapped_split,
)

BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

_ASCII_CONTROL = regex.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ASCII_WHITESPACE_TO_SPACE = str.maketrans("\t\n\r", "   ")
_PLAIN_OR_NOT = regex.compile(r"[\x20-\x7e\t\n\r]+|[^\x20-\x7e\t\n\r]+")
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


_WHITESPACE = regex.compile(rf"[{WHITESPACE}]")


def is_whitespace(char: str) -> bool:
    """Rust's `char::is_whitespace` (Unicode White_Space), which HF uses."""
    return bool(_WHITESPACE.match(char))


def is_control(char: str) -> bool:
    """BERT's control characters: categories Cc, Cf, Co, Cs except tab, newline and carriage return (which
    are spaces). Unassigned code points (Cn) stay, as in HF."""
    return char not in "\t\n\r" and unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs")


def is_cjk(char: str) -> bool:
    """A CJK ideograph, which BERT treats as a word on its own (not Japanese kana or Korean hangul)."""
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


@dataclass
class BertNormalizer(Normalizer):
    """BERT's normalizer. `strip_accents` None means: strip when lower-casing (as in BERT uncased)."""

    clean_text: bool = True
    handle_chinese_chars: bool = True
    strip_accents: bool | None = None
    lowercase: bool = True

    def __post_init__(self):
        strip = self.lowercase if self.strip_accents is None else self.strip_accents
        self._char = lru_cache(maxsize=65536)(self._make_char_transform(strip))

    def __getstate__(self) -> dict:  # the cached per-character function is rebuilt, not pickled
        return {k: v for k, v in self.__dict__.items() if k != "_char"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    def _make_char_transform(self, strip: bool):
        def transform(char: str) -> str:
            if self.clean_text:
                if char in "\x00\ufffd" or is_control(char):
                    return ""
                if is_whitespace(char):
                    char = " "
            out = f" {char} " if self.handle_chinese_chars and is_cjk(char) else char
            if strip:
                out = "".join(c for c in unicodedata.normalize("NFD", out) if unicodedata.category(c) != "Mn")
            if self.lowercase:
                out = "".join(c.lower() for c in out)  # per character: Rust has no final-sigma rule
            return out

        return transform

    def _plain(self, text: str) -> str:
        """Printable ASCII plus tab/newline/return: only whitespace mapping and lower-casing apply."""
        if self.clean_text:
            text = text.translate(_ASCII_WHITESPACE_TO_SPACE)
        return text.lower() if self.lowercase else text

    def normalize(self, text: str) -> tuple[str, Alignment]:
        if text.isascii() and not (self.clean_text and _ASCII_CONTROL.search(text)):
            return self._plain(text), None
        # Runs of plain ASCII go through the fast path; other characters one by one (cached).
        runs = _PLAIN_OR_NOT.findall(text)
        pieces: list[str] = []
        moved = False
        transform = self._char
        for run in runs:
            if run[0] in "\t\n\r" or " " <= run[0] <= "~":
                pieces.append(self._plain(run))
            else:
                for char in run:
                    out = transform(char)
                    pieces.append(out)
                    moved = moved or len(out) != 1
        if not moved:
            return "".join(pieces), None
        alignment: list[tuple[int, int]] = []
        position = 0
        piece_index = 0
        for run in runs:
            if run[0] in "\t\n\r" or " " <= run[0] <= "~":
                alignment.extend(
                    zip(
                        range(position, position + len(run)),
                        range(position + 1, position + len(run) + 1),
                        strict=True,
                    )
                )
                position += len(run)
                piece_index += 1
            else:
                for _ in run:
                    alignment.extend([(position, position + 1)] * len(pieces[piece_index]))
                    position += 1
                    piece_index += 1
        return "".join(pieces), alignment

    def to_json(self) -> dict:
        return {
            "type": "BertNormalizer",
            "clean_text": self.clean_text,
            "handle_chinese_chars": self.handle_chinese_chars,
            "strip_accents": self.strip_accents,
            "lowercase": self.lowercase,
        }


class BertPreTokenizer(PreTokenizer):
    """Words are runs of characters between whitespace; each punctuation mark is a word of its own.

    >>> BertPreTokenizer().split("frog, on a log.")
    (['frog', ',', 'on', 'a', 'log', '.'], [0, 4, 6, 9, 11, 14])
    """

    _pattern = regex.compile(rf"([{WHITESPACE}]*)([{PUNCTUATION}]|[^{WHITESPACE}{PUNCTUATION}]+)")
    _words = regex.compile(rf"[{PUNCTUATION}]|[^{WHITESPACE}{PUNCTUATION}]+")

    def split(self, text: str) -> tuple[list[str], list[int]]:
        return gapped_split(self._pattern.findall(text))

    def words(self, text: str) -> list[str]:
        return self._words.findall(text)

    def to_json(self) -> dict:
        return {"type": "BertPreTokenizer"}


class WordPieceModel(Model):
    """Greedy longest-match-first over the vocabulary, continuations marked with `prefix`."""

    def __init__(
        self,
        vocab: dict[str, int],
        unk_token: str = "[UNK]",
        prefix: str = "##",
        max_input_chars_per_word: int = 100,
    ):
        self.vocab = vocab
        self.unk_token = unk_token
        self.prefix = prefix
        self.max_input_chars_per_word = max_input_chars_per_word
        self._longest = max((len(t) for t in vocab), default=1)
        if unk_token not in vocab:
            raise LmforgeError(f"WordPiece vocabulary has no unknown token {unk_token!r}")

    def tokenize(self, word: str) -> list[tuple[int, str, int, int]]:
        """Longest matches left to right.

        model.tokenize("unaffable")
        # [(1, 'un', 0, 2), (2, '##aff', 2, 5), (3, '##able', 5, 9)]
        """
        vocab = self.vocab
        n = len(word)
        if n > self.max_input_chars_per_word:
            return [(vocab[self.unk_token], self.unk_token, 0, n)]
        out = []
        start = 0
        prefix = self.prefix
        while start < n:
            end = min(n, start + self._longest)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else prefix + word[start:end]
                token_id = vocab.get(piece)
                if token_id is not None:
                    found = (token_id, piece, start, end)
                    break
                end -= 1
            if found is None:
                return [(vocab[self.unk_token], self.unk_token, 0, n)]
            out.append(found)
            start = end
        return out

    def to_json(self) -> dict:
        return {
            "type": "WordPiece",
            "unk_token": self.unk_token,
            "continuing_subword_prefix": self.prefix,
            "max_input_chars_per_word": self.max_input_chars_per_word,
            "vocab": self.vocab,
        }


class WordPieceTokenizer(Tokenizer):
    """BERT's tokenizer: ``[CLS] frog on a log . [SEP]``, ``[UNK]`` for what the vocabulary cannot cover."""

    kind = "wordpiece"

    @classmethod
    def from_vocab(
        cls,
        vocab: dict[str, int],
        special_tokens: Sequence[str] = BERT_SPECIAL_TOKENS,
        lowercase: bool = True,
        unk_token: str = "[UNK]",
    ) -> WordPieceTokenizer:
        added = [AddedToken(t, vocab[t], special=True) for t in special_tokens]
        template = None
        if "[CLS]" in vocab and "[SEP]" in vocab:
            template = TemplateProcessing.bert("[CLS]", vocab["[CLS]"], "[SEP]", vocab["[SEP]"])
        return cls(
            WordPieceModel(vocab, unk_token=unk_token),
            normalizer=BertNormalizer(lowercase=lowercase),
            pre_tokenizer=BertPreTokenizer(),
            post_processor=template,
            decoder=WordPieceDecoder(),
            added_tokens=added,
        )

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 8192,
        special_tokens: Sequence[str] = BERT_SPECIAL_TOKENS,
        min_frequency: int = 2,
        lowercase: bool = True,
    ) -> WordPieceTokenizer:
        """Learn a vocabulary from `texts` (any iterator of strings, read once).

        Ids: special tokens, then every character seen (and its ``##`` form), then the merged pieces.
        """
        special_tokens = list(special_tokens)
        if "[UNK]" not in special_tokens:
            raise LmforgeError("WordPiece needs [UNK] among its special tokens")
        check_vocab_size(vocab_size, special_tokens, 0, "characters")
        normalizer = BertNormalizer(lowercase=lowercase)
        pre_tokenizer = BertPreTokenizer()
        counter = count_words(texts, lambda text: pre_tokenizer.words(normalizer.normalize(text)[0]))
        starts = sorted({word[0] for word in counter})
        continuations = sorted({"##" + c for word in counter for c in word[1:]})
        check_vocab_size(
            vocab_size, special_tokens, len(starts) + len(continuations), "characters and ##characters"
        )
        symbols = special_tokens + starts + continuations
        ids = {s: i for i, s in enumerate(symbols)}
        words = [[ids[word[0]]] + [ids["##" + c] for c in word[1:]] for word in counter]
        counts = list(counter.values())
        del counter
        learn_merges(words, counts, symbols, vocab_size, min_frequency, join=lambda a, b: a + b[2:])
        vocab = {s: i for i, s in enumerate(symbols)}
        return cls.from_vocab(vocab, special_tokens, lowercase=lowercase)
