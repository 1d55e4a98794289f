"""Byte-level BPE, as in GPT-2: text → UTF-8 bytes → merges learned from a corpus.

This file implements:
  - the byte ↔ printable-character table of GPT-2 (`BYTE_TO_CHAR`), so that every byte is a visible token
    character ('Ġ' is the space byte) and no text ever needs ``[UNK]``;
  - `ByteLevel`, its three stages: the pre-tokenizer (GPT-2's regex splits text into words such as
    " world", "'s", " 2026"), the post-processor (trims the space of "Ġworld" off its offsets) and the
    decoder (characters → bytes → UTF-8);
  - `BPEModel`: applies merges by rank to one word; byte-level or character-level (with HF's
    continuing-subword prefix / end-of-word suffix), as HF's `BPE` model does;
  - `learn_merges`: the training loop (most frequent adjacent pair, merged everywhere, counts updated
    incrementally for the words that hold the pair only — the same algorithm and tie-breaking as HF);
  - `BPETokenizer`: `train`, and a readable vocabulary that shows each merge with its two parts.

    >>> tok = BPETokenizer.train(["low lower lowest"] * 10, vocab_size=262)   # 256 bytes + 6 merges
    >>> tok.encode(" lower").tokens, tok.encode(" lowest").tokens
    (['Ġlowe', 'r'], ['Ġlowe', 'st'])
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat

import regex

from lmforge.errors import LmforgeError
from lmforge.tokenizers.base import AddedToken, Model, Tokenizer
from lmforge.tokenizers.pipeline import Decoder, PreTokenizer, covering_split

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
END_OF_TEXT = "<|endoftext|>"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table: printable bytes map to themselves, the others to 256 + n, so every byte is visible.

    >>> bytes_to_unicode()[ord(" ")], bytes_to_unicode()[ord("A")]
    ('Ġ', 'A')
    """
    printable = list(range(ord("!"), ord("~") + 1))
    printable += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}
# The 256 byte characters in the order of their code points: GPT-2's (and HF's) order of the base vocabulary.
BYTE_ALPHABET = sorted(BYTE_TO_CHAR.values())
_BYTE_TRANSLATION = [BYTE_TO_CHAR[b] for b in range(256)]


def to_byte_chars(text: str) -> str:
    """Text → its UTF-8 bytes, each written as its visible character.

    >>> to_byte_chars("hé!")
    'hÃ©!'
    """
    return "".join([_BYTE_TRANSLATION[b] for b in text.encode("utf-8")])


# --- the three ByteLevel stages --------------------------------------------------------------------------


@dataclass
class ByteLevel(PreTokenizer):
    """GPT-2's pre-tokenizer: split with its regex (`use_regex`), optionally adding a leading space.

    The byte mapping itself happens in `BPEModel` (byte_level=True), which sees each word once thanks to
    the tokenizer's per-word cache.
    """

    add_prefix_space: bool = False
    trim_offsets: bool = True
    use_regex: bool = True

    def __post_init__(self):
        self._findall = regex.compile(GPT2_PATTERN).findall

    def split(self, text: str) -> tuple[list[str], list[int]]:
        if not self.use_regex:
            return ([text], [0]) if text else ([], [])
        return covering_split(self._findall(text))

    covers_text = True  # GPT-2's regex leaves no character out

    def words(self, text: str) -> list[str]:
        if self.use_regex:
            return self._findall(text)
        return [text] if text else []

    def to_json(self) -> dict:
        return {
            "type": "ByteLevel",
            "add_prefix_space": self.add_prefix_space,
            "trim_offsets": self.trim_offsets,
            "use_regex": self.use_regex,
        }


def _is_space_char(char: str) -> bool:
    return char == "Ġ" or char.isspace()


@dataclass
class ByteLevelProcessor:
    """The ByteLevel post-processor: with `trim_offsets`, offsets leave out the spaces a token starts or
    ends with ('Ġworld' covers "world", not " world"), exactly as HF's `process_offsets`."""

    trim_offsets: bool = True
    add_prefix_space: bool = False

    def trim(self, token: str, span: tuple[int, int], is_first: bool = False) -> tuple[int, int]:
        leading = 0
        while leading < len(token) and _is_space_char(token[leading]):
            leading += 1
        if leading == 0 and not _is_space_char(token[-1:] or "x"):
            return span
        trailing = 0
        while trailing < len(token) and _is_space_char(token[len(token) - 1 - trailing]):
            trailing += 1
        start, end = span
        if leading:
            if is_first and self.add_prefix_space and leading == 1:
                leading = 0
            start = min(start + leading, end)
        if trailing and end >= trailing:
            end = max(end - trailing, start)
        return start, end

    def to_json(self) -> dict:
        return {
            "type": "ByteLevel",
            "add_prefix_space": self.add_prefix_space,
            "trim_offsets": self.trim_offsets,
            "use_regex": True,
        }


class ByteLevelDecoder(Decoder):
    """Token characters → bytes → UTF-8 (invalid sequences become U+FFFD, as in HF)."""

    def decode_chain(self, tokens: list[str]) -> list[str]:
        data = bytearray()
        for token in tokens:
            try:
                data.extend([CHAR_TO_BYTE[c] for c in token])
            except KeyError:  # not a byte-level token (an added token with other characters): its UTF-8
                data.extend(token.encode("utf-8"))
        return [data.decode("utf-8", errors="replace")]

    def to_json(self) -> dict:
        return {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}


# --- the model -------------------------------------------------------------------------------------------


class BPEModel(Model):
    """Applies merges by rank: the pair that was learned first is merged first, everywhere in the word.

    byte_level: words are turned into byte characters first (set when the pre-tokenizer is ByteLevel).
    Character-level files (no ByteLevel) work too: `unk_token` for characters not in the vocabulary,
    `continuing_subword_prefix` / `end_of_word_suffix` as in HF.
    """

    def __init__(
        self,
        vocab: dict[str, int],
        merges: Sequence[tuple[str, str]],
        *,
        byte_level: bool = True,
        unk_token: str | None = None,
        continuing_subword_prefix: str | None = None,
        end_of_word_suffix: str | None = None,
        fuse_unk: bool = False,
        ignore_merges: bool = False,
        byte_fallback: bool = False,
    ):
        self.vocab = vocab
        self.byte_fallback = byte_fallback
        self.merges = [tuple(m) for m in merges]
        self.byte_level = byte_level
        self.unk_token = unk_token
        self.continuing_subword_prefix = continuing_subword_prefix
        self.end_of_word_suffix = end_of_word_suffix
        self.fuse_unk = fuse_unk
        self.ignore_merges = ignore_merges
        prefix_length = len(continuing_subword_prefix or "")
        self._ranks: dict[tuple[str, str], tuple[int, str]] = {}
        for rank, (a, b) in enumerate(self.merges):
            merged = a + (
                b[prefix_length:] if prefix_length and b.startswith(continuing_subword_prefix) else b
            )
            if merged not in vocab:
                raise LmforgeError(
                    f"merge {rank} ({a!r} + {b!r}) makes {merged!r}, which is not in the vocabulary"
                )
            self._ranks.setdefault((a, b), (rank, merged))
        self._rank_of = {pair: rank for pair, (rank, _) in self._ranks.items()}
        self._merged_of = {rank: merged for rank, merged in self._ranks.values()}

    def merge(self, symbols: list[str], spans: list[tuple[int, int]] | None = None):
        """Merge adjacent symbols by rank until no learned pair is left; with `spans` (one per symbol), also
        return the span of each merged token.

        model.merge(["l", "o", "w"])   # with merges [("l", "o"), ("lo", "w")]
        # ['low']
        """
        rank_of = self._rank_of
        no_rank = len(rank_of) + 1
        if spans is None:
            return self._merge_fast(symbols, rank_of, no_rank)
        while len(symbols) > 1:
            # One C-level pass for the ranks of all adjacent pairs; the lowest is merged everywhere.
            pair_ranks = list(map(rank_of.get, zip(symbols, symbols[1:], strict=False), repeat(no_rank)))
            best_rank = min(pair_ranks)
            if best_rank == no_rank:
                break
            i = pair_ranks.index(best_rank)
            first, second = symbols[i], symbols[i + 1]
            merged = self._merged_of[best_rank]
            out: list[str] = symbols[:i]
            out_spans: list[tuple[int, int]] = spans[:i] if spans is not None else []
            n = len(symbols)
            while i < n:
                if i < n - 1 and symbols[i] == first and symbols[i + 1] == second:
                    out.append(merged)
                    if spans is not None:
                        out_spans.append((spans[i][0], spans[i + 1][1]))
                    i += 2
                else:
                    out.append(symbols[i])
                    if spans is not None:
                        out_spans.append(spans[i])
                    i += 1
            symbols = out
            if spans is not None:
                spans = out_spans
        return symbols if spans is None else (symbols, spans)

    def _merge_fast(self, symbols: list[str], rank_of: dict, no_rank: int) -> list[str]:
        """The same merges, one at a time (the leftmost lowest-ranked pair first, as HF does), keeping the
        ranks of adjacent pairs up to date around each merge instead of recomputing them all."""
        get = rank_of.get
        ranks = list(map(get, zip(symbols, symbols[1:], strict=False), repeat(no_rank)))
        merged_of = self._merged_of
        while ranks:
            best = min(ranks)
            if best == no_rank:
                break
            i = ranks.index(best)
            symbols[i : i + 2] = [merged_of[best]]
            del ranks[i]
            if i > 0:
                ranks[i - 1] = get((symbols[i - 1], symbols[i]), no_rank)
            if i < len(ranks):
                ranks[i] = get((symbols[i], symbols[i + 1]), no_rank)
        return symbols

    def tokenize(self, word: str) -> list[tuple[int, str, int, int]]:
        if not word:
            return []
        if self.byte_level:
            return self._tokenize_bytes(word)
        return self._tokenize_chars(word)

    def _tokenize_bytes(self, word: str) -> list[tuple[int, str, int, int]]:
        chars = to_byte_chars(word)
        vocab = self.vocab
        if self.ignore_merges and chars in vocab:
            return [(vocab[chars], chars, 0, len(word))]
        tokens = self.merge(list(chars))
        # Byte position → character position in `word`: each token covers the characters its bytes touch.
        if len(chars) == len(word):
            char_at = None
        else:
            char_at = [i for i, c in enumerate(word) for _ in range(len(c.encode("utf-8")))]
        out = []
        position = 0
        for token in tokens:
            end = position + len(token)
            if char_at is None:
                start_char, end_char = position, end
            else:
                start_char, end_char = char_at[position], char_at[end - 1] + 1
            token_id = vocab.get(token)
            if token_id is None:  # a file whose vocabulary lacks some bytes: as HF, use unk or drop
                if self.unk_token is None:
                    position = end
                    continue
                token, token_id = self.unk_token, vocab[self.unk_token]
            out.append((token_id, token, start_char, end_char))
            position = end
        return out

    def _tokenize_chars(self, word: str) -> list[tuple[int, str, int, int]]:
        prefix = self.continuing_subword_prefix or ""
        suffix = self.end_of_word_suffix or ""
        vocab = self.vocab
        if self.ignore_merges and word in vocab:
            return [(vocab[word], word, 0, len(word))]
        symbols: list[str] = []
        spans: list[tuple[int, int]] = []
        last = len(word) - 1
        for i, char in enumerate(word):
            symbol = (prefix + char if i else char) + (suffix if i == last else "")
            if symbol not in vocab:
                if self.byte_fallback:  # the character's UTF-8 bytes as <0xAB> pieces, if all are known
                    pieces = [f"<0x{b:02X}>" for b in symbol.encode("utf-8")]
                    if all(p in vocab for p in pieces):
                        symbols.extend(pieces)
                        spans.extend([(i, i + 1)] * len(pieces))
                        continue
                if self.unk_token is None:
                    continue
                if self.fuse_unk and symbols and symbols[-1] == self.unk_token:
                    spans[-1] = (spans[-1][0], i + 1)
                    continue
                symbol = self.unk_token
            symbols.append(symbol)
            spans.append((i, i + 1))
        tokens, spans = self.merge(symbols, spans)
        return [(vocab[t], t, start, end) for t, (start, end) in zip(tokens, spans, strict=True)]

    def to_json(self) -> dict:
        plain = all(" " not in a and " " not in b for a, b in self.merges)
        return {
            "type": "BPE",
            "dropout": None,
            "unk_token": self.unk_token,
            "continuing_subword_prefix": self.continuing_subword_prefix,
            "end_of_word_suffix": self.end_of_word_suffix,
            "fuse_unk": self.fuse_unk,
            "byte_fallback": self.byte_fallback,
            "ignore_merges": self.ignore_merges,
            "vocab": self.vocab,
            "merges": [f"{a} {b}" for a, b in self.merges] if plain else [list(m) for m in self.merges],
        }

    def readable_vocab(self) -> list[str]:
        """One line per token; a merged token shows its two parts: ``[Ġ][the] -> [Ġthe] 262``."""
        show = _readable_bytes if self.byte_level else (lambda t: t)
        made_by = {}
        for a, b in self.merges:
            made_by.setdefault(self._ranks[(a, b)][1], (a, b))
        lines = []
        for token, token_id in sorted(self.vocab.items(), key=lambda item: item[1]):
            if token in made_by:
                a, b = made_by[token]
                lines.append(f"{token_id}\t[{show(a)}][{show(b)}] -> [{show(token)}]")
            else:
                lines.append(f"{token_id}\t[{show(token)}]")
        return lines


def _readable_bytes(token: str) -> str:
    """A byte-level token as text, control characters escaped: 'Ġthe' → ' the', 'Ċ' → '\\n'."""
    try:
        text = bytes(CHAR_TO_BYTE[c] for c in token).decode("utf-8", errors="replace")
    except KeyError:
        return token
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


# --- training --------------------------------------------------------------------------------------------


def learn_merges(
    words: list[list[int]],
    counts: list[int],
    symbols: list[str],
    vocab_size: int,
    min_frequency: int = 0,
    join: Callable[[str, str], str] = str.__add__,
) -> list[tuple[int, int]]:
    """Learn BPE merges: repeatedly merge the most frequent adjacent pair of symbols.

    words:   each distinct word as a list of symbol ids (changed in place);
    counts:  how often each word occurs in the corpus;
    symbols: the string of each symbol id so far (grows with each merge; a merge that makes a string that
             already exists reuses its id, as HF does);
    stops when `symbols` has `vocab_size` entries or no pair occurs `min_frequency` times.

    Pair counts are updated only around the merged positions of the words that hold the pair (HF's
    algorithm, with its tie-break: the smaller pair of ids first).

    >>> learn_merges([[0, 1, 0, 1]], [3], ["a", "b"], vocab_size=3)
    [(0, 1)]
    """
    # A pair (a, b) is the int a << 21 | b: cheaper to hash than a tuple (ids stay below 2**21).
    shift = 21
    low = (1 << shift) - 1
    pair_counts: dict[int, int] = defaultdict(int)
    where: dict[int, set[int]] = defaultdict(set)
    for index, word in enumerate(words):
        count = counts[index]
        for a, b in zip(word, word[1:], strict=False):
            key = a << shift | b
            pair_counts[key] += count
            where[key].add(index)
    heap = [(-count, key) for key, count in pair_counts.items() if count > 0]
    heapq.heapify(heap)
    ids = {s: i for i, s in enumerate(symbols)}
    merges: list[tuple[int, int]] = []
    while len(symbols) < vocab_size and heap:
        negative, pair = heapq.heappop(heap)
        count = pair_counts[pair]
        if -negative != count:  # stale entry: counts only fall for old pairs, so re-queue the current one
            if count > 0:
                heapq.heappush(heap, (-count, pair))
            continue
        if count < 1 or count < min_frequency:
            break
        first, second = pair >> shift, pair & low
        string = join(symbols[first], symbols[second])
        new = ids.get(string)
        if new is None:
            new = ids[string] = len(symbols)
            symbols.append(string)
        merges.append((first, second))
        created: set[int] = set()
        for index in where.pop(pair, ()):
            word = words[index]
            weight = counts[index]
            i = -1
            while True:  # each occurrence of `first` followed by `second`, left to right
                try:
                    i = word.index(first, i + 1)
                except ValueError:
                    break
                if i + 1 >= len(word) or word[i + 1] != second:
                    continue
                if i > 0:
                    left = word[i - 1]
                    pair_counts[left << shift | first] -= weight
                    key = left << shift | new
                    pair_counts[key] += weight
                    where[key].add(index)
                    created.add(key)
                word[i : i + 2] = [new]
                if i < len(word) - 1:
                    right = word[i + 1]
                    pair_counts[second << shift | right] -= weight
                    key = new << shift | right
                    pair_counts[key] += weight
                    where[key].add(index)
                    created.add(key)
        for key in created:
            if pair_counts[key] > 0:
                heapq.heappush(heap, (-pair_counts[key], key))
    return merges


def count_words(texts: Iterable[str], split: Callable[[str], list[str]]) -> Counter:
    """Stream `texts` once, counting the words `split` makes: memory grows with distinct words only."""
    counter: Counter = Counter()
    any_text = False
    for text in texts:
        if not isinstance(text, str):
            raise LmforgeError(f"train takes an iterator of str, got an item of type {type(text).__name__}")
        if text:
            any_text = True
            counter.update(split(text))
    if not any_text or not counter:
        raise LmforgeError("empty corpus: the training texts hold no words; pass files with text in them")
    return counter


def check_vocab_size(vocab_size: int, special_tokens: Sequence[str], base: int, what: str) -> None:
    """A vocabulary must hold the special tokens and the base alphabet; say the smallest size that works."""
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
        raise LmforgeError(f"vocab_size must be an integer, got {vocab_size!r}")
    if len(set(special_tokens)) != len(special_tokens):
        raise LmforgeError(f"special tokens repeat: {list(special_tokens)}")
    smallest = len(special_tokens) + base
    if vocab_size < smallest:
        raise LmforgeError(
            f"vocab_size {vocab_size} is smaller than the base alphabet: {base} {what} + "
            f"{len(special_tokens)} special tokens = {smallest}; use --vocab-size {smallest} or more"
        )


class BPETokenizer(Tokenizer):
    """Byte-level BPE (GPT-2): never needs [UNK]; `decode(encode(s).ids) == s` for every string."""

    kind = "bpe"

    @classmethod
    def from_merges(
        cls,
        vocab: dict[str, int],
        merges: Sequence[tuple[str, str]],
        special_tokens: Sequence[str] = (END_OF_TEXT,),
    ) -> BPETokenizer:
        """Assemble GPT-2's stages around a vocabulary and its merges (special tokens must be in `vocab`)."""
        added = [AddedToken(t, vocab[t], special=True) for t in special_tokens]
        return cls(
            BPEModel(vocab, merges, byte_level=True),
            pre_tokenizer=ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
            post_processor=ByteLevelProcessor(trim_offsets=True),
            decoder=ByteLevelDecoder(),
            added_tokens=added,
        )

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 8192,
        special_tokens: Sequence[str] = (END_OF_TEXT,),
        min_frequency: int = 2,
    ) -> BPETokenizer:
        """Learn merges from `texts` (any iterator of strings, read once).

        Ids: the special tokens first, then the 256 bytes, then one id per merge, up to `vocab_size`.
        """
        special_tokens = list(special_tokens)
        check_vocab_size(vocab_size, special_tokens, 256, "bytes")
        counter = count_words(texts, ByteLevel().words)
        symbols = special_tokens + BYTE_ALPHABET
        position = {char: len(special_tokens) + i for i, char in enumerate(BYTE_ALPHABET)}
        table = [position[BYTE_TO_CHAR[b]] for b in range(256)]  # byte value -> symbol id
        words = [[table[b] for b in word.encode("utf-8")] for word in counter]
        counts = list(counter.values())
        del counter
        merges = learn_merges(words, counts, symbols, vocab_size, min_frequency)
        vocab = {s: i for i, s in enumerate(symbols)}
        merge_strings = [(symbols[a], symbols[b]) for a, b in merges]
        return cls.from_merges(vocab, merge_strings, special_tokens)

    @property
    def merges(self) -> list[tuple[str, str]]:
        return list(self.model.merges)
