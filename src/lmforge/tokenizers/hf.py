"""Hugging Face ``tokenizer.json``: read every section into lmforge's stages (writing is `Tokenizer.to_dict`).

This file implements `load_tokenizer(path)` (exported as `lmforge.tokenizers.load_tokenizer`),
`tokenizer_from_str` and `tokenizer_from_dict`; it sits above the kinds it builds, so `base` never
imports it. Sections, as HF applies them: ``normalizer``, ``pre_tokenizer``, ``model`` (BPE,
WordPiece, WordLevel), ``post_processor`` (ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing,
Sequence), ``decoder``, ``added_tokens``, ``truncation`` and ``padding``. A file lmforge writes is a file HF
reads, and the reverse; a stage lmforge does not implement is an error naming it, never a silent guess.

The kind returned follows the model: byte-level BPE → `BPETokenizer`, WordPiece → `WordPieceTokenizer`,
WordLevel behind a one-character split → `CharTokenizer`, other WordLevel → `WordTokenizer`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lmforge.errors import LmforgeError, MissingFileError
from lmforge.tokenizers.base import AddedToken, Padding, Tokenizer, Truncation, register_json_reader
from lmforge.tokenizers.bpe import BPEModel, BPETokenizer, ByteLevel, ByteLevelDecoder, ByteLevelProcessor
from lmforge.tokenizers.char import EVERY_CHARACTER, CharTokenizer, EveryCharacter
from lmforge.tokenizers.charbpe import CharBPETokenizer
from lmforge.tokenizers.pipeline import (
    BPEDecoder,
    ByteFallback,
    Decoder,
    DecoderSequence,
    Digits,
    FixedLength,
    Fuse,
    Lowercase,
    Metaspace,
    MetaspaceDecoder,
    Normalizer,
    NormalizerSequence,
    PostProcessorSequence,
    Prepend,
    PreTokenizer,
    PreTokenizerSequence,
    Punctuation,
    Replace,
    ReplaceDecoder,
    Split,
    Strip,
    StripAccents,
    StripDecoder,
    TemplatePiece,
    TemplateProcessing,
    UnicodeNormalizer,
    Whitespace,
    WhitespaceSplit,
    WordPieceDecoder,
)
from lmforge.tokenizers.unigram import UnigramModel, UnigramTokenizer
from lmforge.tokenizers.word import WordLevelModel, WordTokenizer
from lmforge.tokenizers.wordpiece import BertNormalizer, BertPreTokenizer, WordPieceModel, WordPieceTokenizer


class FileFormatError(LmforgeError, ValueError):
    """A tokenizer.json that is not valid JSON, misses a section, or uses a stage lmforge lacks."""


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Read a ``tokenizer.json`` written by lmforge or by HF `tokenizers`.

    A directory is read as ``DIR/tokenizer.json`` (a model directory).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise MissingFileError(
            f"{path}: no such tokenizer file; train one with `lmforge tokenizer train --out {path} FILE...`"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"{path}: byte {exc.start} is not valid UTF-8; a tokenizer.json is UTF-8 JSON"
        ) from None
    return tokenizer_from_str(text, str(path))


def tokenizer_from_str(text: str, source: str = "<string>") -> Tokenizer:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileFormatError(
            f"{source}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
            "is it a tokenizer.json? re-create it with `lmforge tokenizer train`"
        ) from None
    return tokenizer_from_dict(data, source)


register_json_reader(tokenizer_from_str)


def tokenizer_from_dict(data: Any, source: str = "<dict>") -> Tokenizer:
    """Build the tokenizer a parsed ``tokenizer.json`` describes."""
    reader = _Reader(source)
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise FileFormatError(f'{source}: not a tokenizer.json (no "model" section)')
    added = [reader.added_token(t) for t in data.get("added_tokens") or []]
    normalizer = reader.normalizer(data.get("normalizer"))
    pre_tokenizer = reader.pre_tokenizer(data.get("pre_tokenizer"))
    byte_level = _contains(pre_tokenizer, ByteLevel)
    model = reader.model(data["model"], byte_level)
    vocab = dict(model.vocab)
    vocab.update({t.content: t.id for t in added})
    post_processor = reader.post_processor(data.get("post_processor"), vocab)
    decoder = reader.decoder(data.get("decoder"))
    kind: type[Tokenizer] = Tokenizer
    if isinstance(model, BPEModel) and model.byte_level:
        kind = BPETokenizer
    elif isinstance(model, BPEModel) and model.end_of_word_suffix and isinstance(decoder, BPEDecoder):
        kind = CharBPETokenizer
    elif isinstance(model, WordPieceModel):
        kind = WordPieceTokenizer
    elif isinstance(model, WordLevelModel):
        kind = CharTokenizer if isinstance(pre_tokenizer, EveryCharacter) else WordTokenizer
    elif isinstance(model, UnigramModel):
        kind = UnigramTokenizer
    return kind(
        model,
        normalizer=normalizer,
        pre_tokenizer=pre_tokenizer,
        post_processor=post_processor,
        decoder=decoder,
        added_tokens=added,
        truncation=reader.truncation(data.get("truncation")),
        padding=reader.padding(data.get("padding")),
    )


# --- reading each section --------------------------------------------------------------------------------


def _contains(stage: Any, kind: type) -> bool:
    if isinstance(stage, kind):
        return True
    children = getattr(stage, "pre_tokenizers", None) or getattr(stage, "normalizers", None) or []
    return any(_contains(child, kind) for child in children)


def _pattern(value: Any) -> tuple[str, bool]:
    """HF patterns are {"String": s} or {"Regex": r}: (text, is_regex)."""
    if isinstance(value, dict) and "Regex" in value:
        return value["Regex"], True
    if isinstance(value, dict) and "String" in value:
        return value["String"], False
    if isinstance(value, str):
        return value, False
    raise ValueError(f"pattern must be {{'String': ...}} or {{'Regex': ...}}, got {value!r}")


def _prepend_scheme(data: dict) -> str:
    """Metaspace's prepend_scheme; files from before it existed say add_prefix_space (true: always)."""
    if "prepend_scheme" in data:
        return data["prepend_scheme"]
    return "always" if data.get("add_prefix_space", True) else "never"


def _snake(name: str) -> str:
    """'MergedWithPrevious' → 'merged_with_previous'."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class _Reader:
    """Turns each JSON section into a stage; errors name the file, the section and what lmforge reads."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, section: str, message: str) -> FileFormatError:
        return FileFormatError(f"{self.source}: {section}: {message}")

    def _type(self, section: str, data: Any, known: dict) -> str:
        if not isinstance(data, dict) or "type" not in data:
            raise self.fail(section, f'expected an object with a "type", got {str(data)[:80]!r}')
        kind = data["type"]
        if kind not in known:
            raise self.fail(
                section, f"type {kind!r} is not supported by lmforge (it reads: {', '.join(sorted(known))})"
            )
        return kind

    def _build(self, section: str, data: Any, known: dict):
        kind = self._type(section, data, known)
        try:
            return known[kind](data)
        except FileFormatError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise self.fail(section, f"malformed {kind} ({type(exc).__name__}: {exc})") from None

    def normalizer(self, data: Any) -> Normalizer | None:
        if data is None:
            return None
        known = {
            "BertNormalizer": lambda d: BertNormalizer(
                d.get("clean_text", True),
                d.get("handle_chinese_chars", True),
                d.get("strip_accents"),
                d.get("lowercase", True),
            ),
            "Lowercase": lambda d: Lowercase(),
            "NFC": lambda d: UnicodeNormalizer("NFC"),
            "NFD": lambda d: UnicodeNormalizer("NFD"),
            "NFKC": lambda d: UnicodeNormalizer("NFKC"),
            "NFKD": lambda d: UnicodeNormalizer("NFKD"),
            "StripAccents": lambda d: StripAccents(),
            "Strip": lambda d: Strip(d.get("strip_left", True), d.get("strip_right", True)),
            "Replace": lambda d: Replace(*self._replace_args(d)),
            "Prepend": lambda d: Prepend(d["prepend"]),
            "Sequence": lambda d: NormalizerSequence([self.normalizer(n) for n in d["normalizers"]]),
        }
        return self._build("normalizer", data, known)

    def _replace_args(self, data: dict) -> tuple[str, str, bool]:
        pattern, is_regex = _pattern(data["pattern"])
        return pattern, data["content"], is_regex

    def pre_tokenizer(self, data: Any) -> PreTokenizer | None:
        if data is None:
            return None
        known = {
            "ByteLevel": lambda d: ByteLevel(
                d.get("add_prefix_space", True), d.get("trim_offsets", True), d.get("use_regex", True)
            ),
            "BertPreTokenizer": lambda d: BertPreTokenizer(),
            "Whitespace": lambda d: Whitespace(),
            "WhitespaceSplit": lambda d: WhitespaceSplit(),
            "Punctuation": lambda d: Punctuation(_snake(d.get("behavior", "Isolated"))),
            "Digits": lambda d: Digits(d.get("individual_digits", False)),
            "Split": self._split,
            "CharDelimiterSplit": lambda d: Split(d["delimiter"], "removed", False, False),
            "FixedLength": lambda d: FixedLength(d.get("length", 5)),
            "Metaspace": lambda d: Metaspace(
                d.get("replacement", "\u2581"), _prepend_scheme(d), d.get("split", True)
            ),
            "Sequence": self._pre_tokenizer_sequence,
        }
        return self._build("pre_tokenizer", data, known)

    def _split(self, data: dict) -> Split:
        pattern, is_regex = _pattern(data["pattern"])
        behavior = _snake(data.get("behavior", "Isolated"))
        invert = data.get("invert", False)
        if is_regex and pattern == EVERY_CHARACTER and behavior == "isolated" and not invert:
            return EveryCharacter()
        return Split(pattern, behavior, invert, is_regex)

    def _pre_tokenizer_sequence(self, data: dict) -> PreTokenizerSequence:
        stages = [self.pre_tokenizer(p) for p in data["pretokenizers"]]
        for index, stage in enumerate(stages):
            if isinstance(stage, ByteLevel) and (index != len(stages) - 1 or stage.add_prefix_space):
                raise self.fail(
                    "pre_tokenizer",
                    "lmforge reads ByteLevel inside a Sequence only as the last step and without add_prefix_space",
                )
            if isinstance(stage, Metaspace) and index != 0 and stage.prepend_scheme != "never":
                raise self.fail(
                    "pre_tokenizer",
                    "lmforge reads a Metaspace that prepends '▁' inside a Sequence only as its first step",
                )
        return PreTokenizerSequence(stages)

    def model(self, data: dict, byte_level: bool):
        if "type" not in data:  # files from old HF versions leave the model's type to be inferred
            if "merges" in data:
                data = {**data, "type": "BPE"}
            elif "max_input_chars_per_word" in data or "continuing_subword_prefix" in data:
                data = {**data, "type": "WordPiece"}
            elif isinstance(data.get("vocab"), dict):
                data = {**data, "type": "WordLevel"}
        known = {
            "BPE": lambda d: self._bpe(d, byte_level),
            "WordPiece": lambda d: WordPieceModel(
                self._vocab(d),
                d.get("unk_token", "[UNK]"),
                d.get("continuing_subword_prefix", "##"),
                d.get("max_input_chars_per_word", 100),
            ),
            "WordLevel": lambda d: WordLevelModel(self._vocab(d), d.get("unk_token")),
            "Unigram": self._unigram,
        }
        return self._build("model", data, known)

    def _vocab(self, data: dict) -> dict[str, int]:
        vocab = data["vocab"]
        if not isinstance(vocab, dict) or not all(isinstance(i, int) for i in vocab.values()):
            raise self.fail("model", "vocab must map each token to an integer id")
        return vocab

    def _unigram(self, data: dict) -> UnigramModel:
        pieces = data["vocab"]
        if not isinstance(pieces, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pieces
        ):
            raise self.fail("model", "Unigram vocab must be a list of [piece, score] pairs")
        if not pieces:
            raise self.fail("model", "Unigram vocab is empty")
        return UnigramModel(
            [(p, float(s)) for p, s in pieces], data.get("unk_id"), data.get("byte_fallback", False)
        )

    def _bpe(self, data: dict, byte_level: bool) -> BPEModel:
        if data.get("dropout"):
            raise self.fail("model", "BPE dropout is not supported by lmforge (it is a training-time option)")
        merges = []
        for merge in data.get("merges", []):
            parts = merge.split(" ") if isinstance(merge, str) else merge
            if len(parts) != 2:
                raise self.fail("model", f"merge {merge!r} is not two tokens")
            merges.append((parts[0], parts[1]))
        return BPEModel(
            self._vocab(data),
            merges,
            byte_level=byte_level,
            unk_token=data.get("unk_token"),
            continuing_subword_prefix=data.get("continuing_subword_prefix"),
            end_of_word_suffix=data.get("end_of_word_suffix"),
            fuse_unk=data.get("fuse_unk", False),
            ignore_merges=data.get("ignore_merges", False),
            byte_fallback=data.get("byte_fallback", False),
        )

    def post_processor(self, data: Any, vocab: dict[str, int]):
        if data is None:
            return None
        known = {
            "ByteLevel": lambda d: ByteLevelProcessor(
                d.get("trim_offsets", True), d.get("add_prefix_space", True)
            ),
            "TemplateProcessing": self._template,
            "BertProcessing": lambda d: TemplateProcessing.bert(
                d["cls"][0], d["cls"][1], d["sep"][0], d["sep"][1]
            ),
            "RobertaProcessing": self._roberta,
            "Sequence": lambda d: PostProcessorSequence(
                [self.post_processor(p, vocab) for p in d["processors"]]
            ),
        }
        return self._build("post_processor", data, known)

    def _template(self, data: dict) -> TemplateProcessing:
        def pieces(items: list) -> list[TemplatePiece]:
            out = []
            for item in items:
                if "Sequence" in item:
                    out.append(
                        TemplatePiece(item["Sequence"]["id"], item["Sequence"].get("type_id", 0), True)
                    )
                else:
                    out.append(
                        TemplatePiece(item["SpecialToken"]["id"], item["SpecialToken"].get("type_id", 0))
                    )
            return out

        special = {
            name: (list(v["ids"]), list(v["tokens"])) for name, v in data.get("special_tokens", {}).items()
        }
        template = TemplateProcessing(pieces(data["single"]), pieces(data["pair"]), special)
        for piece in template.single + template.pair:
            if not piece.is_sequence and piece.name not in special:
                raise self.fail(
                    "post_processor", f"template uses {piece.name!r}, which special_tokens does not define"
                )
        return template

    def _roberta(self, data: dict):
        (sep, sep_id), (cls, cls_id) = data["sep"], data["cls"]
        template = TemplateProcessing(
            single=[TemplatePiece(cls), TemplatePiece("A", 0, True), TemplatePiece(sep)],
            pair=[
                TemplatePiece(cls),
                TemplatePiece("A", 0, True),
                TemplatePiece(sep),
                TemplatePiece(sep),
                TemplatePiece("B", 0, True),
                TemplatePiece(sep),
            ],
            special_tokens={cls: ([cls_id], [cls]), sep: ([sep_id], [sep])},
        )
        trimmer = ByteLevelProcessor(data.get("trim_offsets", True), data.get("add_prefix_space", True))
        return PostProcessorSequence([trimmer, template])

    def decoder(self, data: Any) -> Decoder | None:
        if data is None:
            return None
        known = {
            "ByteLevel": lambda d: ByteLevelDecoder(),
            "WordPiece": lambda d: WordPieceDecoder(d.get("prefix", "##"), d.get("cleanup", True)),
            "Fuse": lambda d: Fuse(),
            "ByteFallback": lambda d: ByteFallback(),
            "Replace": lambda d: ReplaceDecoder(*self._replace_args(d)),
            "Strip": lambda d: StripDecoder(d.get("content", " "), d.get("start", 0), d.get("stop", 0)),
            "Metaspace": lambda d: MetaspaceDecoder(
                d.get("replacement", "\u2581"), _prepend_scheme(d), d.get("split", True)
            ),
            "BPEDecoder": lambda d: BPEDecoder(d.get("suffix", "</w>")),
            "Sequence": lambda d: DecoderSequence([self.decoder(x) for x in d["decoders"]]),
        }
        return self._build("decoder", data, known)

    def added_token(self, data: Any) -> AddedToken:
        if not isinstance(data, dict) or "content" not in data or "id" not in data:
            raise self.fail("added_tokens", f'each entry needs "id" and "content", got {str(data)[:80]!r}')
        return AddedToken(
            data["content"],
            int(data["id"]),
            special=bool(data.get("special", False)),
            single_word=bool(data.get("single_word", False)),
            lstrip=bool(data.get("lstrip", False)),
            rstrip=bool(data.get("rstrip", False)),
            normalized=bool(data.get("normalized", False)),
        )

    def truncation(self, data: Any) -> Truncation | None:
        if data is None:
            return None
        try:
            return Truncation(
                int(data["max_length"]),
                _snake(data.get("strategy", "LongestFirst")),
                data.get("direction", "Right").lower(),
                int(data.get("stride", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self.fail("truncation", f"malformed ({exc})") from None

    def padding(self, data: Any) -> Padding | None:
        if data is None:
            return None
        try:
            strategy = data.get("strategy", "BatchLongest")
            length = int(strategy["Fixed"]) if isinstance(strategy, dict) else None
            return Padding(
                length,
                int(data.get("pad_id", 0)),
                data.get("pad_token", "[PAD]"),
                int(data.get("pad_type_id", 0)),
                data.get("direction", "Right").lower(),
                data.get("pad_to_multiple_of"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self.fail("padding", f"malformed ({exc})") from None
