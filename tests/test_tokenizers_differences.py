"""Regression tests for the differences from HF `tokenizers` and gensim that their own test suites found
(issue 22). Each tokenizer is built with HF's Python API in the test, saved with `to_str()` and read with
`Tokenizer.from_str`; lmforge must give the same ids, tokens and offsets (and raise where HF raises)."""

from __future__ import annotations

import numpy as np
import pytest

from lmforge.embeddings import WordVectors
from lmforge.embeddings.vectors import MissingWordError
from lmforge.errors import LmforgeError
from lmforge.tokenizers import Tokenizer

hf = pytest.importorskip("tokenizers")
from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers, processors  # noqa: E402

CORPUS = [
    "The cat sat on the mat.",
    "The dog sat on the log, and the frog jumped.",
    "New York is a big city; new york has many cats.",
    "Is John here? John is there.",
] * 20


def byte_level_bpe(vocab_size: int = 300, prefix_space: bool = False) -> hf.Tokenizer:
    """A small GPT-2-style tokenizer trained by HF on CORPUS."""
    tok = hf.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = hf.trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def letters_word_level() -> hf.Tokenizer:
    """Words a..h, [CLS], [SEP], [UNK], split on whitespace."""
    words = [*"abcdefgh", "[CLS]", "[SEP]", "[UNK]"]
    tok = hf.Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok


def ours(tok: hf.Tokenizer) -> Tokenizer:
    return Tokenizer.from_str(tok.to_str())


def triples(encoding) -> list:
    return list(zip(encoding.ids, encoding.tokens, encoding.offsets, strict=True))


def assert_same_encoding(tok: hf.Tokenizer, *args) -> None:
    mine, reference = ours(tok).encode(*args), tok.encode(*args)
    assert triples(mine) == triples(reference), args


def test_two_lstrip_added_tokens_in_a_row_make_no_extra_token():
    tok = byte_level_bpe()
    tok.add_tokens([AddedToken("<m>", lstrip=True)])
    for text in ["<m> <m>", "The <m> <m> sat.", "<m>  <m>\t<m>", " <m>"]:
        assert_same_encoding(tok, text)
    # RoBERTa: <mask> strips on its left, <s> ... </s> around.
    roberta = byte_level_bpe(prefix_space=True)
    roberta.add_special_tokens(["<s>", "</s>", AddedToken("<mask>", lstrip=True, special=True)])
    roberta.post_processor = processors.RobertaProcessing(
        ("</s>", roberta.token_to_id("</s>")), ("<s>", roberta.token_to_id("<s>"))
    )
    mine, reference = ours(roberta).encode("The <mask> <mask> sat."), roberta.encode("The <mask> <mask> sat.")
    assert triples(mine) == triples(reference)
    assert len(mine.ids) == len(reference.ids)


def test_stripping_added_tokens_keep_the_whitespace_they_took_in_their_token():
    tok = byte_level_bpe()
    tok.add_tokens([AddedToken("<l>", lstrip=True), AddedToken("<r>", rstrip=True)])
    for text in ["a <l> b", "a <r> b", "a  <l><r>  b", "<r> <l>"]:
        assert_same_encoding(tok, text)
    assert " <l>" in ours(tok).encode("a <l> b").tokens


def test_byte_level_trimming_applies_to_added_tokens():
    tok = hf.Tokenizer(models.BPE())
    tok.add_tokens(["is", "Ġjohn"])
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    assert_same_encoding(tok, "is Ġjohn")
    assert ours(tok).encode("is Ġjohn").offsets == [(0, 2), (4, 8)]


def overflow_windows(encoding) -> list:
    return [(o.ids, o.tokens, o.offsets, o.type_ids) for o in encoding.overflowing]


def test_pair_overflow_gives_every_combination_of_windows():
    tok = letters_word_level()
    tok.post_processor = processors.BertProcessing(("[SEP]", 9), ("[CLS]", 8))
    tok.enable_truncation(7)
    mine, reference = ours(tok).encode("a b c d", "e f g h"), tok.encode("a b c d", "e f g h")
    assert overflow_windows(mine) == overflow_windows(reference)
    assert len(mine.overflowing) == 3
    assert [o.sequence_ids for o in mine.overflowing] == [o.sequence_ids for o in reference.overflowing]
    # No post-processor: the windows of the two texts are merged pairs too.
    plain = letters_word_level()
    plain.enable_truncation(4)
    mine, reference = ours(plain).encode("a b c d", "e f g h"), plain.encode("a b c d", "e f g h")
    assert overflow_windows(mine) == overflow_windows(reference)
    assert [o.tokens for o in mine.overflowing] == [list("cdef"), list("cdgh"), list("abgh")]
    # With a stride, longer texts.
    tok.enable_truncation(9, stride=1)
    a, b = "a b c d e f", "b c d e f g h a"
    assert overflow_windows(ours(tok).encode(a, b)) == overflow_windows(tok.encode(a, b))


def test_normalized_added_tokens_are_matched_in_the_normalized_text():
    tok = byte_level_bpe()
    tok.normalizer = normalizers.Lowercase()
    tok.add_tokens(["<SPECIAL>", "New York"])  # normalized=True is add_tokens' default
    for text in ["I love <SPECIAL> new york and NEW YORK", "<special>New York<SPECIAL>"]:
        assert_same_encoding(tok, text)
    assert ours(tok).encode("NEW YORK").tokens == ["new york"]
    # BERT: the normalizer also strips accents and the ByteLevel trimmer is absent.
    bert = hf.Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1, "b": 2}, unk_token="[UNK]"))
    bert.normalizer = normalizers.BertNormalizer(lowercase=True)
    bert.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    bert.add_tokens(["Café Noir"])
    for text in ["a CAFE NOIR b", "a café noir b", "Café Noir"]:
        assert_same_encoding(bert, text)


def test_truncate_with_an_unknown_direction_raises_value_error():
    tok = byte_level_bpe()
    reference = tok.encode("The cat sat on the mat.")
    with pytest.raises(ValueError):
        reference.truncate(2, 0, "not_a_direction")
    mine = ours(tok).encode("The cat sat on the mat.")
    with pytest.raises(ValueError, match="not_a_direction"):
        mine.truncate(2, 0, "not_a_direction")
    assert len(mine) == len(reference)  # nothing was cut


def test_missing_word_is_a_key_error_as_in_gensim():
    gensim_models = pytest.importorskip("gensim.models")
    words = ["king", "queen", "man", "woman"]
    vectors = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    reference = gensim_models.KeyedVectors(5)
    reference.add_vectors(words, vectors)
    with pytest.raises(KeyError):
        reference.most_similar("not_in_vocab")
    mine = WordVectors(words, vectors)
    for call in (
        lambda: mine.most_similar("not_in_vocab"),
        lambda: mine["not_in_vocab"],
        lambda: mine.similarity("king", "not_in_vocab"),
    ):
        with pytest.raises(KeyError) as caught:
            call()
        assert isinstance(caught.value, LmforgeError) and isinstance(caught.value, MissingWordError)
        assert str(caught.value) == "'not_in_vocab' is not in the vocabulary (4 words)"  # one plain line
