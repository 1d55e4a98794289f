"""Training the kinds HF trains differently from GPT-2's BPE: CharBPE (original BPE with a ``</w>`` suffix)
and Unigram (SentencePiece's EM), each against HF `tokenizers`' trainer on the same wikitext-2 text.

CharBPE: the same merges as HF's `CharBPETokenizer` (as a set; in HF's order, id for id, once the suffixed
characters are given HF's ids, which HF takes from a hash map and so changes from run to run), and the
trained file read by HF encodes as lmforge does.

Unigram: on held-out text, lmforge's vocabulary encodes within 1% of the length of HF's trained at the same
size on the same text (the issue's bar; here it is the same length, the vocabularies nearly the same), and
the file it saves loads in HF and encodes identically there.
"""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
hf = pytest.importorskip("tokenizers")

from lmforge.errors import LmforgeError  # noqa: E402
from lmforge.tokenizers import CharBPETokenizer, Tokenizer, UnigramTokenizer, load_tokenizer  # noqa: E402
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


# --- Unigram ---------------------------------------------------------------------------------------------

UNIGRAM_SPECIALS = ["<pad>", "</s>", "<unk>"]  # T5's: the unknown piece is not first


def hf_unigram(train: list[str], vocab_size: int, specials=UNIGRAM_SPECIALS) -> hf.Tokenizer:
    """SentencePiece's stages (NFKC, Metaspace) and HF's UnigramTrainer with its defaults."""
    from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

    tok = hf.Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(train, trainer)
    return tok


def encoded_length(tok, texts: list[str]) -> int:
    return sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))


def test_unigram_training_matches_hfs_trainer(lines, tmp_path):
    """Trained on the same lines at the same size, lmforge's vocabulary spells held-out text within 1% of
    the length HF's does, and the file it saves loads in HF and encodes identically there."""
    train, held_out = lines[:1500], lines[-800:]
    theirs = hf_unigram(train, 1000)
    ours = UnigramTokenizer.train(train, vocab_size=1000, special_tokens=UNIGRAM_SPECIALS)
    assert ours.vocab_size == theirs.get_vocab_size() == 1000
    assert ours.token_to_id("<unk>") == theirs.token_to_id("<unk>") == 2
    mine, reference = encoded_length(ours, held_out), encoded_length(theirs, held_out)
    assert abs(mine - reference) <= 0.01 * reference, (mine, reference)
    # not promised, but SentencePiece's algorithm on the same words learns (nearly) the same pieces
    overlap = set(ours.get_vocab()) & set(theirs.get_vocab())
    assert len(overlap) >= 0.95 * 1000
    path = ours.save(tmp_path / "unigram.json")
    loaded = hf.Tokenizer.from_file(str(path))
    texts = held_out[:200] + mixed_strings(lines, 200, seed=11)
    for text in texts:
        a, b = ours.encode(text), loaded.encode(text)
        assert (a.ids, a.tokens, a.offsets) == (b.ids, b.tokens, b.offsets), text
        assert ours.decode(a.ids) == loaded.decode(b.ids), text
    assert load_tokenizer(path).kind == "unigram"


def test_unigram_training_options():
    """`unk_token` not among the special tokens comes first, as in HF; on a text this small EM keeps
    fewer pieces than asked, the same ones HF keeps."""
    texts = ["low lower lowest newest widest"] * 20
    tok = UnigramTokenizer.train(texts, vocab_size=40, special_tokens=["<s>", "</s>"])
    assert tok.id_to_token(0) == "<unk>" and tok.special_tokens == ["<unk>", "<s>", "</s>"]
    theirs = hf_unigram(texts, 40, specials=["<s>", "</s>"])
    assert tok.vocab_size == theirs.get_vocab_size() == 17
    assert set(tok.get_vocab()) == set(theirs.get_vocab())
    assert tok.encode("lowest newer").tokens == theirs.encode("lowest newer").tokens
    with pytest.raises(
        LmforgeError, match=r"smaller than the 11 characters of the corpus \+ 3 special tokens = 14"
    ):
        UnigramTokenizer.train(texts, vocab_size=13, special_tokens=["<s>", "</s>"])
    with pytest.raises(LmforgeError, match="empty corpus"):
        UnigramTokenizer.train(["", ""], vocab_size=100)


@pytest.mark.slow
def test_unigram_on_wikitext2_is_within_one_percent_of_hf(shared_data):
    """The issue's acceptance: all of wikitext-2 train, vocabulary 8192, held-out = valid.txt."""
    folder = shared_data / "wikitext-2"
    train = (folder / "train.txt").read_text(encoding="utf-8").splitlines()
    held_out = (folder / "valid.txt").read_text(encoding="utf-8").splitlines()
    theirs = hf_unigram(train, 8192)
    ours = UnigramTokenizer.train(train, vocab_size=8192, special_tokens=UNIGRAM_SPECIALS)
    mine, reference = encoded_length(ours, held_out), encoded_length(theirs, held_out)
    assert abs(mine - reference) <= 0.01 * reference, (mine, reference)
    loaded = hf.Tokenizer.from_str(ours.to_str())
    assert [e.ids for e in ours.encode_batch(held_out[:2000])] == [
        e.ids for e in loaded.encode_batch(held_out[:2000])
    ]


@pytest.mark.parametrize("kind", ["charbpe", "unigram"])
def test_cli_trains_the_new_kinds(kind, lines, cli, tmp_path):
    """`lmforge tokenizer train --kind charbpe|unigram` writes a file HF reads; `encode --json` prints what
    HF's encoding of it holds."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines[:1000]) + "\n", encoding="utf-8")
    out = tmp_path / f"{kind}.json"
    code, stdout, err = cli("tokenizer", "train", "--kind", kind, "--vocab-size", "700", "--out", out, corpus)
    assert code == 0, err
    assert f"{kind} tokenizer: 700 ids" in stdout
    if kind == "unigram":
        assert "EM round 1:" in err  # progress, on stderr
    theirs = hf.Tokenizer.from_file(str(out))
    text = "The frog jumped over 2 logs, unbelievably."
    code, stdout, err = cli("tokenizer", "encode", "--tokenizer", out, "--json", text)
    assert code == 0, err
    printed, reference = json.loads(stdout), theirs.encode(text)
    assert printed["ids"] == reference.ids and printed["tokens"] == reference.tokens
    assert [tuple(o) for o in printed["offsets"]] == reference.offsets
