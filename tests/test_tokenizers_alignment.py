"""Encoding's alignment API, pre-tokenized input, `post_process` and `DecodeStream`, against HF `tokenizers`
on the same inputs: the tokenizers (byte-level BPE with and without a prefix space, BERT's WordPiece, a bare
WordLevel, T5-style Unigram, Llama-2-style byte-fallback BPE) are built with HF's API in the test and read with
`Tokenizer.from_str`."""

from __future__ import annotations

import pytest

from lmforge.tokenizers import DecodeStream, Tokenizer
from test_tokenizers_families import llama2

hf = pytest.importorskip("tokenizers")
from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers, processors  # noqa: E402
from tokenizers.decoders import DecodeStream as HFDecodeStream  # noqa: E402

CORPUS = [
    "The café sat on the mat; naïve cats jumped over 42 logs.",
    "Frogs, dogs and 日本語 text: «quoted» words — and emoji 🐸🐸!",
    "Question: who jumped? Answer: the frog jumped over the log.",
] * 20

TEXTS = [
    "The frog jumped over the log.",
    "  naïve  café, 42 frogs 🐸 jumped!  ",
    "Who sat on the mat? 日本語 [MASK] here",
    "",
]


def byte_level(prefix_space: bool) -> hf.Tokenizer:
    tok = hf.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    tok.decoder = decoders.ByteLevel()
    trainer = hf.trainers.BpeTrainer(
        vocab_size=320,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<s>", "</s>", "<pad>"],
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 1), ("<s>", 0), add_prefix_space=prefix_space)
    return tok


def bert() -> hf.Tokenizer:
    tok = hf.Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = hf.trainers.WordPieceTrainer(
        vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    return tok


def plain() -> hf.Tokenizer:
    """No post-processor: HF keeps no sequence ranges for a single text."""
    tok = hf.Tokenizer(models.WordLevel({"[UNK]": 0, "[PAD]": 1, "the": 2, "frog": 3}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


def t5() -> hf.Tokenizer:
    """SentencePiece Unigram: '▁' words (Metaspace), an end-of-sequence template."""
    tok = hf.Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = hf.trainers.UnigramTrainer(
        vocab_size=150, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A:0 </s>:0 $B:1 </s>:1", special_tokens=[("</s>", 1)]
    )
    return tok


BUILDERS = {
    "roberta": lambda: byte_level(True),
    "gpt2": lambda: byte_level(False),
    "bert": bert,
    "plain": plain,
    "t5": t5,
    "llama2": lambda: llama2(CORPUS),  # byte-fallback BPE, '▁' by normalizers, no pre-tokenizer
}


@pytest.fixture(scope="module", params=list(BUILDERS))
def pair_of_tokenizers(request):
    theirs = BUILDERS[request.param]()
    theirs.add_tokens([AddedToken("[MASK]", lstrip=True)])
    return Tokenizer.from_str(theirs.to_str()), theirs


def assert_same_alignment(mine, reference, texts) -> None:
    assert mine.ids == reference.ids
    assert mine.word_ids == reference.word_ids
    assert mine.sequence_ids == reference.sequence_ids
    assert mine.n_sequences == reference.n_sequences
    n = len(reference.ids)
    for token in range(n + 2):
        assert mine.token_to_sequence(token) == reference.token_to_sequence(token), token
        if token < n:  # HF panics past the end for these two
            assert mine.token_to_chars(token) == reference.token_to_chars(token), token
            assert mine.token_to_word(token) == reference.token_to_word(token), token
    for sequence, text in enumerate(texts):
        words = max((w for w in reference.word_ids if w is not None), default=0) + 2
        for word in range(words):
            assert mine.word_to_tokens(word, sequence) == reference.word_to_tokens(word, sequence), word
            assert mine.word_to_chars(word, sequence) == reference.word_to_chars(word, sequence), word
        for char in range(len(text) + 1):
            assert mine.char_to_token(char, sequence) == reference.char_to_token(char, sequence), char
            assert mine.char_to_word(char, sequence) == reference.char_to_word(char, sequence), char


def test_alignment_of_single_texts_and_pairs(pair_of_tokenizers):
    mine, theirs = pair_of_tokenizers
    for text in TEXTS:
        assert_same_alignment(mine.encode(text), theirs.encode(text), [text])
        assert_same_alignment(
            mine.encode(text, add_special_tokens=False), theirs.encode(text, add_special_tokens=False), [text]
        )
    for a, b in zip(TEXTS, TEXTS[1:], strict=False):
        assert_same_alignment(mine.encode(a, b), theirs.encode(a, b), [a, b])


def test_alignment_with_padding_and_truncation(pair_of_tokenizers):
    mine, theirs = pair_of_tokenizers
    pad = next(t for t in ("[PAD]", "<pad>", "<unk>") if theirs.token_to_id(t) is not None)  # Llama: <unk>
    for direction in ("right", "left"):
        mine.enable_padding(length=48, pad_token=pad, direction=direction)
        theirs.enable_padding(length=48, pad_token=pad, pad_id=theirs.token_to_id(pad), direction=direction)
        for tok in (mine, theirs):
            tok.enable_truncation(12, stride=2, direction=direction)
        try:
            for a, b in [(TEXTS[0], None), (TEXTS[1], TEXTS[2])]:
                texts = [a] if b is None else [a, b]
                got, expected = mine.encode(a, b), theirs.encode(a, b)
                assert_same_alignment(got, expected, texts)
                assert len(got.overflowing) == len(expected.overflowing)
                for window, reference in zip(got.overflowing, expected.overflowing, strict=True):
                    assert window.ids == reference.ids and window.word_ids == reference.word_ids
        finally:
            for tok in (mine, theirs):
                tok.no_padding()
                tok.no_truncation()


def test_pretokenized_input(pair_of_tokenizers):
    mine, theirs = pair_of_tokenizers
    words = ["The", "naïve", "frog", "jumped", "🐸🐸", "over", "  the", "[MASK]", "log."]
    other = ["Who", "sat", "?"]
    got, expected = mine.encode(words, is_pretokenized=True), theirs.encode(words, is_pretokenized=True)
    assert got.tokens == expected.tokens and got.offsets == expected.offsets
    assert_same_alignment(got, expected, [])
    got, expected = (
        mine.encode(words, other, is_pretokenized=True),
        theirs.encode(words, other, is_pretokenized=True),
    )
    assert got.tokens == expected.tokens and got.offsets == expected.offsets
    assert_same_alignment(got, expected, [])
    batch = [words, (words[:3], other)]
    for got, expected in zip(
        mine.encode_batch(batch, is_pretokenized=True),
        theirs.encode_batch(batch, is_pretokenized=True),
        strict=True,
    ):
        assert got.ids == expected.ids and got.word_ids == expected.word_ids
    with pytest.raises(TypeError):
        mine.encode("not a list", is_pretokenized=True)


def test_post_process(pair_of_tokenizers):
    mine, theirs = pair_of_tokenizers
    for tok in (mine, theirs):
        tok.enable_truncation(10)
    try:
        for a, b in [(TEXTS[0], None), (TEXTS[1], TEXTS[2])]:
            raw_mine = [mine.encode(t, add_special_tokens=False) for t in (a, b) if t is not None]
            raw_theirs = [theirs.encode(t, add_special_tokens=False) for t in (a, b) if t is not None]
            for add in (True, False):
                got = mine.post_process(*raw_mine, add_special_tokens=add)
                expected = theirs.post_process(*raw_theirs, add_special_tokens=add)
                assert got.tokens == expected.tokens and got.type_ids == expected.type_ids
                assert got.offsets == expected.offsets
                if add:  # (without special tokens HF's sequence ids of the first text depend on its past)
                    assert got.sequence_ids == expected.sequence_ids
                assert [o.ids for o in got.overflowing] == [o.ids for o in expected.overflowing]
            assert len(raw_mine[0]) == len(raw_theirs[0])  # the inputs are not truncated in place
    finally:
        mine.no_truncation()
        theirs.no_truncation()


def test_decode_stream_matches_hf(pair_of_tokenizers):
    mine, theirs = pair_of_tokenizers
    for text in TEXTS[:3]:
        ids = theirs.encode(text).ids
        for skip in (False, True):
            ours, reference = DecodeStream(skip_special_tokens=skip), HFDecodeStream(skip_special_tokens=skip)
            steps = [(ours.step(mine, i), reference.step(theirs, i)) for i in ids]
            assert [s for s, _ in steps] == [r for _, r in steps]
        ours, reference = DecodeStream(ids=ids[:3]), HFDecodeStream(ids=ids[:3])
        assert [ours.step(mine, i) for i in ids[3:]] == [reference.step(theirs, i) for i in ids[3:]]
