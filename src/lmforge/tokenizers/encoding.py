"""`Encoding`: the result of encoding one text (or pair), with tokens and offsets assembled on first read.

Its own module so that `parallel` (which rebuilds encodings sent back by worker processes) and `base`
(which makes them) both build on it without importing each other.
"""

from __future__ import annotations

from itertools import accumulate

from lmforge.errors import LmforgeError


class Encoding:
    """The result of encoding one text (or one pair of texts).

    ids, tokens, offsets, type_ids, attention_mask, special_tokens_mask and sequence_ids are lists of the
    same length. offsets are ``(start, end)`` character spans into the input text (into the second text for
    the tokens of ``b`` in a pair); special and padding tokens get ``(0, 0)``. `overflowing` holds the
    cut-off windows when truncation is on.

    tokens and offsets are assembled from the per-word cache the first time they are read: a pre-training
    pipeline that only reads `ids` never pays for them (HF's Python binding is lazy in the same way).
    """

    __slots__ = (
        "ids",
        "type_ids",
        "attention_mask",
        "special_tokens_mask",
        "sequence_ids",
        "overflowing",
        "_tokens",
        "_offsets",
        "_parts",
        "_cut",
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
    ):
        self.ids = ids
        self._tokens = tokens
        self._offsets = offsets
        self._parts = parts  # lazy tokens/offsets: see `_materialize`
        self._cut = False  # a truncation window that does not start at the sequence's first token
        self.type_ids = type_ids
        self.attention_mask = attention_mask
        self.special_tokens_mask = special_tokens_mask
        self.sequence_ids = sequence_ids if sequence_ids is not None else [0] * len(ids)
        self.overflowing = overflowing if overflowing is not None else []

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

    def _materialize(self) -> None:
        """Build tokens and offsets from the parts: ("words", base, starts, entries, column, first offset)
        for a stretch of cached words, ("list", tokens, offsets) for tokens already spelled out, or
        ("ids", id_to_token, ids, flat offsets) or ("encode", tokenizer, text, add_special_tokens) for an
        encoding that came from a worker process."""
        if self._parts is None:
            return
        tokens: list[str] = []
        offsets: list[tuple[int, int]] = []
        for part in self._parts:
            if part[0] == "list":
                tokens += part[1]
                offsets += part[2]
                continue
            if part[0] == "encode":  # from another process (parallel.py): encode the text here
                _, tok, item, add_special_tokens = part
                again = tok._encode_one(item, add_special_tokens)
                tokens += again.tokens
                offsets += again.offsets
                continue
            if part[0] == "ids":  # from another process (parallel.py): tokens from ids, flat offsets
                _, lookup, ids, flat = part
                tokens += map(lookup, ids)
                offsets += zip(flat[0::2], flat[1::2], strict=True)
                continue
            _, base, starts, entries, column, first_offset, words, text = part
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
            if first_offset is not None and len(offsets) > here:
                offsets[here] = first_offset
        self._tokens, self._offsets, self._parts = tokens, offsets, None

    def _as_parts(self) -> list:
        return self._parts if self._parts is not None else [("list", self._tokens, self._offsets)]

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

    def truncate(self, max_length: int, stride: int = 0, direction: str = "right") -> None:
        """Keep `max_length` tokens; the rest goes to `overflowing` (windows overlapping by `stride`)."""
        if max_length >= len(self.ids):
            return
        self._materialize()
        if max_length == 0:
            self.overflowing = [self._slice(0, len(self.ids))]
            self._keep(0, 0)
            return
        step = max_length - stride
        if step <= 0:
            raise LmforgeError(f"truncation stride {stride} must be smaller than max_length {max_length}")
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
        )

    def _keep(self, start: int, end: int) -> None:
        self._materialize()
        self.ids = self.ids[start:end]
        self._tokens = self._tokens[start:end]
        self._offsets = self._offsets[start:end]
        self.type_ids = self.type_ids[start:end]
        self.attention_mask = self.attention_mask[start:end]
        self.special_tokens_mask = self.special_tokens_mask[start:end]
        self.sequence_ids = self.sequence_ids[start:end]

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
            "type_ids": [pad_type_id] * missing,
            "attention_mask": [0] * missing,
            "special_tokens_mask": [1] * missing,
            "sequence_ids": [None] * missing,
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
