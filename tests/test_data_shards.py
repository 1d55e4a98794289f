"""Token shards: exact round trip, end-of-text between documents, splits, dtypes, reuse, processes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from lmforge.data.shards import ByteEncoder, TokenShards, prepare_shards, token_dtype
from lmforge.errors import CorpusError

EOT = ByteEncoder.eot_id


def _tokens(directory, split):
    return np.asarray(TokenShards(directory, split)[:])


def test_whole_file_round_trips_with_the_val_cut_at_a_line_end(shared_data, tmp_path):
    source = shared_data / "tinyshakespeare" / "input.txt"
    meta = prepare_shards([source], tmp_path, ByteEncoder(), val_fraction=0.1)
    train, val = _tokens(tmp_path, "train"), _tokens(tmp_path, "val")
    assert train.dtype == np.uint16 and train[-1] == EOT and val[-1] == EOT
    text = source.read_bytes()
    # the two splits are the file, cut once near 90% just after a newline, each ending in end-of-text
    assert bytes(train[:-1].astype(np.uint8)) + bytes(val[:-1].astype(np.uint8)) == text
    assert bytes(train[-2:-1].astype(np.uint8)) == b"\n"
    assert abs(len(train) - 1 - 0.9 * len(text)) < 200
    assert meta.bytes("train") + meta.bytes("val") == len(text)
    assert meta.tokens("train") == len(train) and meta.data["tokenizer"] == "bytes-v1"
    assert meta.data["splits"]["train"]["documents"] == 1


def test_documents_are_separated_by_end_of_text_and_val_files_are_used(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "héllo"}\n{"text": "wörld"}\n', encoding="utf-8")
    (tmp_path / "v.txt").write_text("first line\nsecond\n", encoding="utf-8")
    prepare_shards(
        [tmp_path / "a.jsonl"], tmp_path / "out", ByteEncoder(), val_files=[tmp_path / "v.txt"], unit="line"
    )
    train, val = _tokens(tmp_path / "out", "train"), _tokens(tmp_path / "out", "val")
    expected = list("héllo".encode()) + [EOT] + list("wörld".encode()) + [EOT]
    assert train.tolist() == expected
    assert val.tolist() == list(b"first line") + [EOT] + list(b"second") + [EOT]


class WideEncoder(ByteEncoder):
    """Bytes shifted past 65,536: ids that need uint32."""

    vocab_size = 70_000
    eot_id = 69_999
    fingerprint = "wide-v1"

    def encode_batch(self, texts):
        return [[66_000 + b for b in text.encode()] for text in texts]


def test_dtype_is_uint16_when_the_vocabulary_fits_else_uint32(tmp_path):
    assert token_dtype(65_536) == np.uint16 and token_dtype(65_537) == np.uint32
    (tmp_path / "t.txt").write_text("abc\n" * 50)
    prepare_shards([tmp_path / "t.txt"], tmp_path / "out", WideEncoder(), val_fraction=0.2)
    train = _tokens(tmp_path / "out", "train")
    assert train.dtype == np.uint32 and train[0] == 66_000 + ord("a") and train[-1] == 69_999


def test_unchanged_inputs_reuse_the_shards_and_changes_rebuild(tmp_path):
    source = tmp_path / "t.txt"
    source.write_text("to be or not to be\n" * 200)
    first = prepare_shards([source], tmp_path / "out", ByteEncoder())
    stamp = os.stat(tmp_path / "out" / "train-00000.bin").st_mtime_ns
    again = prepare_shards([source], tmp_path / "out", ByteEncoder())
    assert not first.reused and again.reused
    assert os.stat(tmp_path / "out" / "train-00000.bin").st_mtime_ns == stamp
    assert prepare_shards([source], tmp_path / "out", ByteEncoder(), val_fraction=0.2).reused is False
    source.write_text("that is the question\n" * 200)
    rebuilt = prepare_shards([source], tmp_path / "out", ByteEncoder(), val_fraction=0.2)
    assert not rebuilt.reused
    assert bytes(_tokens(tmp_path / "out", "train")[:4].astype(np.uint8)) == b"that"
    (tmp_path / "out" / "val-00000.bin").write_bytes(b"")  # a damaged shard is noticed
    assert prepare_shards([source], tmp_path / "out", ByteEncoder(), val_fraction=0.2).reused is False


def test_small_shards_chunks_and_two_processes_give_the_same_stream(shared_data, tmp_path):
    source = shared_data / "wikitext-2" / "valid.txt"  # 1.1 MB, one document per line
    reference = prepare_shards([source], tmp_path / "one", ByteEncoder(), unit="line", workers=1)
    import lmforge.data.shards as shards_module

    original = shards_module.PARALLEL_MIN_BYTES
    shards_module.PARALLEL_MIN_BYTES = 0  # force the process pool on this small file
    try:
        split = prepare_shards(
            [source],
            tmp_path / "two",
            ByteEncoder(),
            unit="line",
            workers=2,
            shard_tokens=100_000,
            chunk_bytes=50_000,
        )
    finally:
        shards_module.PARALLEL_MIN_BYTES = original
    assert len(split.data["splits"]["train"]["files"]) > 5  # several shard files ...
    np.testing.assert_array_equal(_tokens(tmp_path / "one", "train"), _tokens(tmp_path / "two", "train"))
    np.testing.assert_array_equal(_tokens(tmp_path / "one", "val"), _tokens(tmp_path / "two", "val"))
    tokens = TokenShards(tmp_path / "two", "train")  # ... read as one array, slices across file ends
    whole = _tokens(tmp_path / "one", "train")
    np.testing.assert_array_equal(tokens.read(99_990, 30), whole[99_990:100_020])
    assert reference.data["splits"]["train"]["documents"] == split.data["splits"]["train"]["documents"]
    meta = json.loads((tmp_path / "two" / "meta.json").read_text())
    assert meta["splits"]["train"]["tokens"] == len(whole)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(CorpusError, match="no meta.json"):
        TokenShards(tmp_path, "train")
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(CorpusError, match="empty corpus"):
        prepare_shards([tmp_path / "e.txt"], tmp_path / "out", ByteEncoder())


class _StandIn:
    """Until lmforge.tokenizers is merged: the same interface (load_tokenizer, encode_batch -> .ids, token_to_id,
    vocab_size) over the reference `tokenizers` library, to check the adapter around it."""

    def __init__(self, hf):
        self.hf = hf
        self.vocab_size = hf.get_vocab_size()

    @classmethod
    def load(cls, path):
        import tokenizers

        return cls(tokenizers.Tokenizer.from_file(str(path)))

    def token_to_id(self, token):
        return self.hf.token_to_id(token)

    def encode_batch(self, texts, add_special_tokens=True):
        return self.hf.encode_batch(texts, add_special_tokens=add_special_tokens)


def test_tokenizer_encoder_adapts_a_tokenizer_json(tmp_path, monkeypatch):
    import pickle
    import types

    tokenizers = pytest.importorskip("tokenizers")
    from lmforge.data.shards import TokenizerEncoder
    from lmforge.errors import ConfigError

    hf = tokenizers.Tokenizer(
        tokenizers.models.WordLevel({"[UNK]": 0, "[SEP]": 1, "to": 2, "be": 3}, unk_token="[UNK]")
    )
    hf.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    hf.post_processor = tokenizers.processors.TemplateProcessing(
        single="$A [SEP]", special_tokens=[("[SEP]", 1)]
    )
    hf.save(str(tmp_path / "tok.json"))
    module = types.ModuleType("lmforge.tokenizers")
    module.load_tokenizer = _StandIn.load
    monkeypatch.setitem(__import__("sys").modules, "lmforge.tokenizers", module)
    encoder = TokenizerEncoder(tmp_path / "tok.json")
    assert (encoder.eot_token, encoder.eot_id, encoder.vocab_size) == ("[SEP]", 1, 4)
    assert encoder.encode_batch(["to be or"]) == [[2, 3, 0]]  # no [SEP] from the template: only eot adds it
    assert encoder.fingerprint.startswith("sha256:")
    assert pickle.loads(pickle.dumps(encoder)).eot_id == 1  # travels to tokenizer processes as its path
    prepare_shards(
        [_write(tmp_path / "a.txt", "to be\nbe to\n")],
        tmp_path / "out",
        encoder,
        unit="line",
        val_fraction=0.0,
    )
    assert _tokens(tmp_path / "out", "train").tolist() == [2, 3, 1, 3, 2, 1]
    with pytest.raises(ConfigError, match="no end-of-text token"):
        TokenizerEncoder(tmp_path / "tok.json", eot="<|endoftext|>")


def _write(path, text):
    path.write_text(text)
    return path


def test_tokenizing_shows_progress_over_the_text_bytes(tmp_path, capsys):
    source = tmp_path / "a.txt"
    source.write_text("a line of text\n" * 2000, encoding="utf-8")
    prepare_shards([source], tmp_path / "quiet", ByteEncoder(), unit="line", workers=1, chunk_bytes=4096)
    assert "tokenizing" not in capsys.readouterr().err
    prepare_shards(
        [source], tmp_path / "out", ByteEncoder(), unit="line", workers=1, chunk_bytes=4096, progress=True
    )
    err = capsys.readouterr().err
    assert "tokenizing" in err and "30.0k" in err  # the file's 30,000 bytes are the bar's total


def test_unknown_tokens_in_the_shards_are_reported(tmp_path):
    from lmforge.data.shards import TokenizerEncoder, unknown_tokens
    from lmforge.tokenizers import CharTokenizer

    corpus = tmp_path / "c.txt"
    corpus.write_text("ab\nba\n" * 100)
    for name, texts in (("lines", ["ab", "ba"]), ("file", [corpus.read_text()])):
        tokenizer = CharTokenizer.train(texts, vocab_size=16)
        tokenizer.save(tmp_path / f"{name}.json")
        shards = tmp_path / f"shards-{name}"
        prepare_shards([corpus], shards, TokenizerEncoder(tmp_path / f"{name}.json"), val_fraction=0.1)
        report = unknown_tokens(shards, tokenizer.token_to_id("[UNK]"))
        if name == "lines":  # trained without the newline: every newline of the training 90% is [UNK]
            total = len(TokenShards(shards, "train"))  # the characters and one end-of-text
            newlines = corpus.read_text()[: total - 1].count("\n")
            assert report is not None and report.startswith(f"{newlines} of the {total} train tokens")
        else:
            assert report is None
