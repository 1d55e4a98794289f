"""Training the kinds HF trains differently from GPT-2's BPE: CharBPE (original BPE with a ``</w>`` suffix)
and Unigram (SentencePiece's EM), each against HF `tokenizers`' trainer on the same wikitext-2 text.

CharBPE: the same merges as HF's `CharBPETokenizer` (as a set; in HF's order, id for id, once the suffixed
characters are given HF's ids, which HF takes from a hash map and so changes from run to run), and the
trained file read by HF encodes as lmforge does.
"""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
hf = pytest.importorskip("tokenizers")

from lmforge.tokenizers import CharBPETokenizer, Tokenizer, load_tokenizer  # noqa: E402
from test_tokenizers_families import mixed_strings  # noqa: E402


@pytest.fixture(scope="module")
def lines(shared_data) -> list[str]:
    text = (shared_data / "wikitext-2" / "train.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in text[:8000] if line.strip()]


def hf_charbpe(train: list[str], vocab_size: int, lowercase: bool = False) -> hf.Tokenizer:
    theirs = hf.CharBPETokenizer(lowercase=lowercase)
    theirs.train_from_iterator(train, vocab_size=vocab_size, min_frequency=2, show_progress=False)
    return hf.Tokenizer.from_str(theirs.to_str())


def model_of(tok) -> dict:
    return json.loads(tok.to_str())["model"]


def assert_same_encodings(ours: Tokenizer, theirs: hf.Tokenizer, texts: list[str], ids: bool = True) -> None:
    for text in texts:
        mine, reference = ours.encode(text), theirs.encode(text)
        assert mine.tokens == reference.tokens, text
        assert mine.offsets == reference.offsets, text
        if ids:
            assert mine.ids == reference.ids, text
            assert ours.decode(mine.ids) == theirs.decode(reference.ids), text


@pytest.mark.parametrize("lowercase", [False, True])
def test_charbpe_learns_hfs_merges(lines, lowercase):
    train, held_out = lines[:2500], lines[-300:]
    theirs = hf_charbpe(train, 1500, lowercase)
    expected = model_of(theirs)
    ours = CharBPETokenizer.train(train, vocab_size=1500, lowercase=lowercase)
    assert set(ours.merges) == {tuple(m) for m in expected["merges"]}
    assert set(ours.get_vocab()) == set(theirs.get_vocab())
    assert_same_encodings(ours, theirs, held_out, ids=False)  # the same tokens; some ids differ (above)
    # HF breaks ties between equally frequent pairs by the smaller ids, and numbers the suffixed characters
    # ('e</w>') in hash-map order: given that order, the merges come out in HF's order and the ids are HF's.
    endings = [t for t, _ in sorted(expected["vocab"].items(), key=lambda item: item[1])]
    endings = [t for t in endings if t.endswith("</w>") and len(t) == len("x</w>")]
    again = CharBPETokenizer.train(train, vocab_size=1500, lowercase=lowercase, endings=endings)
    assert again.merges == [tuple(m) for m in expected["merges"]]
    assert again.get_vocab() == theirs.get_vocab()
    assert_same_encodings(again, theirs, held_out)


def test_charbpe_file_encodes_identically_in_hf(lines, tmp_path):
    ours = CharBPETokenizer.train(lines[:2500], vocab_size=1200)
    path = ours.save(tmp_path / "charbpe.json")
    theirs = hf.Tokenizer.from_file(str(path))
    assert model_of(theirs)["end_of_word_suffix"] == "</w>"
    texts = mixed_strings(lines, 300, seed=7)  # emoji, other scripts (<unk>), combining marks, space runs
    assert_same_encodings(ours, theirs, texts)
    back = load_tokenizer(path)
    assert back.kind == "charbpe" and back.get_vocab() == ours.get_vocab()
    assert_same_encodings(back, theirs, texts[:50])
    # each word ends in a space when decoded, '.' being a word too (HF's BPEDecoder: the same text)
    assert ours.decode(ours.encode("The frog sat on the log.").ids) == "The frog sat on the log ."


def test_charbpe_hf_file_reads_as_charbpe(lines):
    theirs = hf_charbpe(lines[:1000], 800)
    ours = Tokenizer.from_str(theirs.to_str())
    assert ours.kind == "charbpe"
    assert_same_encodings(ours, theirs, mixed_strings(lines, 100, seed=3))
