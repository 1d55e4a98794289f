"""The stages of a tokenizer that are not the model: normalizers, pre-tokenizers, post-processors, decoders.

A tokenizer runs text through the same stages as Hugging Face `tokenizers`, so a `tokenizer.json` maps onto
these classes one to one (see `hf.py`):

    text ─ normalizer ─▶ normalized text ─ pre-tokenizer ─▶ words ─ model ─▶ tokens ─ post-processor ─▶ Encoding
                                                                          decoder: tokens ─▶ text

Generic stages live here; the ones that belong to one kind of tokenizer live with it (`ByteLevel` in
`bpe.py`, `BertNormalizer` and `BertPreTokenizer` in `wordpiece.py`).

Offsets. A normalizer returns the normalized text and its *alignment*: for each normalized character, the
span ``(start, end)`` of the original characters it came from — or ``None`` when the normalized text lines up
one to one with the original (the fast, common case: lower-casing ASCII does not move anything). Token
offsets are computed in normalized characters and mapped back through the alignment, as HF does, so they
are always character spans into the text the user passed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain
from operator import itemgetter

import regex

Alignment = (
    list[tuple[int, int]] | None
)  # per normalized char: its (start, end) in the input; None = identity

# Rust's `char::is_whitespace` (the Unicode White_Space property), which HF uses. Python's `str.isspace`
# and `\s` also accept \x1c-\x1f, which Unicode does not call whitespace.
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# BERT's punctuation: every ASCII punctuation mark (including $, +, <, ^, `, |, ~) or Unicode category P*.
PUNCTUATION = r"!-/:-@\[-`{-~\p{P}"


# --- normalizers -----------------------------------------------------------------------------------------


def map_chars(text: str, transform: Callable[[str], str]) -> tuple[str, Alignment]:
    """Apply `transform` to each character (it may return '', one or several characters), tracking spans.

    >>> map_chars("Ab", lambda c: c.lower() * 2)
    ('aabb', [(0, 1), (0, 1), (1, 2), (1, 2)])
    """
    pieces: list[str] = []
    alignment: list[tuple[int, int]] = []
    for index, char in enumerate(text):
        out = transform(char)
        pieces.append(out)
        if len(out) == 1:
            alignment.append((index, index + 1))
        elif out:
            alignment.extend([(index, index + 1)] * len(out))
    return "".join(pieces), alignment


def compose(first: Alignment, second: Alignment) -> Alignment:
    """Alignment of two normalizers run one after the other (`second` is in `first`'s output coordinates)."""
    if first is None:
        return second
    if second is None:
        return first
    return [(first[s][0], first[e - 1][1]) if e > s else (first[s][0], first[s][0]) for s, e in second]


class Normalizer:
    """Turns text into normalized text plus its alignment to the input."""

    def normalize(self, text: str) -> tuple[str, Alignment]:
        raise NotImplementedError

    def to_json(self) -> dict:
        raise NotImplementedError


class Lowercase(Normalizer):
    """Lower-case each character (per character, as Rust does: no final-sigma rule)."""

    def normalize(self, text: str) -> tuple[str, Alignment]:
        if text.isascii():
            return text.lower(), None
        lowered = text.lower()
        if len(lowered) == len(text) and "Σ" not in text:
            return lowered, None
        return map_chars(text, str.lower)

    def to_json(self) -> dict:
        return {"type": "Lowercase"}


@dataclass
class UnicodeNormalizer(Normalizer):
    """NFC, NFD, NFKC or NFKD. Each input character is normalized on its own when the text changes, so the
    alignment stays exact; composition across characters (NFC of 'e' + U+0301) is done per cluster, whose
    composed character aligns to its first character, as in HF."""

    form: str

    def normalize(self, text: str) -> tuple[str, Alignment]:
        if text.isascii() or unicodedata.is_normalized(self.form, text):
            return text, None
        if self.form in ("NFD", "NFKD"):
            return map_chars(text, lambda c: unicodedata.normalize(self.form, c))
        # Composing forms: normalize each cluster (a starter and the marks after it) as a unit.
        pieces: list[str] = []
        alignment: list[tuple[int, int]] = []
        start = 0
        for index in range(1, len(text) + 1):
            if index == len(text) or unicodedata.combining(text[index]) == 0:
                out = unicodedata.normalize(self.form, text[start:index])
                pieces.append(out)
                # As HF: the j-th character out stands for the j-th character in (the last one past that).
                alignment.extend(
                    (min(start + j, index - 1), min(start + j, index - 1) + 1) for j in range(len(out))
                )
                start = index
        return "".join(pieces), alignment

    def to_json(self) -> dict:
        return {"type": self.form}


class StripAccents(Normalizer):
    """Drop non-spacing marks (category Mn); meant to follow NFD, as in HF."""

    def normalize(self, text: str) -> tuple[str, Alignment]:
        if text.isascii():
            return text, None
        category = unicodedata.category
        if not any(category(c) == "Mn" for c in text):
            return text, None
        return map_chars(text, lambda c: "" if category(c) == "Mn" else c)

    def to_json(self) -> dict:
        return {"type": "StripAccents"}


@dataclass
class Strip(Normalizer):
    """Remove leading and/or trailing whitespace."""

    left: bool = True
    right: bool = True

    def normalize(self, text: str) -> tuple[str, Alignment]:
        start, end = 0, len(text)
        while self.left and start < end and text[start].isspace():
            start += 1
        while self.right and end > start and text[end - 1].isspace():
            end -= 1
        if (start, end) == (0, len(text)):
            return text, None
        return text[start:end], [(i, i + 1) for i in range(start, end)]

    def to_json(self) -> dict:
        return {"type": "Strip", "strip_left": self.left, "strip_right": self.right}


@dataclass
class Replace(Normalizer):
    """Replace every occurrence of a string (or regex matches, `is_regex`); each replacement character aligns
    to the last character of its match, as in HF. A one-character pattern replaced by one character keeps the
    text aligned."""

    pattern: str
    content: str
    is_regex: bool = False

    def __post_init__(self):
        self._regex = regex.compile(self.pattern if self.is_regex else regex.escape(self.pattern))

    def normalize(self, text: str) -> tuple[str, Alignment]:
        if not self.is_regex:
            if self.pattern not in text:
                return text, None
            if len(self.pattern) == 1 and len(self.content) == 1:
                return text.replace(self.pattern, self.content), None
        pieces: list[str] = []
        alignment: list[tuple[int, int]] = []
        position = 0
        for match in self._regex.finditer(text):
            found, match_end = match.span()
            if found == match_end:
                continue
            pieces.append(text[position:found])
            alignment.extend((i, i + 1) for i in range(position, found))
            pieces.append(self.content)
            alignment.extend([(match_end - 1, match_end)] * len(self.content))
            position = match_end
        if position == 0 and not pieces:
            return text, None
        pieces.append(text[position:])
        alignment.extend((i, i + 1) for i in range(position, len(text)))
        return "".join(pieces), alignment

    def to_json(self) -> dict:
        pattern = {"Regex": self.pattern} if self.is_regex else {"String": self.pattern}
        return {"type": "Replace", "pattern": pattern, "content": self.content}


@dataclass
class Prepend(Normalizer):
    """Put a string before non-empty text (SentencePiece's '▁'); it aligns to the first character."""

    prepend: str

    def normalize(self, text: str) -> tuple[str, Alignment]:
        if not text:
            return text, None
        n = len(self.prepend)
        return self.prepend + text, [(0, 1)] * n + [(i, i + 1) for i in range(len(text))]

    def to_json(self) -> dict:
        return {"type": "Prepend", "prepend": self.prepend}


@dataclass
class NormalizerSequence(Normalizer):
    normalizers: list[Normalizer]

    def normalize(self, text: str) -> tuple[str, Alignment]:
        alignment: Alignment = None
        for normalizer in self.normalizers:
            text, step = normalizer.normalize(text)
            alignment = compose(alignment, step)
        return text, alignment

    def to_json(self) -> dict:
        return {"type": "Sequence", "normalizers": [n.to_json() for n in self.normalizers]}


# --- pre-tokenizers --------------------------------------------------------------------------------------


class PreTokenizer:
    """Splits normalized text into words: two parallel lists, the words and where each starts."""

    covers_text = False  # True when the words, end to end, are the whole text (then starts can be derived)

    def split(self, text: str) -> tuple[list[str], list[int]]:
        raise NotImplementedError

    def words(self, text: str) -> list[str]:
        """The words only (training counts words and needs no positions)."""
        return self.split(text)[0]

    def to_json(self) -> dict:
        raise NotImplementedError


def covering_split(pieces: list[str]) -> tuple[list[str], list[int]]:
    """Starts of `pieces` that, end to end, are the whole text.

    >>> covering_split(["ab", " c"])
    (['ab', ' c'], [0, 2])
    """
    starts = [0]
    starts.extend(accumulate(map(len, pieces)))
    starts.pop()
    return pieces, starts


def gapped_split(pairs: list[tuple[str, str]]) -> tuple[list[str], list[int]]:
    """Words from `findall` of a pattern ``(gap)(word)``, where the gaps (dropped text) come before each word.

    >>> gapped_split([("", "a"), ("  ", "b")])
    (['a', 'b'], [0, 3])
    """
    ends = list(accumulate(map(len, chain.from_iterable(pairs))))
    return list(map(itemgetter(1), pairs)), ends[0::2]


@dataclass
class Split(PreTokenizer):
    """Split on a regex or string with one of HF's behaviours: removed, isolated, merged_with_previous,
    merged_with_next, contiguous; `invert` makes the matches the words instead of the separators."""

    pattern: str
    behavior: str = "isolated"
    invert: bool = False
    is_regex: bool = True

    def __post_init__(self):
        behaviors = ("removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous")
        if self.behavior not in behaviors:
            raise ValueError(f"unknown split behavior {self.behavior!r}; expected one of {behaviors}")
        self._regex = regex.compile(self.pattern if self.is_regex else regex.escape(self.pattern))

    def split(self, text: str) -> tuple[list[str], list[int]]:
        # As HF: every span of the text, in order, flagged as a match or not (empty matches too: a pattern
        # that matches the empty string cuts between characters), flags flipped by `invert`; then the
        # behaviour folds the spans, and removed or empty pieces are dropped.
        spans: list[tuple[int, int, bool]] = []
        position = 0
        after_match = False  # the last match was not empty and ended at `position`
        for match in self._regex.finditer(text):
            start, end = match.span()
            if start == end and after_match and start == position:
                after_match = False
                continue  # Oniguruma finds no empty match right after a match; Python's regex does
            after_match = end > start
            if start != position:
                spans.append((position, start, False))
            spans.append((start, end, True))
            position = end
        if position != len(text):
            spans.append((position, len(text), False))
        if self.invert:
            spans = [(s, e, not m) for s, e, m in spans]
        behavior = self.behavior
        pieces: list[list] = []  # [start, end, removed]
        if behavior in ("removed", "isolated"):
            pieces = [[s, e, m and behavior == "removed"] for s, e, m in spans]
        elif behavior == "merged_with_next":  # HF folds from the end: a match joins the span after it
            previous_match = False
            for s, e, m in reversed(spans):
                if m and not previous_match and pieces:
                    pieces[-1][0] = s
                else:
                    pieces.append([s, e, False])
                previous_match = m
            pieces.reverse()
        else:  # contiguous: equal neighbours join; merged_with_previous: a match joins the span before it
            contiguous = behavior == "contiguous"
            previous_match = False
            for s, e, m in spans:
                joins = m == previous_match if contiguous else m and not previous_match
                if joins and pieces:
                    pieces[-1][1] = e
                else:
                    pieces.append([s, e, False])
                previous_match = m
        kept = [(s, e) for s, e, removed in pieces if not removed and e > s]
        return [text[s:e] for s, e in kept], [s for s, _ in kept]

    def to_json(self) -> dict:
        key = "Regex" if self.is_regex else "String"
        return {
            "type": "Split",
            "pattern": {key: self.pattern},
            "behavior": "".join(p.capitalize() for p in self.behavior.split("_")),
            "invert": self.invert,
        }


class Whitespace(PreTokenizer):
    """HF `Whitespace`: the words are the matches of ``\\w+|[^\\w\\s]+``."""

    _pattern = regex.compile(r"(\s*)(\w+|[^\w\s]+)")

    def split(self, text: str) -> tuple[list[str], list[int]]:
        return gapped_split(self._pattern.findall(text))

    def to_json(self) -> dict:
        return {"type": "Whitespace"}


class WhitespaceSplit(PreTokenizer):
    """HF `WhitespaceSplit`: split on whitespace, which is dropped."""

    _pattern = regex.compile(rf"([{WHITESPACE}]*)([^{WHITESPACE}]+)")

    def split(self, text: str) -> tuple[list[str], list[int]]:
        return gapped_split(self._pattern.findall(text))

    def to_json(self) -> dict:
        return {"type": "WhitespaceSplit"}


@dataclass
class Punctuation(PreTokenizer):
    """HF `Punctuation`: split off punctuation (BERT's definition), isolated by default."""

    behavior: str = "isolated"

    def __post_init__(self):
        self._split = Split(rf"[{PUNCTUATION}]", self.behavior)

    def split(self, text: str) -> tuple[list[str], list[int]]:
        return self._split.split(text)

    def to_json(self) -> dict:
        return {"type": "Punctuation", "behavior": self._split.to_json()["behavior"]}


@dataclass
class Digits(PreTokenizer):
    """HF `Digits`: split off runs of digits (or each digit when `individual_digits`)."""

    individual_digits: bool = False

    def __post_init__(self):
        self._split = Split(r"\p{Nd}" if self.individual_digits else r"\p{Nd}+", "isolated")

    def split(self, text: str) -> tuple[list[str], list[int]]:
        return self._split.split(text)

    def to_json(self) -> dict:
        return {"type": "Digits", "individual_digits": self.individual_digits}


@dataclass
class Metaspace(PreTokenizer):
    """SentencePiece's pre-tokenizer: spaces become `replacement` ('▁'), which starts the text too
    (prepend_scheme "always", or "first": only at the start of the input, or "never"); with `split`, each
    word runs from one '▁' to the next. The prepending is done by the tokenizer (`Tokenizer._prefix`), since
    it moves offsets; `split` sees the text with the '▁' already in front."""

    replacement: str = "\u2581"
    prepend_scheme: str = "always"
    split_words: bool = True

    def __post_init__(self):
        if self.prepend_scheme not in ("always", "first", "never"):
            raise ValueError(f"prepend_scheme must be always, first or never, got {self.prepend_scheme!r}")
        if len(self.replacement) != 1:
            raise ValueError(f"replacement must be one character, got {self.replacement!r}")
        self._words = regex.compile(
            rf"{regex.escape(self.replacement)}?[^{regex.escape(self.replacement)}]+|"
            rf"{regex.escape(self.replacement)}"
        )

    covers_text = True

    def words(self, text: str) -> list[str]:
        text = text.replace(" ", self.replacement)
        if not self.split_words:
            return [text] if text else []
        return self._words.findall(text)

    def split(self, text: str) -> tuple[list[str], list[int]]:
        return covering_split(self.words(text))

    def to_json(self) -> dict:
        return {
            "type": "Metaspace",
            "replacement": self.replacement,
            "prepend_scheme": self.prepend_scheme,
            "split": self.split_words,
        }


@dataclass
class FixedLength(PreTokenizer):
    """HF `FixedLength`: pieces of `length` characters (the last one shorter)."""

    length: int = 5

    def __post_init__(self):
        if self.length < 1:
            raise ValueError(f"length must be >= 1, got {self.length}")

    covers_text = True

    def words(self, text: str) -> list[str]:
        return [text[i : i + self.length] for i in range(0, len(text), self.length)]

    def split(self, text: str) -> tuple[list[str], list[int]]:
        return covering_split(self.words(text))

    def to_json(self) -> dict:
        return {"type": "FixedLength", "length": self.length}


@dataclass
class PreTokenizerSequence(PreTokenizer):
    pre_tokenizers: list[PreTokenizer]

    def split(self, text: str) -> tuple[list[str], list[int]]:
        words, starts = [text], [0]
        for pre_tokenizer in self.pre_tokenizers:
            new_words: list[str] = []
            new_starts: list[int] = []
            for word, start in zip(words, starts, strict=True):
                parts, offsets = pre_tokenizer.split(word)
                new_words.extend(parts)
                new_starts.extend(start + o for o in offsets)
            words, starts = new_words, new_starts
        return words, starts

    def to_json(self) -> dict:
        return {"type": "Sequence", "pretokenizers": [p.to_json() for p in self.pre_tokenizers]}


# --- post-processors -------------------------------------------------------------------------------------


@dataclass
class TemplatePiece:
    """One element of a template: a special token (by its name) or sequence "A" / "B", with its type id."""

    name: str
    type_id: int = 0
    is_sequence: bool = False


@dataclass
class TemplateProcessing:
    """Adds special tokens around one or two sequences, e.g. BERT's ``[CLS] $A [SEP] $B:1 [SEP]:1``.

    `special_tokens` maps a name of the template to the ids and tokens it stands for (usually one each).
    """

    single: list[TemplatePiece]
    pair: list[TemplatePiece]
    special_tokens: dict[str, tuple[list[int], list[str]]] = field(default_factory=dict)

    @classmethod
    def bert(cls, cls_token: str, cls_id: int, sep_token: str, sep_id: int) -> TemplateProcessing:
        return cls(
            single=[TemplatePiece(cls_token), TemplatePiece("A", 0, True), TemplatePiece(sep_token)],
            pair=[
                TemplatePiece(cls_token),
                TemplatePiece("A", 0, True),
                TemplatePiece(sep_token),
                TemplatePiece("B", 1, True),
                TemplatePiece(sep_token, 1),
            ],
            special_tokens={cls_token: ([cls_id], [cls_token]), sep_token: ([sep_id], [sep_token])},
        )

    def num_special_tokens(self, is_pair: bool) -> int:
        template = self.pair if is_pair else self.single
        return sum(len(self.special_tokens[p.name][0]) for p in template if not p.is_sequence)

    def to_json(self) -> dict:
        def piece(p: TemplatePiece) -> dict:
            if p.is_sequence:
                return {"Sequence": {"id": p.name, "type_id": p.type_id}}
            return {"SpecialToken": {"id": p.name, "type_id": p.type_id}}

        return {
            "type": "TemplateProcessing",
            "single": [piece(p) for p in self.single],
            "pair": [piece(p) for p in self.pair],
            "special_tokens": {
                name: {"id": name, "ids": ids, "tokens": tokens}
                for name, (ids, tokens) in self.special_tokens.items()
            },
        }


@dataclass
class PostProcessorSequence:
    """Several post-processors in a row (e.g. ByteLevel offset trimming, then a template)."""

    processors: list

    def to_json(self) -> dict:
        return {"type": "Sequence", "processors": [p.to_json() for p in self.processors]}


# --- decoders --------------------------------------------------------------------------------------------


class Decoder:
    """Turns tokens back into text."""

    def decode(self, tokens: list[str]) -> str:
        return "".join(self.decode_chain(tokens))

    def decode_chain(self, tokens: list[str]) -> list[str]:
        raise NotImplementedError

    def to_json(self) -> dict:
        raise NotImplementedError


class Fuse(Decoder):
    """Concatenate the tokens (character tokenizers)."""

    def decode_chain(self, tokens: list[str]) -> list[str]:
        return ["".join(tokens)]

    def to_json(self) -> dict:
        return {"type": "Fuse"}


@dataclass
class ReplaceDecoder(Decoder):
    """Replace a string (or regex matches) in each token: '▁' back to ' ' for SentencePiece BPE."""

    pattern: str
    content: str
    is_regex: bool = False

    def __post_init__(self):
        self._regex = regex.compile(self.pattern) if self.is_regex else None

    def decode_chain(self, tokens: list[str]) -> list[str]:
        if self._regex is not None:
            return [self._regex.sub(lambda _: self.content, t) for t in tokens]
        return [t.replace(self.pattern, self.content) for t in tokens]

    def to_json(self) -> dict:
        pattern = {"Regex": self.pattern} if self.is_regex else {"String": self.pattern}
        return {"type": "Replace", "pattern": pattern, "content": self.content}


class ByteFallback(Decoder):
    """Runs of ``<0xAB>`` tokens back to the UTF-8 text they spell; a run that is not valid UTF-8 gives one
    U+FFFD per byte (as HF)."""

    def decode_chain(self, tokens: list[str]) -> list[str]:
        out: list[str] = []
        pending = bytearray()

        def flush() -> None:
            if pending:
                try:
                    out.append(pending.decode("utf-8"))
                except UnicodeDecodeError:
                    out.extend(["\ufffd"] * len(pending))
                pending.clear()

        for token in tokens:
            value = _byte_token_value(token)
            if value is None:
                flush()
                out.append(token)
            else:
                pending.append(value)
        flush()
        return out

    def to_json(self) -> dict:
        return {"type": "ByteFallback"}


def _byte_token_value(token: str) -> int | None:
    """The byte a ``<0xAB>`` token stands for, else None."""
    if len(token) != 6 or not token.startswith("<0x") or token[5] != ">":
        return None
    try:
        return int(token[3:5], 16)
    except ValueError:
        return None


@dataclass
class StripDecoder(Decoder):
    """Remove up to `start` leading and `stop` trailing `content` characters from each token."""

    content: str = " "
    start: int = 0
    stop: int = 0

    def decode_chain(self, tokens: list[str]) -> list[str]:
        out = []
        for token in tokens:
            begin = 0
            while begin < min(self.start, len(token)) and token[begin] == self.content:
                begin += 1
            end = len(token)
            while end > begin and len(token) - end < self.stop and token[end - 1] == self.content:
                end -= 1
            out.append(token[begin:end])
        return out

    def to_json(self) -> dict:
        return {"type": "Strip", "content": self.content, "start": self.start, "stop": self.stop}


@dataclass
class MetaspaceDecoder(Decoder):
    """'▁' back to spaces; in the first token they are dropped (the one SentencePiece put in front) unless
    prepend_scheme is "never"."""

    replacement: str = "\u2581"
    prepend_scheme: str = "always"
    split_words: bool = True

    def decode_chain(self, tokens: list[str]) -> list[str]:
        out = []
        for index, token in enumerate(tokens):
            space = "" if index == 0 and self.prepend_scheme != "never" else " "
            out.append(token.replace(self.replacement, space))
        return out

    to_json = Metaspace.to_json  # the same fields, the same JSON as the pre-tokenizer


@dataclass
class BPEDecoder(Decoder):
    """Character-level BPE with an end-of-word suffix: the suffix becomes a space (none after the last token)."""

    suffix: str = "</w>"

    def decode_chain(self, tokens: list[str]) -> list[str]:
        last = len(tokens) - 1
        return [t.replace(self.suffix, "" if i == last else " ") for i, t in enumerate(tokens)]

    def to_json(self) -> dict:
        return {"type": "BPEDecoder", "suffix": self.suffix}


_CLEANUPS = [
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" do not", " don't"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
]


def cleanup_tokenization_spaces(text: str) -> str:
    """Undo the spaces a word-level split put before punctuation and contractions (as HF does).

    >>> cleanup_tokenization_spaces("hello , world !")
    'hello, world!'
    """
    for dirty, clean in _CLEANUPS:
        text = text.replace(dirty, clean)
    return text


@dataclass
class WordPieceDecoder(Decoder):
    """Join words with spaces, glue ``##`` continuations to the previous token; optional cleanup."""

    prefix: str = "##"
    cleanup: bool = True

    def decode_chain(self, tokens: list[str]) -> list[str]:
        out = []
        for index, token in enumerate(tokens):
            if index:
                token = token[len(self.prefix) :] if token.startswith(self.prefix) else " " + token
            out.append(cleanup_tokenization_spaces(token) if self.cleanup else token)
        return out

    def to_json(self) -> dict:
        return {"type": "WordPiece", "prefix": self.prefix, "cleanup": self.cleanup}


@dataclass
class DecoderSequence(Decoder):
    decoders: list[Decoder]

    def decode_chain(self, tokens: list[str]) -> list[str]:
        for decoder in self.decoders:
            tokens = decoder.decode_chain(tokens)
        return tokens

    def to_json(self) -> dict:
        return {"type": "Sequence", "decoders": [d.to_json() for d in self.decoders]}


def join_with_spaces(tokens: Sequence[str]) -> str:
    """HF's decoding when a file has no decoder."""
    return " ".join(tokens)
