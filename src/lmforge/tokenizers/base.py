"""The interface every lmforge tokenizer shares: `Tokenizer` and the `Encoding` it returns.

This file implements:
  - `Encoding`: ids, tokens, offsets (character spans into the input), type ids, attention mask, special
    tokens mask, as HF `tokenizers` returns them;
  - `AddedToken`: special tokens (``[CLS]``, ``<|endoftext|>``) found in the raw text before anything else;
  - `Truncation` (longest-first / only-first / only-second, left or right) and `Padding` (to the longest of a
    batch or to a fixed length, left or right, to a multiple of N);
  - `Tokenizer`: the pipeline normalizer → pre-tokenizer → model → post-processor (pair templates such as
    ``[CLS] a [SEP] b [SEP]``), its decoder, a per-word cache, `encode` / `encode_batch` (on several
    processes when asked) / `decode`, and `save` / `load` of Hugging Face ``tokenizer.json`` files.

The four kinds (`CharTokenizer`, `WordTokenizer`, `BPETokenizer`, `WordPieceTokenizer`) are this pipeline with
their own stages and a `train` classmethod:

    tok = BPETokenizer.train(open("train.txt"), vocab_size=8192)
    enc = tok.encode("Frog on a log.")
    enc.tokens, enc.ids, enc.offsets
    tok.save("tok.json"); load_tokenizer("tok.json")   # a BPETokenizer again
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from lmforge.errors import LmforgeError
from lmforge.io import write_text
from lmforge.tokenizers.encoding import Encoding, _word_starts
from lmforge.tokenizers.pipeline import (
    WHITESPACE,
    Alignment,
    Decoder,
    Normalizer,
    PreTokenizer,
    TemplateProcessing,
    compose,
    join_with_spaces,
)

WordEntry = tuple[tuple[int, ...], tuple[str, ...], tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]
"""A word's tokenization, cached: ids, tokens, offsets in the word, the same offsets after ByteLevel trimming."""

CACHE_LIMIT = (
    500_000  # distinct words remembered; wikitext-2 has ~70k, so the cache is cleared only on huge inputs
)
PROGRESS_MIN_TEXTS = 10_000  # encode_batch(progress=...) shows a bar from this many texts (~1 s and more)
PROGRESS_STEP = 4096  # texts encoded between two updates of the bar


@dataclass
class AddedToken:
    """A token matched in the raw text before normalization, e.g. ``<|endoftext|>`` or ``[MASK]``.

    special tokens are dropped by ``decode(..., skip_special_tokens=True)``. lstrip/rstrip also swallow the
    whitespace on that side; single_word only matches between word boundaries.
    """

    content: str
    id: int
    special: bool = True
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool = False

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "content": self.content,
            "single_word": self.single_word,
            "lstrip": self.lstrip,
            "rstrip": self.rstrip,
            "normalized": self.normalized,
            "special": self.special,
        }


@dataclass
class Truncation:
    """Cut encodings to `max_length` tokens (special tokens included)."""

    max_length: int
    strategy: str = "longest_first"  # or "only_first", "only_second"
    direction: str = "right"  # cut the end ("right") or the start ("left")
    stride: int = 0  # overlap of the overflowing windows


@dataclass
class Padding:
    """Pad encodings to the longest of the batch (`length` None) or to a fixed `length`."""

    length: int | None = None
    pad_id: int = 0
    pad_token: str = "[PAD]"
    pad_type_id: int = 0
    direction: str = "right"
    pad_to_multiple_of: int | None = None


class Model:
    """The model stage: one word in, its tokens out.

    `tokenize(word)` returns ``[(id, token, start, end), ...]`` with character spans inside `word`.
    """

    vocab: dict[str, int]

    def tokenize(self, word: str) -> list[tuple[int, str, int, int]]:
        raise NotImplementedError

    def id_to_token(self, token_id: int) -> str | None:
        inverse = self.__dict__.get("_inverse")
        if inverse is None or len(inverse) != len(self.vocab):
            inverse = self._inverse = {i: t for t, i in self.vocab.items()}
        return inverse.get(token_id)

    def to_json(self) -> dict:
        raise NotImplementedError

    def readable_vocab(self) -> list[str]:
        """Lines of the human-readable vocabulary file written beside ``tokenizer.json``."""
        inverse = sorted((i, t) for t, i in self.vocab.items())
        return [f"{i}\t{token}" for i, token in inverse]


class Tokenizer:
    """A tokenizer: normalizer → pre-tokenizer → model → post-processor, plus decoder, added tokens,
    truncation and padding. The four kinds subclass it with their own stages and `train`.

    tok = load_tokenizer("tokenizer.json")
    tok.encode("Frog on a log.").tokens
    # ['[CLS]', 'frog', 'on', 'a', 'log', '.', '[SEP]', '[PAD]', ...]
    """

    kind = "generic"

    def __init__(
        self,
        model: Model,
        *,
        normalizer: Normalizer | None = None,
        pre_tokenizer: PreTokenizer | None = None,
        post_processor: Any = None,
        decoder: Decoder | None = None,
        added_tokens: Sequence[AddedToken] = (),
        truncation: Truncation | None = None,
        padding: Padding | None = None,
    ):
        self.model = model
        self.normalizer = normalizer
        self.pre_tokenizer = pre_tokenizer
        self.post_processor = post_processor
        self.decoder = decoder
        self.added_tokens = list(added_tokens)
        self.truncation = truncation
        self.padding = padding
        self._compile()

    # --- set-up ------------------------------------------------------------------------------------------

    @classmethod
    def from_str(cls, text: str) -> Tokenizer:
        """The tokenizer a ``tokenizer.json`` string describes (HF's `Tokenizer.from_str`); the reader lives in
        `hf.py`, which registers itself here when `lmforge.tokenizers` is imported."""
        if _JSON_READER is None:
            raise LmforgeError("no tokenizer.json reader registered; import lmforge.tokenizers")
        return _JSON_READER(text)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Tokenizer:
        """Read a ``tokenizer.json`` file (HF's `Tokenizer.from_file`): `from_str` of its text."""
        path = Path(path)
        if not path.is_file():
            raise LmforgeError(f"{path}: no such tokenizer file")
        return cls.from_str(path.read_text(encoding="utf-8"))

    _STAGES = frozenset({"model", "normalizer", "pre_tokenizer", "post_processor", "decoder", "added_tokens"})

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in Tokenizer._STAGES and "_vocab_size" in self.__dict__:
            self._compile()  # a stage was replaced after construction: rebuild caches and derived state

    def _compile(self) -> None:
        """Derive the fast-path state from the stages (called again whenever a stage changes)."""
        self._cache: dict[str, WordEntry] = {}
        self._added_by_content = {t.content: t for t in self.added_tokens}
        self._added_by_id = {t.id: t for t in self.added_tokens}
        self._special_ids = {t.id for t in self.added_tokens if t.special}
        # HF matches added tokens in two passes: those with normalized=False in the raw text, then those with
        # normalized=True in the normalized text of what is left, by their normalized content.
        raw = [t for t in self.added_tokens if t.content and not (t.normalized and self.normalizer)]
        self._raw_added = _AddedMatcher({t.content: t for t in raw})
        normalized: dict[str, AddedToken] = {}
        self._added_text_by_id = {t.id: t.content for t in self.added_tokens}
        for token in self.added_tokens:
            if token.content and token.normalized and self.normalizer is not None:
                content = self.normalizer.normalize(token.content)[0]
                self._added_text_by_id[token.id] = content  # HF's id_to_token gives this form
                if content:
                    normalized.setdefault(content, token)
        self._normalized_added = _AddedMatcher(normalized)
        self._template, self._trimmer = _split_post_processor(self.post_processor)
        self._prefix_space = bool(getattr(self.pre_tokenizer, "add_prefix_space", False))
        self._prefix = _prefix_of(self.pre_tokenizer)
        first_stage = (getattr(self.pre_tokenizer, "pre_tokenizers", None) or [self.pre_tokenizer])[0]
        self._spaces_to = getattr(first_stage, "replacement", None)  # Metaspace: ' ' → '▁', one for one
        size = max(self.model.vocab.values(), default=-1) + 1
        for token in self.added_tokens:
            size = max(size, token.id + 1)
        self._vocab_size = size

    def add_special_tokens(self, tokens: Iterable[str]) -> list[int]:
        """Add special tokens (new ids after the vocabulary; existing tokens keep theirs); returns the ids."""
        ids = []
        for content in tokens:
            if content in self._added_by_content:
                ids.append(self._added_by_content[content].id)
                continue
            token_id = self.model.vocab.get(content, self._vocab_size)
            self.added_tokens.append(AddedToken(content, token_id, special=True))
            self._compile()
            ids.append(token_id)
        return ids

    def enable_truncation(
        self, max_length: int, *, strategy: str = "longest_first", direction: str = "right", stride: int = 0
    ) -> None:
        if strategy not in ("longest_first", "only_first", "only_second"):
            raise LmforgeError(
                f"unknown truncation strategy {strategy!r}; use longest_first, only_first or only_second"
            )
        if direction not in ("right", "left"):
            raise LmforgeError(f"unknown truncation direction {direction!r}; use right or left")
        if max_length < 0:
            raise LmforgeError(f"truncation max_length must be >= 0, got {max_length}")
        self.truncation = Truncation(max_length, strategy, direction, stride)

    def no_truncation(self) -> None:
        self.truncation = None

    def enable_padding(
        self,
        *,
        length: int | None = None,
        pad_token: str | None = None,
        direction: str = "right",
        pad_to_multiple_of: int | None = None,
        pad_type_id: int = 0,
    ) -> None:
        """Pad to `length`, or to the longest encoding of each batch when `length` is None."""
        if pad_token is None:
            pad_token = next(
                (t for t in ("[PAD]", "<pad>", "<|endoftext|>") if self.token_to_id(t) is not None), None
            )
            if pad_token is None:
                raise LmforgeError("this tokenizer has no [PAD] token; pass pad_token=")
        pad_id = self.token_to_id(pad_token)
        if pad_id is None:
            raise LmforgeError(f"pad token {pad_token!r} is not in the vocabulary")
        if direction not in ("right", "left"):
            raise LmforgeError(f"unknown padding direction {direction!r}; use right or left")
        self.padding = Padding(length, pad_id, pad_token, pad_type_id, direction, pad_to_multiple_of)

    def no_padding(self) -> None:
        self.padding = None

    # --- vocabulary --------------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of ids (model vocabulary plus added tokens): the size of an embedding table."""
        return self._vocab_size

    def get_vocab(self) -> dict[str, int]:
        vocab = dict(self.model.vocab)
        vocab.update({t.content: t.id for t in self.added_tokens})
        return vocab

    def token_to_id(self, token: str) -> int | None:
        added = self._added_by_content.get(token)
        if added is not None:
            return added.id
        return self.model.vocab.get(token)

    def id_to_token(self, token_id: int) -> str | None:
        """The token of an id; an added token with normalized=True is given in its normalized form, as in HF."""
        added = self._added_text_by_id.get(token_id)
        if added is not None:
            return added
        return self.model.id_to_token(token_id)

    @property
    def special_tokens(self) -> list[str]:
        """The special tokens, in id order (e.g. ``['<|endoftext|>']`` or ``['[PAD]', '[UNK]', ...]``)."""
        return [t.content for t in sorted(self.added_tokens, key=lambda t: t.id) if t.special]

    # --- encoding ----------------------------------------------------------------------------------------

    def encode(
        self,
        text: str | Sequence[str],
        pair: str | Sequence[str] | None = None,
        is_pretokenized: bool = False,
        add_special_tokens: bool = True,
    ) -> Encoding:
        """Encode `text` (and `pair`, the second text of a pair) into an `Encoding`.

        With `is_pretokenized`, each is a list of words (as HF): every word is encoded on its own, its tokens
        get its index as word id, and offsets are character spans into that word.

        tok.encode("Frog on a log.", "It jumps.").type_ids   # BERT: [CLS] a [SEP] b [SEP]
        tok.encode(["Frog", "on", "a", "log"], is_pretokenized=True).word_ids
        """
        first = self._encode_input(text, 0, is_pretokenized)
        second = self._encode_input(pair, 1, is_pretokenized) if pair is not None else None
        encoding = self._post_process(first, second, add_special_tokens)
        if self.padding is not None:
            self._pad([encoding])
        return encoding

    def _encode_input(self, text: str | Sequence[str], sequence: int, is_pretokenized: bool) -> Encoding:
        if not is_pretokenized:
            if not isinstance(text, str):
                raise TypeError(
                    "encode takes str (and optionally a second str for a pair); "
                    "for lists of words pass is_pretokenized=True"
                )
            return self._encode_sequence(text, sequence, sequence)
        if isinstance(text, str) or not all(isinstance(word, str) for word in text):
            raise TypeError("with is_pretokenized=True, encode takes a list of words (str)")
        ids: list[int] = []
        parts: list = []
        for index, word in enumerate(text):
            encoded = self._encode_sequence(word, sequence, sequence, word=index)
            ids += encoded.ids
            parts += encoded._as_parts()
        return Encoding.of_sequence(ids, parts, sequence, sequence)

    def post_process(
        self, encoding: Encoding, pair: Encoding | None = None, add_special_tokens: bool = True
    ) -> Encoding:
        """HF's `post_process`: truncation, then the post-processor (special tokens, type ids), then padding,
        applied to encodings made with ``add_special_tokens=False`` (they are not changed). As in HF, a
        ByteLevel post-processor trims the offsets again (they were trimmed once by `encode`)."""
        first = encoding.copy(sequence=0)
        second = pair.copy(sequence=1) if pair is not None else None
        result = self._post_process(first, second, add_special_tokens, retrim=True)
        if self.padding is not None:
            self._pad([result])
        return result

    def encode_batch(
        self,
        texts: Sequence[str] | Sequence[tuple[str, str]],
        is_pretokenized: bool = False,
        add_special_tokens: bool = True,
        *,
        num_workers: int = 1,
        progress: str | None = None,
    ) -> list[Encoding]:
        """Encode many texts (or (a, b) pairs); padding, when enabled, is to the longest of the batch.

        With `is_pretokenized`, each item is a list of words, or a pair (tuple) of such lists.

        num_workers > 1 splits a large batch over that many processes (0 = one per CPU core). It pays on big
        batches only: the encodings must be sent back between processes.
        progress: a label for a progress bar (on stderr), shown for batches of PROGRESS_MIN_TEXTS or more.
        """
        if num_workers == 0:
            num_workers = os.cpu_count() or 1
        if is_pretokenized:
            encodings = [self._encode_words(item, add_special_tokens) for item in texts]
        elif num_workers > 1 and len(texts) >= 2000:
            from lmforge.tokenizers.parallel import encode_in_processes

            encodings = encode_in_processes(self, list(texts), add_special_tokens, num_workers)
        else:
            bar = None
            if progress and len(texts) >= PROGRESS_MIN_TEXTS:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(texts), desc=progress, unit="text", unit_scale=True, leave=False)
            # Encoding makes no reference cycles, so the cyclic garbage collector has nothing to find; left
            # on, it would walk the (large) word cache over and over as encodings are allocated.
            collecting = gc.isenabled()
            gc.disable()
            try:
                if bar is None:
                    encodings = [self._encode_one(item, add_special_tokens) for item in texts]
                else:
                    encodings = []
                    for start in range(0, len(texts), PROGRESS_STEP):
                        part = texts[start : start + PROGRESS_STEP]
                        encodings += [self._encode_one(item, add_special_tokens) for item in part]
                        bar.update(len(part))
            finally:
                if collecting:
                    gc.enable()
                if bar is not None:
                    bar.close()
        if self.padding is not None:
            self._pad(encodings)
        return encodings

    def _encode_words(self, item: Sequence[str] | tuple, add_special_tokens: bool) -> Encoding:
        """One item of a pre-tokenized batch: a list of words, or a tuple of two such lists (a pair)."""
        if isinstance(item, tuple) and len(item) == 2 and not all(isinstance(w, str) for w in item):
            first = self._encode_input(item[0], 0, True)
            return self._post_process(first, self._encode_input(item[1], 1, True), add_special_tokens)
        return self._post_process(self._encode_input(item, 0, True), None, add_special_tokens)

    def _encode_one(self, item: str | tuple[str, str], add_special_tokens: bool) -> Encoding:
        if isinstance(item, str):
            first = self._encode_sequence(item, 0, 0)
            return self._post_process(first, None, add_special_tokens)
        text, pair = item
        first = self._encode_sequence(text, 0, 0)
        second = self._encode_sequence(pair, 1, 1)
        return self._post_process(first, second, add_special_tokens)

    def _encode_sequence(self, text: str, type_id: int, sequence: int, word: int | None = None) -> Encoding:
        """One text (or, with `word`, one word of a pre-tokenized input: all its tokens get that word id)."""
        ids: list[int] = []
        parts: list = []
        pieces = self._raw_added.split(text)
        if pieces is None:
            self._encode_segment(text, 0, ids, parts, 0, word)
        else:
            words = 0
            for start, end, added in pieces:
                if added is None:
                    words = self._encode_segment(text[start:end], start, ids, parts, words, word)
                else:
                    self._add_token(added, text[start:end], (start, end), ids, parts, words, word)
                    words += 1
        return Encoding.of_sequence(ids, parts, type_id, sequence)

    def _add_token(
        self,
        added: AddedToken,
        token: str,
        span: tuple[int, int],
        ids: list[int],
        parts: list,
        word: int,
        fixed: int | None,
    ) -> None:
        """An added token found in the text: its token is the matched text (with any whitespace it
        absorbed, as HF), its offsets trimmed by ByteLevel like any other token's."""
        if self._trimmer is not None and self._trimmer.trim_offsets:
            span = self._trimmer.trim(token, span, not ids or span[0] == 0)
        ids.append(added.id)
        parts.append(("list", [token], [span], [word if fixed is None else fixed]))

    def _encode_segment(
        self, text: str, base: int, ids: list[int], parts: list, word0: int, fixed: int | None
    ) -> int:
        """Normalize one stretch of text without raw added tokens, split off the added tokens matched
        after normalization, and encode the rest (`_encode_normalized`). Returns the word count so far."""
        alignment: Alignment = None
        if self.normalizer is not None:
            text, alignment = self.normalizer.normalize(text)
        pieces = self._normalized_added.split(text)
        if pieces is None:
            return self._encode_normalized(text, alignment, base, ids, parts, word0, fixed)
        for start, end, added in pieces:
            piece_alignment = alignment[start:end] if alignment is not None else None
            piece_base = base if alignment is not None else base + start
            if added is None:
                word0 = self._encode_normalized(
                    text[start:end], piece_alignment, piece_base, ids, parts, word0, fixed
                )
                continue
            if alignment is None:
                span = (base + start, base + end)
            else:
                span = (alignment[start][0] + base, alignment[end - 1][1] + base)
            self._add_token(added, text[start:end], span, ids, parts, word0, fixed)
            word0 += 1
        return word0

    def _encode_normalized(
        self,
        text: str,
        alignment: Alignment,
        base: int,
        ids: list[int],
        parts: list,
        word0: int,
        fixed: int | None,
    ) -> int:
        """Pre-tokenize and tokenize normalized text; append the ids and a part from which the Encoding
        builds tokens, offsets and word ids (see `Encoding._materialize`). Returns the word count so far."""
        if self._prefix is not None:  # ByteLevel's space or Metaspace's '▁', aligned to the first character
            char, scheme, present = self._prefix
            if (
                text
                and text[0] not in present
                and (scheme == "always" or base + (alignment[0][0] if alignment else 0) == 0)
            ):
                shift: Alignment = [(0, 1)] + [(i - 1, i) for i in range(1, len(text) + 1)]
                text = char + text
                alignment = compose(alignment, shift)
            elif self._prefix_space:  # (ByteLevel's trimming of the first token is done on the slow path)
                alignment = compose(alignment, [(i, i + 1) for i in range(len(text))])
        if self._spaces_to is not None:
            text = text.replace(" ", self._spaces_to)
        starts: list[int] | None
        if self.pre_tokenizer is not None:
            if alignment is None and (self.pre_tokenizer.covers_text or not self._prefix_space):
                words, starts = self.pre_tokenizer.words(text), None  # starts only if offsets are read
            else:
                words, starts = self.pre_tokenizer.split(text)
        else:
            words, starts = ([text], [0]) if text else ([], [])
        cache = self._cache
        if len(cache) > CACHE_LIMIT:
            cache.clear()
        entries = list(map(cache.get, words))
        if None in entries:
            miss = self._word_entry
            entries = [entry or miss(word) for entry, word in zip(entries, words, strict=True)]
        trimming = self._trimmer is not None and self._trimmer.trim_offsets
        is_first = not ids
        if alignment is None:
            # The hot path: ids now; tokens and offsets later, from the cached entries, if anyone asks.
            for entry in entries:
                ids += entry[0]
            first_offset = None
            if trimming and is_first and self._trimmer.add_prefix_space and entries and entries[0][0]:
                # HF trims no single leading space off the very first token in this case.
                a, b = entries[0][2][0]
                first_start = base + (starts if starts is not None else _word_starts(text, words[:1]))[0]
                raw = (first_start + a, first_start + b)
                first_offset = self._trimmer.trim(entries[0][1][0], raw, True)
            column = 3 if trimming else 2
            parts.append(("words", base, starts, entries, column, first_offset, words, text, word0, fixed))
            return word0 + len(words)
        # Slow path: offsets go through the normalizer's alignment, then ByteLevel trimming (as in HF).
        if starts is None:
            starts = _word_starts(text, words)
        tokens: list[str] = []
        offsets: list[tuple[int, int]] = []
        word_ids: list[int] = []
        last = alignment[-1][1] if alignment else 0
        for index, (entry, start) in enumerate(zip(entries, starts, strict=True), word0):
            for token_id, token, (a, b) in zip(entry[0], entry[1], entry[2], strict=True):
                s, e = start + a, start + b
                if e > s:
                    span = (alignment[s][0] + base, alignment[e - 1][1] + base)
                else:
                    at = alignment[s][0] if s < len(alignment) else last
                    span = (at + base, at + base)
                if trimming:
                    span = self._trimmer.trim(token, span, is_first or span[0] == 0)
                    is_first = False
                ids.append(token_id)
                tokens.append(token)
                offsets.append(span)
                word_ids.append(index if fixed is None else fixed)
        parts.append(("list", tokens, offsets, word_ids))
        return word0 + len(words)

    def _word_entry(self, word: str) -> WordEntry:
        pieces = self.model.tokenize(word)
        ids = tuple(p[0] for p in pieces)
        tokens = tuple(p[1] for p in pieces)
        spans = tuple((p[2], p[3]) for p in pieces)
        if self._trimmer is not None and self._trimmer.trim_offsets:
            trimmed = tuple(self._trimmer.trim(t, s) for t, s in zip(tokens, spans, strict=True))
        else:
            trimmed = spans
        entry = (ids, tokens, spans, trimmed)
        self._cache[word] = entry
        return entry

    # --- post-processing: truncation, special tokens, padding --------------------------------------------

    def num_special_tokens_to_add(self, is_pair: bool) -> int:
        return self._template.num_special_tokens(is_pair) if self._template is not None else 0

    def _post_process(
        self, first: Encoding, second: Encoding | None, add_special_tokens: bool, retrim: bool = False
    ) -> Encoding:
        if self.truncation is not None:
            added = self.num_special_tokens_to_add(second is not None) if add_special_tokens else 0
            _truncate(first, second, self.truncation, self.truncation.max_length - added)
            trimmer = self._trimmer
            if trimmer is not None and trimmer.trim_offsets and trimmer.add_prefix_space:
                # HF trims each window on its own: a window's first token keeps one leading space.
                for sequence in (first, second) if second is not None else (first,):
                    for window in (sequence, *sequence.overflowing):
                        if window._cut:
                            _keep_one_leading_space(window)
        if retrim and self._trimmer is not None and self._trimmer.trim_offsets:
            trim = self._trimmer.trim
            for sequence in (first, second) if second is not None else (first,):
                for window in (sequence, *sequence.overflowing):
                    window.offsets = [
                        trim(token, span, i == 0 or span[0] == 0)
                        for i, (token, span) in enumerate(zip(window.tokens, window.offsets, strict=True))
                    ]
        if self._template is not None:  # without special tokens it still sets the type ids, as in HF
            template = self._template

            def join(a: Encoding, b: Encoding | None) -> Encoding:
                return _apply_template(template, a, b, add_special_tokens)

        elif second is None:
            first._ranged = self.post_processor is not None  # HF: no post-processor, no sequence ranges
            return first
        else:

            def join(a: Encoding, b: Encoding | None) -> Encoding:
                return a.merge(b)

        result = join(first, second)
        result.n_sequences = 1 if second is None else 2
        # HF's overflowing windows of a pair: each window of the first sequence with the whole second one
        # and with each window of the second, then the first with each window of the second.
        for window in first.overflowing:
            result.overflowing.append(join(window, second))
            if second is not None:
                result.overflowing += [join(window, other) for other in second.overflowing]
        if second is not None:
            result.overflowing += [join(first, other) for other in second.overflowing]
        for window in result.overflowing:
            window.n_sequences = result.n_sequences
        return result

    def _pad(self, encodings: list[Encoding]) -> None:
        padding = self.padding
        length = padding.length
        if length is None:
            length = max((len(e) for e in encodings), default=0)
        if padding.pad_to_multiple_of and length % padding.pad_to_multiple_of:
            length += padding.pad_to_multiple_of - length % padding.pad_to_multiple_of
        for encoding in encodings:
            encoding.pad(length, padding.pad_id, padding.pad_type_id, padding.pad_token, padding.direction)

    # --- decoding ----------------------------------------------------------------------------------------

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Ids back to text: `decode(encode(s).ids) == s` for byte-level BPE.

        tok.decode(tok.encode("Frog on a log.").ids)
        # 'frog on a log.'
        """
        tokens = []
        for token_id in ids:
            if skip_special_tokens and token_id in self._special_ids:
                continue
            token = self.id_to_token(int(token_id))
            if token is None:
                raise LmforgeError(f"id {token_id} is not in the vocabulary (size {self.vocab_size})")
            tokens.append(token)
        if self.decoder is None:
            return join_with_spaces(tokens)
        return self.decoder.decode(tokens)

    def decode_batch(self, batch: Iterable[Iterable[int]], skip_special_tokens: bool = True) -> list[str]:
        return [self.decode(ids, skip_special_tokens) for ids in batch]

    # --- files -------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The ``tokenizer.json`` of this tokenizer, in HF's layout (so HF `tokenizers` loads it)."""
        truncation = None
        if self.truncation is not None:
            t = self.truncation
            truncation = {
                "direction": t.direction.capitalize(),
                "max_length": t.max_length,
                "strategy": "".join(p.capitalize() for p in t.strategy.split("_")),
                "stride": t.stride,
            }
        padding = None
        if self.padding is not None:
            p = self.padding
            padding = {
                "strategy": "BatchLongest" if p.length is None else {"Fixed": p.length},
                "direction": p.direction.capitalize(),
                "pad_to_multiple_of": p.pad_to_multiple_of,
                "pad_id": p.pad_id,
                "pad_type_id": p.pad_type_id,
                "pad_token": p.pad_token,
            }

        def stage(value):
            return None if value is None else value.to_json()

        return {
            "version": "1.0",
            "truncation": truncation,
            "padding": padding,
            "added_tokens": [t.to_json() for t in sorted(self.added_tokens, key=lambda t: t.id)],
            "normalizer": stage(self.normalizer),
            "pre_tokenizer": stage(self.pre_tokenizer),
            "post_processor": stage(self.post_processor),
            "decoder": stage(self.decoder),
            "model": self.model.to_json(),
        }

    def to_str(self, pretty: bool = True) -> str:
        import json

        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2 if pretty else None)

    def save(self, path: str | os.PathLike, *, readable_vocab: bool = True) -> Path:
        """Write ``tokenizer.json`` (HF format) at `path` and, beside it, ``<stem>.vocab.txt`` for people.

        Both are written atomically: an interrupted save leaves any previous file intact.
        """
        path = Path(path)
        write_text(path, self.to_str() + "\n")
        if readable_vocab:
            lines = [f"# {self.kind} tokenizer, {self.vocab_size} ids; machine file: {path.name}"]
            lines += [
                f"{t.id}\t{t.content}\t(added{', special' if t.special else ''})" for t in self.added_tokens
            ]
            added_ids = {t.id for t in self.added_tokens}
            lines += [
                line for line in self.model.readable_vocab() if int(line.split("\t", 1)[0]) not in added_ids
            ]
            write_text(readable_vocab_path(path), "\n".join(lines) + "\n")
        return path

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state


# --- helpers ---------------------------------------------------------------------------------------------

_JSON_READER: Any = None  # hf.tokenizer_from_str, registered by hf.py (which imports this module)


def register_json_reader(reader: Any) -> None:
    global _JSON_READER
    _JSON_READER = reader


def readable_vocab_path(path: Path) -> Path:
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    return path.with_name(stem + ".vocab.txt")


class _AddedMatcher:
    """Finds added tokens in a text as HF does: the leftmost, then longest, content; single_word tokens only
    between word boundaries; lstrip/rstrip ones also take the whitespace on that side (never text another
    match already took)."""

    def __init__(self, by_content: dict[str, AddedToken]):
        self.by_content = by_content
        self.contents = sorted(by_content, key=len, reverse=True)
        alternatives = "|".join(regex.escape(c) for c in self.contents)
        self.pattern = regex.compile(alternatives) if self.contents else None

    def split(self, text: str) -> list[tuple[int, int, AddedToken | None]] | None:
        """[(start, end, added token or None for plain text)], or None when no added token occurs."""
        if self.pattern is None:
            return None
        if len(self.contents) <= 16 and not any(c in text for c in self.contents):
            return None  # a few substring tests beat a regex scan of every text
        parts: list[tuple[int, int, AddedToken | None]] = []
        position = 0
        for match in self.pattern.finditer(text):
            token = self.by_content[match.group()]
            start, end = match.span()
            if token.single_word and not _is_single_word(text, start, end):
                continue
            if token.lstrip:
                while start > position and _is_whitespace(text[start - 1]):
                    start -= 1
            if token.rstrip:
                while end < len(text) and _is_whitespace(text[end]):
                    end += 1
            if start > position:
                parts.append((position, start, None))
            parts.append((start, end, token))
            position = end
        if not parts:
            return None
        if position < len(text):
            parts.append((position, len(text), None))
        return parts


_WHITESPACE_CHAR = regex.compile(rf"[{WHITESPACE}]")


def _is_whitespace(char: str) -> bool:
    return _WHITESPACE_CHAR.match(char) is not None


def _is_single_word(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_")


def _prefix_of(pre_tokenizer: Any) -> tuple[str, str, str] | None:
    """(character put in front of each piece of text, "always" or "first", characters that make it
    unneeded) for ByteLevel(add_prefix_space) and Metaspace (also as the first step of a Sequence)."""
    stages = getattr(pre_tokenizer, "pre_tokenizers", None)
    if stages:
        pre_tokenizer = stages[0]
    if getattr(pre_tokenizer, "add_prefix_space", False):
        return " ", "always", " "
    scheme = getattr(pre_tokenizer, "prepend_scheme", None)
    if scheme in ("always", "first"):
        return pre_tokenizer.replacement, scheme, " " + pre_tokenizer.replacement
    return None


def _split_post_processor(processor: Any) -> tuple[TemplateProcessing | None, Any]:
    """(template that adds special tokens, ByteLevel offset trimmer) found in a post-processor."""
    if processor is None:
        return None, None
    parts = getattr(processor, "processors", [processor])
    template = next((p for p in parts if isinstance(p, TemplateProcessing)), None)
    trimmer = next((p for p in parts if hasattr(p, "trim")), None)
    return template, trimmer


def _keep_one_leading_space(window: Encoding) -> None:
    """Undo the trimming of one leading space on a window's first token, as HF's ByteLevel does for i == 0."""
    token = window.tokens[0] if window.tokens else ""
    if not token or token[0] != "Ġ" or token[1:2] == "Ġ":
        return
    start, end = window._offsets[0]
    window._offsets[0] = (start - 1, end - 1 if token == "Ġ" else end)


def _truncate(first: Encoding, second: Encoding | None, truncation: Truncation, max_length: int) -> None:
    """HF's truncation: longest-first balances the two sequences; only_* cut one of them."""
    if max_length < 0:
        max_length = 0
    total = len(first) + (len(second) if second is not None else 0)
    if total <= max_length:
        return
    stride, direction = truncation.stride, truncation.direction
    if second is None and truncation.strategy == "only_second":
        raise LmforgeError(
            "truncation strategy only_second needs a pair of texts; use longest_first or only_first"
        )
    if second is None or truncation.strategy == "longest_first":
        if second is None:
            first.truncate(max_length, stride, direction)
            return
        n1, n2 = len(first), len(second)
        swapped = n1 > n2
        if swapped:
            n1, n2 = n2, n1
        n2 = n1 if n1 > max_length else max(n1, max_length - n1)
        if n1 + n2 > max_length:
            n1 = max_length // 2
            n2 = n1 + max_length % 2
        if swapped:
            n1, n2 = n2, n1
        first.truncate(n1, stride, direction)
        second.truncate(n2, stride, direction)
        return
    target = first if truncation.strategy == "only_first" else second
    other = len(second) if target is first else len(first)
    if other >= max_length:
        raise LmforgeError(
            f"cannot truncate with {truncation.strategy}: the other sequence alone has {other} tokens, "
            f"max_length leaves {max_length}; use longest_first or a larger max_length"
        )
    target.truncate(max_length - other, stride, direction)


def _apply_template(
    template: TemplateProcessing, first: Encoding, second: Encoding | None, add_special_tokens: bool = True
) -> Encoding:
    pieces = template.pair if second is not None else template.single
    ids: list[int] = []
    type_ids: list[int] = []
    attention_mask: list[int] = []
    special_tokens_mask: list[int] = []
    sequence_ids: list[int | None] = []
    parts: list = []
    for piece in pieces:
        if piece.is_sequence:
            part = first if piece.name == "A" else second
            if part is None:
                continue
            ids += part.ids
            type_ids += [piece.type_id] * len(part)
            attention_mask += part.attention_mask
            special_tokens_mask += part.special_tokens_mask
            sequence_ids += part.sequence_ids
            parts += part._as_parts()
        elif add_special_tokens:
            special_ids, special_tokens = template.special_tokens[piece.name]
            n = len(special_ids)
            ids += special_ids
            type_ids += [piece.type_id] * n
            attention_mask += [1] * n
            special_tokens_mask += [1] * n
            sequence_ids += [None] * n
            parts.append(("list", special_tokens, [(0, 0)] * n, [None] * n))
    return Encoding(ids, None, None, type_ids, attention_mask, special_tokens_mask, sequence_ids, parts=parts)
