"""The four tokenizer kinds: training, the Python API, round trips, save/load, and every bad input.

Parity with HF `tokenizers` is in test_tokenizers_parity.py; this file checks lmforge's own behaviour.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmforge.errors import LmforgeError
from lmforge.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    Encoding,
    WordPieceTokenizer,
    WordTokenizer,
    load_tokenizer,
    tokenizer_from_str,
)

KINDS = [CharTokenizer, WordTokenizer, BPETokenizer, WordPieceTokenizer]


@pytest.fixture(scope="module")
def shakespeare(shared_data) -> list[str]:
    lines = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip()]


@pytest.fixture(scope="module")
def trained(shakespeare) -> dict[str, object]:
    train = shakespeare[:8000]
    return {
        "char": CharTokenizer.train(iter(train), vocab_size=60),
        "word": WordTokenizer.train(iter(train), vocab_size=2000, lowercase=True),
        "bpe": BPETokenizer.train(iter(train), vocab_size=800),
        "wordpiece": WordPieceTokenizer.train(iter(train), vocab_size=800),
    }


def test_train_streams_any_iterator_and_fills_the_vocabulary(trained):
    assert trained["bpe"].vocab_size == 800 and trained["wordpiece"].vocab_size == 800
    assert trained["char"].vocab_size == 60 and trained["word"].vocab_size == 2000
    assert (
        trained["bpe"].special_tokens == ["<|endoftext|>"]
        and trained["bpe"].token_to_id("<|endoftext|>") == 0
    )
    assert trained["wordpiece"].special_tokens == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for tok in trained.values():
        for token_id in range(tok.vocab_size):
            assert tok.token_to_id(tok.id_to_token(token_id)) == token_id


def test_train_is_the_same_from_a_generator_and_a_list(shakespeare):
    lines = shakespeare[:2000]
    from_list = BPETokenizer.train(lines, vocab_size=400)
    from_generator = BPETokenizer.train((line for line in lines), vocab_size=400)
    assert from_list.merges == from_generator.merges


def test_the_smaller_the_token_the_longer_the_sequence(trained, shakespeare):
    held_out = "\n".join(shakespeare[-200:])
    lengths = {kind: len(tok.encode(held_out)) for kind, tok in trained.items()}
    assert lengths["char"] > lengths["bpe"] > lengths["word"]
    assert lengths["char"] > lengths["wordpiece"]


def test_word_tokenizer_uses_unk_for_unseen_words_and_bpe_never_does(trained):
    encoding = trained["word"].encode("Citizen zyxwvut!")
    assert encoding.tokens == ["citizen", "[UNK]", "!"]
    assert encoding.offsets == [(0, 7), (8, 15), (15, 16)]
    bpe = trained["bpe"].encode("zyxwvut 戦場 😀")
    assert trained["bpe"].decode(bpe.ids) == "zyxwvut 戦場 😀"


def test_wordpiece_marks_continuations_and_covers_words(trained):
    encoding = trained["wordpiece"].encode("Unpleasantness, my lord.")
    assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]"
    assert any(t.startswith("##") for t in encoding.tokens)
    assert trained["wordpiece"].decode(encoding.ids) == "unpleasantness, my lord."


def test_pair_template_and_type_ids(trained):
    tok = trained["wordpiece"]
    encoding = tok.encode("my lord", "good night")
    assert encoding.tokens[0] == "[CLS]" and encoding.tokens.count("[SEP]") == 2
    first_sep = encoding.tokens.index("[SEP]")
    assert encoding.type_ids == [0] * (first_sep + 1) + [1] * (len(encoding) - first_sep - 1)
    assert encoding.special_tokens_mask[0] == 1 and encoding.offsets[0] == (0, 0)
    assert encoding.sequence_ids[1] == 0 and encoding.sequence_ids[-2] == 1


@pytest.mark.parametrize("kind", ["char", "word", "bpe", "wordpiece"])
def test_offsets_point_into_the_original_text(trained, kind):
    text = "  First Citizen:\tBefore we proceed any further, hear me speak.  "
    encoding = trained[kind].encode(text, add_special_tokens=False)
    assert len(encoding.ids) == len(encoding.tokens) == len(encoding.offsets)
    for token, (start, end) in zip(encoding.tokens, encoding.offsets, strict=True):
        piece = text[start:end]
        if kind == "char":
            assert piece == token or token == "[UNK]"
        elif kind == "bpe":
            assert piece == trained["bpe"].decode([trained["bpe"].token_to_id(token)]).strip(" ")
        else:
            assert piece.lower() == token.removeprefix("##")


def test_truncation_padding_and_batches(trained):
    tok = trained["wordpiece"]
    tok.enable_truncation(6)
    tok.enable_padding()
    try:
        batch = tok.encode_batch(["my lord", "good night, sweet prince, and flights of angels"])
        assert [len(e) for e in batch] == [6, 6]
        assert batch[0].attention_mask == [1, 1, 1, 1, 0, 0] and batch[0].tokens[-1] == "[PAD]"
        assert batch[1].tokens[-1] == "[SEP]" and batch[1].overflowing
        tok.enable_padding(length=10, direction="left")
        assert tok.encode("lord").attention_mask == [0] * 7 + [1] * 3
    finally:
        tok.no_truncation()
        tok.no_padding()
    assert len(tok.encode("good night, sweet prince, and flights of angels")) > 6


def test_encode_batch_on_two_processes_equals_one(trained, shakespeare):
    texts = shakespeare[:3000]
    for kind in ("bpe", "wordpiece"):
        tok = trained[kind]
        assert tok.encode_batch(texts, num_workers=2) == tok.encode_batch(texts)


@pytest.mark.parametrize("kind", ["char", "word", "bpe", "wordpiece"])
def test_save_load_gives_the_same_kind_and_output(trained, tmp_path, kind, shakespeare):
    tok = trained[kind]
    path = tok.save(tmp_path / "tok.json")
    loaded = load_tokenizer(path)
    assert type(loaded) is type(tok) and loaded.vocab_size == tok.vocab_size
    for text in shakespeare[-50:] + ["", "zyxwvut 😀"]:
        assert loaded.encode(text) == tok.encode(text)
    readable = (tmp_path / "tok.vocab.txt").read_text(encoding="utf-8")
    assert readable.startswith(f"# {kind} tokenizer")
    if kind == "bpe":  # each merge with its two parts
        assert "[ t][he] -> [ the]" in readable or "] -> [" in readable
    os.replace(path, tmp_path / "tokenizer.json")
    assert load_tokenizer(tmp_path).vocab_size == tok.vocab_size  # a model directory holding tokenizer.json


@settings(max_examples=400, deadline=None)
@given(text=st.text())
def test_byte_level_bpe_round_trips_every_string(text):
    tok = _small_bpe()
    encoding = tok.encode(text)
    assert tok.decode(encoding.ids, skip_special_tokens=False) == text
    assert all(0 <= i < tok.vocab_size for i in encoding.ids)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "😀👍🏽‍",
        "戦場のヴァルキュリア",
        "e\u0301\u0308",
        "\x00\x01\x7f\u200b",
        " " * 50,
        "a\n\n\r\n\tb",
        "한국어",
    ],
)
def test_byte_level_bpe_round_trips_edge_cases(text):
    tok = _small_bpe()
    assert tok.decode(tok.encode(text).ids) == text


_BPE: list = []


def _small_bpe() -> BPETokenizer:
    if not _BPE:
        text = ["the quick brown fox jumps over the lazy dog 戦場 😀 naïve café"] * 20
        _BPE.append(BPETokenizer.train(text, vocab_size=300, min_frequency=1))
    return _BPE[0]


def test_tiny_worked_example_merges():
    tok = BPETokenizer.train(["low lower lowest"] * 10, vocab_size=260)
    assert tok.merges[:3] == [("l", "o"), ("lo", "w"), ("Ġ", "low")]
    assert tok.encode(" lower").tokens == ["Ġlow", "e", "r"]


# --- bad input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", KINDS)
def test_empty_corpus_is_an_error(cls):
    with pytest.raises(LmforgeError, match="empty corpus"):
        cls.train(iter([]), vocab_size=300)
    with pytest.raises(LmforgeError, match="empty corpus"):
        cls.train(["", ""], vocab_size=300)


def test_vocabulary_smaller_than_the_base_alphabet_is_an_error():
    with pytest.raises(LmforgeError, match="smaller than the base alphabet.*257"):
        BPETokenizer.train(["some text"], vocab_size=200)
    with pytest.raises(LmforgeError, match="smaller than the base alphabet"):
        WordPieceTokenizer.train(["many different letters: abcdefghijklmnopqrstuvwxyz"], vocab_size=20)
    with pytest.raises(LmforgeError, match="smaller than the base alphabet"):
        CharTokenizer.train(["abc"], vocab_size=2)


def test_missing_and_malformed_tokenizer_files(tmp_path):
    with pytest.raises(LmforgeError, match="no such tokenizer file"):
        load_tokenizer(tmp_path / "nope.json")
    cases = {
        "not json": "not valid JSON",
        '{"model": {"type": "Unigram", "vocab": []}}': "bad.json: model: Unigram vocab is empty",
        '{"model": {"type": "Unigram", "vocab": [["a", 0]]}, "decoder": {"type": "CTC"}}': "CTC.*not supported",
        '{"version": "1.0"}': 'no "model" section',
        '{"model": {"type": "WordPiece"}}': "malformed WordPiece",
        '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}': "not in the vocabulary",
        '{"model": {"type": "WordLevel", "vocab": {}}, "normalizer": {"type": "Precompiled"}}': "normalizer",
    }
    for text, message in cases.items():
        path = tmp_path / "bad.json"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(LmforgeError, match=message):
            load_tokenizer(path)
    path.write_bytes(b'{"model": "\xff"}')
    with pytest.raises(LmforgeError, match="byte 11 is not valid UTF-8"):
        load_tokenizer(path)


def test_a_failed_save_leaves_the_previous_file_intact(trained, tmp_path, monkeypatch):
    path = trained["char"].save(tmp_path / "tok.json")
    before = path.read_text(encoding="utf-8")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        trained["bpe"].save(path)
    assert path.read_text(encoding="utf-8") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok.json", "tok.vocab.txt"]


def test_encoding_equality_and_repr():
    encoding = Encoding([1, 2], ["a", "b"], [(0, 1), (1, 2)], [0, 0], [1, 1], [0, 0])
    assert encoding == Encoding([1, 2], ["a", "b"], [(0, 1), (1, 2)], [0, 0], [1, 1], [0, 0])
    assert "tokens=['a', 'b']" in repr(encoding) and len(encoding) == 2


# --- the command line -------------------------------------------------------------------------------------


def test_cli_train_encode_json(cli, tmp_path, shared_data):
    out = tmp_path / "tok.json"
    source = shared_data / "tinyshakespeare" / "input.txt"
    code, stdout, _ = cli("tokenizer", "train", "--kind", "bpe", "--vocab-size", "600", "--out", out, source)
    assert code == 0 and out.is_file() and (tmp_path / "tok.vocab.txt").is_file()
    code, stdout, _ = cli("tokenizer", "encode", "--tokenizer", out, "--json", "Frog on a log.")
    record = json.loads(stdout)
    assert code == 0 and set(record) >= {"ids", "tokens", "offsets"}
    tok = load_tokenizer(out)
    assert record["ids"] == tok.encode("Frog on a log.").ids
    assert [tuple(o) for o in record["offsets"]] == tok.encode("Frog on a log.").offsets
    code, stdout, _ = cli("tokenizer", "encode", "--tokenizer", out, "Frog on a log.")
    assert code == 0 and "bpe tokenizer, 600 ids" in stdout and "13:14 '.'" in stdout


@pytest.mark.parametrize("kind", ["char", "word", "wordpiece"])
def test_cli_trains_every_kind(cli, tmp_path, kind):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the frog sat on the log\nthe log sat on the frog\n" * 20, encoding="utf-8")
    out = tmp_path / f"{kind}.json"
    code, _, err = cli("tokenizer", "train", "--kind", kind, "--vocab-size", "60", "--out", out, corpus)
    assert code == 0, err
    assert load_tokenizer(out).kind == kind


def test_cli_char_vocabulary_holds_every_character_newline_included(cli, tmp_path, shared_data):
    """Trained on a file, a char tokenizer knows every character the file's shards (`unit: file`) hold:
    tinyshakespeare's 65, newline included, as nanoGPT's vocabulary."""
    source = shared_data / "tinyshakespeare" / "input.txt"
    out = tmp_path / "char.json"
    code, _, err = cli("tokenizer", "train", "--kind", "char", "--vocab-size", "128", "--out", out, source)
    assert code == 0, err
    tok = load_tokenizer(out)
    specials = {t.content for t in tok.added_tokens}
    characters = set(tok.get_vocab()) - specials
    assert characters == set(source.read_text(encoding="utf-8")) and len(characters) == 65
    code, stdout, _ = cli("tokenizer", "encode", "--tokenizer", out, "--json", "a\nb")
    assert code == 0 and json.loads(stdout)["tokens"] == ["a", "\n", "b"]


@pytest.mark.parametrize("cls", KINDS, ids=lambda c: c.kind)
def test_training_on_chunks_of_a_file_equals_training_on_the_whole_file(cls, tmp_path, shakespeare):
    """`unit="chunk"` (what `tokenizer train` and `pretrain` read) cuts files where no tokenizer's
    pre-tokenizer joins across: the same tokenizer as one trained on the file as one text."""
    import inspect
    import textwrap

    from lmforge.text import iter_chunks, read_text

    code = inspect.getsource(textwrap)  # indented lines, blank lines, trailing newlines
    path = tmp_path / "mixed.txt"
    path.write_text("\n".join(shakespeare[:1500]) + "\n\n" + code, encoding="utf-8")
    options = {"vocab_size": 700} if cls is not CharTokenizer else {"vocab_size": 128}
    pieces = list(iter_chunks(path, chunk_chars=2000))
    assert len(pieces) > 20
    assert cls.train(pieces, **options).to_str() == cls.train([read_text(path)], **options).to_str()


def test_cli_compare_prints_the_table(cli, tmp_path, shared_data):
    source = tmp_path / "small.txt"
    lines = (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").splitlines()[:3000]
    source.write_text("\n".join(lines), encoding="utf-8")
    code, stdout, _ = cli("tokenizer", "compare", "--vocab-size", "500", source)
    assert code == 0
    table = stdout.splitlines()
    header = next(line for line in table if line.startswith("kind"))
    for column in (
        "vocab",
        "tokens/word",
        "bytes/token",
        "held-out tokens",
        "[UNK] rate",
        "train s",
        "encode MB/s",
    ):
        assert column in header
    rows = {
        line.split()[0]: line.split()
        for line in table
        if line.split() and line.split()[0] in ("char", "word", "bpe", "wordpiece")
    }
    assert set(rows) == {"char", "word", "bpe", "wordpiece"}
    held_out = {kind: int(row[4].replace(",", "")) for kind, row in rows.items()}
    assert held_out["char"] > held_out["bpe"] > held_out["word"]


def test_cli_bad_inputs_are_one_line_errors_and_write_nothing(cli_process, tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"good line\ncaf\xe9 au lait\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    out = tmp_path / "out.json"
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{oops", encoding="utf-8")
    cases = [
        (
            ["train", "--kind", "bpe", "--vocab-size", "300", "--out", out, latin],
            "byte 13 (line 2) is not valid UTF-8",
        ),
        (["train", "--kind", "wordpiece", "--vocab-size", "300", "--out", out, empty], "empty corpus"),
        (["train", "--kind", "bpe", "--vocab-size", "100", "--out", out, tmp_path / "missing.txt"], "257"),
        (["train", "--kind", "sentencepiece", "--vocab-size", "300", "--out", out, latin], "invalid choice"),
        (
            ["train", "--kind", "bpe", "--vocab-size", "300", "--out", out, tmp_path / "missing.txt"],
            "missing.txt",
        ),
        (["encode", "--tokenizer", tmp_path / "none.json", "hi"], "no such tokenizer file"),
        (["encode", "--tokenizer", bad_json, "hi"], "not valid JSON"),
    ]
    for args, message in cases:
        result = cli_process("tokenizer", *args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert message in lines[-1] and "Traceback" not in result.stderr, (args, result.stderr)
        assert not out.exists() and not list(Path(tmp_path).glob(".out.json.*"))


def test_quickstart_tokenizer_stage_on_a_small_sample():
    from lmforge.recipes.quickstart import tokenizer_stage

    table = tokenizer_stage(vocab_size=600, max_bytes=150_000)
    assert table.splitlines()[0].startswith("kind") and len(table.splitlines()) == 5


def test_replacing_a_stage_after_construction_takes_effect(trained):
    tok = tokenizer_from_str(trained["bpe"].to_str())
    assert tok.encode(" frog").offsets == [(1, 5)] or tok.encode(" frog").offsets[0][0] == 1
    tok.post_processor = None  # no ByteLevel trimming: offsets now include the leading space
    assert tok.encode(" frog").offsets[0][0] == 0


def test_a_large_batch_shows_progress_and_encodes_the_same(trained, capsys):
    from lmforge.tokenizers.base import PROGRESS_MIN_TEXTS

    tok = trained["wordpiece"]
    texts = [f"line {i} of the frog's log" for i in range(PROGRESS_MIN_TEXTS)]
    plain = tok.encode_batch(texts[:100], progress="tokenizing")
    assert "tokenizing" not in capsys.readouterr().err  # a small batch: no bar
    shown = tok.encode_batch(texts, progress="tokenizing")
    assert "tokenizing" in capsys.readouterr().err
    assert [e.ids for e in shown[:100]] == [e.ids for e in plain] and len(shown) == len(texts)


def test_encode_batch_on_two_processes_with_truncation_and_pairs(trained, shakespeare):
    tok = tokenizer_from_str(trained["wordpiece"].to_str())
    pairs = [(a[:30], b[:30]) for a, b in zip(shakespeare[:2000], shakespeare[2000:4000], strict=True)]
    tok.enable_truncation(12, stride=2)
    tok.enable_padding()
    assert tok.encode_batch(pairs, num_workers=2) == tok.encode_batch(pairs)


@pytest.mark.parametrize("kind", ["char", "word", "bpe", "wordpiece"])
def test_tokenizers_pickle_for_worker_processes(trained, kind):
    import pickle

    tok = trained[kind]
    again = pickle.loads(pickle.dumps(tok))
    text = "Héllo, frog on a log! 戦場"
    assert again.encode(text) == tok.encode(text)
