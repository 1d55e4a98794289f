"""SentencePiece's stages one option at a time, against HF `tokenizers` on the same strings: the `Metaspace`
pre-tokenizer and decoder under each `prepend_scheme` (always, first, never), split or not, with added
tokens in the text; the `Prepend` and `Replace` normalizers; the `ByteFallback`, `Replace`, `Strip`, `Fuse`
and `BPEDecoder` decoders on token lists HF decodes; and a Unigram model with `byte_fallback`. Each stage is
built with HF's API inside a tokenizer, saved with `to_str()` and read by lmforge (the families test covers
the stages as the model families combine them)."""

from __future__ import annotations

import random

import pytest

from lmforge.errors import LmforgeError
from lmforge.tokenizers import Tokenizer, load_tokenizer

hf = pytest.importorskip("tokenizers")
from tokenizers import AddedToken, Regex, decoders, models, normalizers  # noqa: E402
from tokenizers import pre_tokenizers as hp  # noqa: E402

PIECES = ["a", "b", "ab", " ", "  ", "\t", "\n", "▁", "é", "e\u0301", "🐸", "日本", "-", "<sep>", "x y", "ba"]
SCHEMES = ("always", "first", "never")


def strings(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = ["", " ", "a", "<sep>", " <sep> ", "▁a", "🐸"]
    while len(out) < count:
        out.append("".join(rng.choice(PIECES) for _ in range(rng.randint(1, 10))))
    return out


def unigram_model(byte_fallback: bool = False) -> models.Unigram:
    """A hand-made Unigram vocabulary: '<unk>' first, the letters, some '▁' pieces, and (with byte fallback)
    the 256 byte pieces SentencePiece adds."""
    pieces = [("<unk>", 0.0), ("<sep>", 0.0), ("▁", -2.0), ("a", -3.0), ("b", -3.0), ("▁a", -2.5)]
    pieces += [("ab", -3.5), ("▁ab", -3.0), ("ba", -4.0), ("-", -4.0), ("é", -5.0), ("x", -5.0), ("y", -5.0)]
    if byte_fallback:
        pieces += [(f"<0x{b:02X}>", -10.0) for b in range(256)]
    return models.Unigram(pieces, unk_id=0, byte_fallback=byte_fallback)


def assert_same(theirs: hf.Tokenizer, texts: list[str]) -> Tokenizer:
    mine = Tokenizer.from_str(theirs.to_str())
    for text in texts:
        got, expected = mine.encode(text), theirs.encode(text)
        assert (got.ids, got.tokens, got.offsets) == (expected.ids, expected.tokens, expected.offsets), text
        for skip in (True, False):
            assert mine.decode(got.ids, skip_special_tokens=skip) == theirs.decode(
                expected.ids, skip_special_tokens=skip
            ), text
    return mine


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("split", [True, False])
def test_metaspace_pre_tokenizer_and_decoder_match_hf(scheme, split):
    texts = strings(300, seed=SCHEMES.index(scheme) * 2 + split)
    stage = hp.Metaspace(replacement="▁", prepend_scheme=scheme, split=split)
    theirs = hf.Tokenizer(unigram_model())
    theirs.pre_tokenizer = stage
    theirs.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=scheme, split=split)
    theirs.add_special_tokens([AddedToken("<sep>", special=True, normalized=False)])
    assert_same(theirs, texts)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_metaspace_with_a_custom_replacement(scheme):
    theirs = hf.Tokenizer(models.WordLevel({"[UNK]": 0, "_a": 1, "a": 2, "_b": 3, "b": 4, "_": 5}, "[UNK]"))
    theirs.pre_tokenizer = hp.Metaspace(replacement="_", prepend_scheme=scheme)
    theirs.decoder = decoders.Metaspace(replacement="_", prepend_scheme=scheme)
    assert_same(theirs, ["a b", " a", "ab ba", "a  b ", "_a", ""])


def test_prepend_and_replace_normalizers_match_hf():
    texts = strings(300, seed=11)
    for normalizer in [
        normalizers.Prepend("▁"),
        normalizers.Prepend("<<"),
        normalizers.Replace(" ", "▁"),
        normalizers.Replace("ab", "x"),
        normalizers.Replace("a", ""),
        normalizers.Replace(Regex(r"\s+"), " "),
        normalizers.Replace(Regex(r"(a)(b)"), "y"),
        normalizers.Replace(Regex(r" {2,}"), "▁"),
        normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]),
        normalizers.Sequence([normalizers.NFKD(), normalizers.Replace(Regex(r"\p{Mn}"), "")]),
    ]:
        theirs = hf.Tokenizer(unigram_model(byte_fallback=True))
        theirs.normalizer = normalizer
        theirs.pre_tokenizer = hp.Metaspace(prepend_scheme="never")
        mine = assert_same(theirs, texts)
        for text in texts:
            assert mine.normalizer.normalize(text)[0] == normalizer.normalize_str(text), (normalizer, text)


TOKEN_LISTS = [
    [],
    ["▁a", "b", "▁", "▁c"],
    ["<0x41>", "<0x42>", "c"],
    ["<0xE6>", "<0x97>", "<0xA5>", "x"],  # '日' in three bytes
    ["<0xE6>", "<0x97>", "x", "<0xFF>"],  # broken runs: one U+FFFD per byte
    ["<0x4>", "<0xZZ>", "<0x41", "0x41>"],  # not byte tokens
    ["  a  ", " b", "c  ", "   "],
    ["hel", "lo</w>", "wor", "ld</w>", "!</w>"],
    ["a", "▁▁b", "", "▁"],
]


def test_decoders_match_hf():
    for decoder in [
        decoders.ByteFallback(),
        decoders.Fuse(),
        decoders.Replace("▁", " "),
        decoders.Replace(Regex("▁+"), "_"),
        decoders.Strip(" ", 1, 0),
        decoders.Strip(" ", 0, 2),
        decoders.Strip(" ", 2, 1),
        decoders.BPEDecoder(),
        decoders.BPEDecoder(suffix="ld</w>"),
        decoders.Metaspace(),
        decoders.Metaspace(prepend_scheme="never"),
        decoders.Sequence(
            [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        ),
    ]:
        theirs = hf.Tokenizer(models.WordLevel({"[UNK]": 0}, "[UNK]"))
        theirs.decoder = decoder
        mine = Tokenizer.from_str(theirs.to_str())
        compared = 0
        for tokens in TOKEN_LISTS:
            try:
                expected = decoder.decode(list(tokens))
            except BaseException as error:  # HF's Strip panics on tokens shorter than what it strips
                assert type(error).__name__ == "PanicException" and "Strip" in repr(decoder), error
                continue
            assert mine.decoder.decode(list(tokens)) == expected, (decoder, tokens)
            compared += 1
        assert compared >= len(TOKEN_LISTS) - 3, decoder


@pytest.mark.parametrize("byte_fallback", [False, True])
def test_unigram_byte_fallback_matches_hf(byte_fallback):
    """Unknown characters: one '<unk>' for a run of them, or (byte fallback) their UTF-8 bytes as
    `<0xAB>` pieces, each spanning the whole unknown run, and decoded back by `ByteFallback`."""
    theirs = hf.Tokenizer(unigram_model(byte_fallback))
    theirs.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    theirs.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    mine = assert_same(theirs, strings(400, seed=20 + byte_fallback))
    assert mine.model.byte_fallback is byte_fallback
    if byte_fallback:
        assert "<0xF0>" in mine.encode("a🐸").tokens


def test_what_lmforge_refuses_is_one_line_naming_the_file_and_section(tmp_path):
    """The stages docs/tokenization.md lists as refused, each built with HF's API and saved by HF: a
    one-line error naming the file, the section and why (never a wrong encoding)."""

    def word_level():
        return hf.Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, "[UNK]"))

    with_dropout = hf.Tokenizer(models.BPE({"a": 0, "b": 1, "ab": 2}, [("a", "b")], dropout=0.1))
    metaspace_second = word_level()
    metaspace_second.pre_tokenizer = hp.Sequence([hp.WhitespaceSplit(), hp.Metaspace()])
    byte_level_first = word_level()
    byte_level_first.pre_tokenizer = hp.Sequence([hp.ByteLevel(add_prefix_space=False), hp.WhitespaceSplit()])
    scripts = word_level()
    scripts.pre_tokenizer = hp.UnicodeScripts()
    ctc = word_level()
    ctc.decoder = decoders.CTC()
    precompiled = word_level()
    cases = {
        "model: BPE dropout": with_dropout.to_str(),
        "pre_tokenizer: .*Metaspace": metaspace_second.to_str(),
        "pre_tokenizer: .*ByteLevel": byte_level_first.to_str(),
        "pre_tokenizer: type 'UnicodeScripts' is not supported": scripts.to_str(),
        "decoder: type 'CTC' is not supported": ctc.to_str(),
        "normalizer: type 'Precompiled' is not supported": precompiled.to_str().replace(
            '"normalizer":null', '"normalizer":{"type":"Precompiled","precompiled_charsmap":""}'
        ),
    }
    for message, text in cases.items():
        path = tmp_path / "tokenizer.json"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(LmforgeError, match=f"^{path}: {message}") as error:
            load_tokenizer(path)
        assert "\n" not in str(error.value)
