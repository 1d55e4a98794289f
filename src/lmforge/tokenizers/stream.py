"""`DecodeStream`: decode ids one at a time, as a model generates them, with HF `tokenizers`' semantics.

Decoding each new id alone goes wrong in two ways: a character split over several byte tokens ('日' is three
byte-level tokens) comes out as U+FFFD, and decoders that look at neighbours (WordPiece's ``##``, Metaspace's
leading '▁') need the tokens before. The stream keeps the last few ids, decodes them with the new one, and
returns only the text that is new, or None while the text still ends inside a character.

    stream = DecodeStream(skip_special_tokens=True)
    for token_id in generated_ids:
        piece = stream.step(tokenizer, token_id)
        if piece is not None:
            print(piece, end="", flush=True)
"""

from __future__ import annotations

from collections.abc import Iterable

from lmforge.errors import LmforgeError


class DecodeStream:
    """Incremental decoding (HF's `tokenizers.decoders.DecodeStream`): `step(tokenizer, id)` returns the new
    text, or None when there is none yet. `ids` starts the stream with ids whose text was already shown."""

    def __init__(self, ids: Iterable[int] | None = None, skip_special_tokens: bool = False):
        self.skip_special_tokens = skip_special_tokens
        self.ids: list[int] = list(ids) if ids is not None else []
        self.prefix = ""
        self.prefix_index = 0

    def step(self, tokenizer, token_id: int | Iterable[int]) -> str | None:
        """Add one id (or several) and return the text they complete, or None."""
        skip = self.skip_special_tokens
        if not self.prefix and self.ids:  # ids given at the start: their text counts as already shown
            shown = tokenizer.decode(self.ids, skip_special_tokens=skip)
            if not shown.endswith("\ufffd"):
                self.prefix, self.prefix_index = shown, len(self.ids)
        if isinstance(token_id, int):
            self.ids.append(token_id)
        else:
            self.ids.extend(int(i) for i in token_id)
        text = tokenizer.decode(self.ids, skip_special_tokens=skip)
        if len(text.encode("utf-8")) <= len(self.prefix.encode("utf-8")) or text.endswith("\ufffd"):
            return None
        if not text.startswith(self.prefix):
            raise LmforgeError(
                "decode stream: the text decoded so far no longer starts with what was already returned; "
                "this decoder cannot be streamed"
            )
        new_text = text[len(self.prefix) :]
        new_prefix_index = len(self.ids) - self.prefix_index
        self.ids = self.ids[self.prefix_index :]
        self.prefix = tokenizer.decode(self.ids, skip_special_tokens=skip)
        self.prefix_index = new_prefix_index
        return new_text
