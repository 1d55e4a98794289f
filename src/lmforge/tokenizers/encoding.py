"""`Encoding`: the result of encoding one text (or pair), with tokens and offsets assembled on first read.

Its own module so that `parallel` (which rebuilds encodings sent back by worker processes) and `base`
(which makes them) both build on it without importing each other.

Besides the parallel lists (ids, tokens, offsets, type ids, masks, sequence and word ids) an Encoding answers
the alignment questions QA and NER code asks, with HF `tokenizers`' names and semantics: which tokens make
word 3 (`word_to_tokens`), which token holds character 17 (`char_to_token`), which word and sequence a token
belongs to (`token_to_word`, `token_to_sequence`), and so on.
"""

from __future__ import annotations

from itertools import accumulate, chain, repeat

from lmforge.errors import LmforgeError


class EncodingError(LmforgeError, ValueError):
    """A bad argument to an `Encoding` method (HF raises `ValueError` there too)."""


class Encoding:
    """The result of encoding one text (or one pair of texts).

    ids, tokens, offsets, type_ids, attention_mask, special_tokens_mask, sequence_ids and word_ids are lists
    of the same length. offsets are ``(start, end)`` character spans into the input text (into the second
    text for the tokens of ``b`` in a pair; into each word for pre-tokenized input); special and padding
    tokens get ``(0, 0)``. word_ids give the index of the word (pre-tokenizer piece, added token, or given
    word) each token came from, None for special and padding tokens. `overflowing` holds the cut-off
    windows when truncation is on.

    tokens, offsets and word ids are assembled from the per-word cache the first time they are read: a
    pre-training pipeline that only reads `ids` never pays for them (HF's Python binding is lazy in the same
    way).
    """

    __slots__ = (
        "ids",
        "type_ids",
        "attention_mask",
        "special_tokens_mask",
        "sequence_ids",
        "overflowing",
        "n_sequences",
        "_tokens",
        "_offsets",
        "_word_ids",
        "_parts",
        "_cut",
        "_ranged",
    )

    def __init__(
        self,
        ids: list[int],
        tokens: list[str] | None,
        offsets: list[tuple[int, int]] | None,
        type_ids: list[int],
        attention_mask: list[int],
        special_tokens_mask: list[int],
        sequence_ids: list[int | None] | None = None,
        overflowing: list[Encoding] | None = None,
        parts: list | None = None,
        word_ids: list[int | None] | None = None,
    ):
        self.ids = ids
        self._tokens = tokens
        self._offsets = offsets
        self._word_ids = word_ids if word_ids is not None or tokens is None else [None] * len(ids)
        self._parts = parts  # lazy tokens/offsets/word ids: see `_materialize`
        self._cut = False  # a truncation window that does not start at the sequence's first token
        # HF keeps "sequence ranges" only once a post-processor (or a pair) has run; without them every
        # token, padding included, belongs to sequence 0.
        self._ranged = True
        self.type_ids = type_ids
        self.attention_mask = attention_mask
        self.special_tokens_mask = special_tokens_mask
        self.sequence_ids = sequence_ids if sequence_ids is not None else [0] * len(ids)
        self.overflowing = overflowing if overflowing is not None else []
        self.n_sequences = 1

    @property
    def tokens(self) -> list[str]:
        if self._tokens is None:
            self._materialize()
        return self._tokens

    @tokens.setter
    def tokens(self, value: list[str]) -> None:
        self._materialize()
        self._tokens = value

    @property
    def offsets(self) -> list[tuple[int, int]]:
        if self._offsets is None:
            self._materialize()
        return self._offsets

    @offsets.setter
    def offsets(self, value: list[tuple[int, int]]) -> None:
        self._materialize()
        self._offsets = value

    @property
    def word_ids(self) -> list[int | None]:
        """The word each token comes from (None for special and padding tokens), as HF's `word_ids`."""
        if self._word_ids is None:
            self._materialize()
        return self._word_ids

    words = word_ids  # HF's older name

    def _materialize(self) -> None:
        """Build tokens, offsets and word ids from the parts: ("words", base, starts, entries, column, first
        offset, words, text, first word index, fixed word index) for a stretch of cached words, ("list",
        tokens, offsets, word ids) for tokens already spelled out, or ("ids", id_to_token, ids, flat offsets,
        word ids) or ("encode", tokenizer, text, add_special_tokens) for an encoding that came from a worker
        process."""
        if self._parts is None:
            if self._word_ids is None:
                self._word_ids = [None] * len(self.ids)
            return
        tokens: list[str] = []
        offsets: list[tuple[int, int]] = []
        word_ids: list[int | None] = []
        for part in self._parts:
            if part[0] == "list":
                tokens += part[1]
                offsets += part[2]
                word_ids += part[3]
                continue
            if part[0] == "encode":  # from another process (parallel.py): encode the text here
                _, tok, item, add_special_tokens = part
                again = tok._encode_one(item, add_special_tokens)
                tokens += again.tokens
                offsets += again.offsets
                word_ids += again.word_ids
                continue
            if part[0] == "ids":  # from another process (parallel.py): tokens from ids, flat offsets
                _, lookup, ids, flat, words = part
                tokens += map(lookup, ids)
                offsets += zip(flat[0::2], flat[1::2], strict=True)
                word_ids += [None if w < 0 else w for w in words]
                continue
            _, base, starts, entries, column, first_offset, words, text, word0, fixed = part
            if starts is None:
                starts = _word_starts(text, words)
            here = len(offsets)
            for entry in entries:
                tokens += entry[1]
            offsets += [
                (base + start + a, base + start + b)
                for start, entry in zip(starts, entries, strict=True)
                for a, b in entry[column]
            ]
            lengths = [len(entry[0]) for entry in entries]
            if fixed is not None:
                word_ids += [fixed] * sum(lengths)
            else:
                word_ids += chain.from_iterable(map(repeat, range(word0, word0 + len(entries)), lengths))
            if first_offset is not None and len(offsets) > here:
                offsets[here] = first_offset
        self._tokens, self._offsets, self._word_ids, self._parts = tokens, offsets, word_ids, None

    def _as_parts(self) -> list:
        if self._parts is not None:
            return self._parts
        return [("list", self._tokens, self._offsets, self.word_ids)]

    def __len__(self) -> int:
        return len(self.ids)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Encoding):
            return NotImplemented
        fields = (
            "ids",
            "tokens",
            "offsets",
            "type_ids",
            "attention_mask",
            "special_tokens_mask",
            "sequence_ids",
            "word_ids",
        )
        return (
            all(getattr(self, f) == getattr(other, f) for f in fields)
            and self.overflowing == other.overflowing
        )

    def __repr__(self) -> str:
        return f"Encoding(ids={self.ids}, tokens={self.tokens}, offsets={self.offsets}, type_ids={self.type_ids})"

    def __getstate__(self) -> dict:
        self._materialize()
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    @classmethod
    def of_sequence(cls, ids: list[int], parts: list, type_id: int, sequence: int) -> Encoding:
        n = len(ids)
        return cls(ids, None, None, [type_id] * n, [1] * n, [0] * n, [sequence] * n, parts=parts)

    # --- alignment (HF's methods, same names and answers) ------------------------------------------------

    def _sequence_range(self, sequence_index: int) -> tuple[int, int]:
        """The tokens of one sequence: (start, end); the whole encoding when sequences are not marked."""
        if not self._ranged:
            return 0, len(self.ids)
        sequence_ids = self.sequence_ids
        try:
            start = sequence_ids.index(sequence_index)
        except ValueError:  # an empty sequence of a pair, or one this encoding does not have
            return (0, 0) if 0 <= sequence_index < self.n_sequences else (0, len(self.ids))
        end = start
        while end < len(sequence_ids) and sequence_ids[end] == sequence_index:
            end += 1
        return start, end

    def token_to_sequence(self, token_index: int) -> int | None:
        """The sequence (0 or 1) token `token_index` belongs to; None for special tokens."""
        if not self._ranged:
            return 0 if 0 <= token_index <= len(self.ids) else None  # HF's bound, one past the end
        return self.sequence_ids[token_index] if 0 <= token_index < len(self.ids) else None

    def token_to_chars(self, token_index: int) -> tuple[int, int] | None:
        """The (start, end) characters of a token in its own sequence's text."""
        if self.token_to_sequence(token_index) is None or token_index >= len(self.ids):
            return None
        return self.offsets[token_index]

    def token_to_word(self, token_index: int) -> int | None:
        """The index of the word a token belongs to, in its own sequence."""
        if self.token_to_sequence(token_index) is None or token_index >= len(self.ids):
            return None
        return self.word_ids[token_index]

    def word_to_tokens(self, word_index: int, sequence_index: int = 0) -> tuple[int, int] | None:
        """The tokens (start, end) that make word `word_index` of sequence `sequence_index`."""
        start, end = self._sequence_range(sequence_index)
        first = last = None
        for position, word in enumerate(self.word_ids[start:end], start):
            if word is not None and word > word_index:
                break  # words only grow along a sequence, as HF assumes
            if word == word_index:
                if first is None:
                    first = position
                last = position + 1
        return None if first is None else (first, last)

    def word_to_chars(self, word_index: int, sequence_index: int = 0) -> tuple[int, int] | None:
        """The characters (start, end) of word `word_index` in the text of sequence `sequence_index`."""
        span = self.word_to_tokens(word_index, sequence_index)
        if span is None or span[1] == 0:
            return None
        return self.offsets[span[0]][0], self.offsets[span[1] - 1][1]

    def char_to_token(self, char_pos: int, sequence_index: int = 0) -> int | None:
        """The first token whose span holds character `char_pos` of sequence `sequence_index`."""
        start, end = self._sequence_range(sequence_index)
        for position, (a, b) in enumerate(self.offsets[start:end], start):
            if a <= char_pos < b:
                return position
        return None

    def char_to_word(self, char_pos: int, sequence_index: int = 0) -> int | None:
        """The word that holds character `char_pos` of sequence `sequence_index`."""
        token = self.char_to_token(char_pos, sequence_index)
        return None if token is None else self.token_to_word(token)

    # --- truncation, padding, merging --------------------------------------------------------------------

    def truncate(self, max_length: int, stride: int = 0, direction: str = "right") -> None:
        """Keep `max_length` tokens; the rest goes to `overflowing` (windows overlapping by `stride`)."""
        if direction not in ("right", "left"):
            raise EncodingError(f"invalid truncation direction {direction!r}; use 'right' or 'left'")
        if max_length >= len(self.ids):
            return
        self._materialize()
        if max_length == 0:
            self.overflowing = [self._slice(0, len(self.ids))]
            self._keep(0, 0)
            return
        step = max_length - stride
        if step <= 0:
            raise EncodingError(f"truncation stride {stride} must be smaller than max_length {max_length}")
        n = len(self.ids)
        if direction == "right":
            windows = [(start, min(start + max_length, n)) for start in range(0, n, step)]
            windows = windows[: next(i for i, (_, e) in enumerate(windows) if e == n) + 1]
        else:
            windows = [(max(end - max_length, 0), end) for end in range(n, 0, -step)]
            windows = windows[: next(i for i, (s, _) in enumerate(windows) if s == 0) + 1]
        self.overflowing = [self._slice(s, e) for s, e in windows[1:]]
        self._keep(*windows[0])
        # Remember which windows do not start at the first token (see Tokenizer._post_process).
        for window, (start, _) in zip([self, *self.overflowing], windows, strict=True):
            window._cut = start > 0

    def _slice(self, start: int, end: int) -> Encoding:
        return Encoding(
            self.ids[start:end],
            self.tokens[start:end],
            self.offsets[start:end],
            self.type_ids[start:end],
            self.attention_mask[start:end],
            self.special_tokens_mask[start:end],
            self.sequence_ids[start:end],
            word_ids=self.word_ids[start:end],
        )

    def _keep(self, start: int, end: int) -> None:
        self._materialize()
        self.ids = self.ids[start:end]
        self._tokens = self._tokens[start:end]
        self._offsets = self._offsets[start:end]
        self._word_ids = self._word_ids[start:end]
        self.type_ids = self.type_ids[start:end]
        self.attention_mask = self.attention_mask[start:end]
        self.special_tokens_mask = self.special_tokens_mask[start:end]
        self.sequence_ids = self.sequence_ids[start:end]

    def copy(self, sequence: int | None = None) -> Encoding:
        """A copy (overflowing windows copied too); with `sequence`, every token marked as that sequence."""
        self._materialize()
        copy = self._slice(0, len(self.ids))
        copy.overflowing = [window.copy(sequence) for window in self.overflowing]
        copy._cut, copy._ranged, copy.n_sequences = self._cut, self._ranged, self.n_sequences
        if sequence is not None:
            copy.sequence_ids = [sequence] * len(copy.ids)
        return copy

    def merge(self, other: Encoding) -> Encoding:
        return Encoding(
            self.ids + other.ids,
            None,
            None,
            self.type_ids + other.type_ids,
            self.attention_mask + other.attention_mask,
            self.special_tokens_mask + other.special_tokens_mask,
            self.sequence_ids + other.sequence_ids,
            parts=self._as_parts() + other._as_parts(),
        )

    def pad(
        self, length: int, pad_id: int, pad_type_id: int, pad_token: str, direction: str = "right"
    ) -> None:
        for overflow in self.overflowing:
            overflow.pad(length, pad_id, pad_type_id, pad_token, direction)
        missing = length - len(self.ids)
        if missing <= 0:
            return
        self._materialize()
        fill = {
            "ids": [pad_id] * missing,
            "_tokens": [pad_token] * missing,
            "_offsets": [(0, 0)] * missing,
            "_word_ids": [None] * missing,
            "type_ids": [pad_type_id] * missing,
            "attention_mask": [0] * missing,
            "special_tokens_mask": [1] * missing,
            "sequence_ids": [None if self._ranged else 0] * missing,
        }
        for name, values in fill.items():
            current = getattr(self, name)
            setattr(self, name, current + values if direction == "right" else values + current)


def _word_starts(text: str, words: list[str]) -> list[int]:
    """Where each word starts in `text`, given the words in order and only dropped whitespace between.

    >>> _word_starts("a  bc d", ["a", "bc", "d"])
    [0, 3, 6]
    """
    starts = []
    position = 0
    find = text.find
    if "".join(words) == text:  # the words cover the text: each starts where the last ended
        starts = [0]
        starts.extend(accumulate(map(len, words)))
        starts.pop()
        return starts
    for word in words:
        position = find(word, position)
        starts.append(position)
        position += len(word)
    return starts
