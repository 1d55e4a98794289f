"""`lmforge prepare`: the verb end to end with the byte encoder, its errors, and with a real tokenizer."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from lmforge.data.shards import TokenShards


def test_prepare_bytes_end_to_end_then_reuses(cli, shared_data, tmp_path):
    source = shared_data / "wikitext-2" / "valid.txt"
    out = tmp_path / "shards"
    code, stdout, stderr = cli(
        "prepare", "--tokenizer", "bytes", "--out", out, source, "--val-fraction", "0.05"
    )
    assert code == 0, stderr
    assert stdout.startswith(f"wrote {out}") and "train" in stdout and "bytes/token" in stdout
    train, val = TokenShards(out, "train"), TokenShards(out, "val")
    assert len(train) + len(val) == source.stat().st_size + 2  # every byte plus one end-of-text per split
    assert 0.04 < len(val) / (len(train) + len(val)) < 0.06
    code, stdout, _ = cli("prepare", "--tokenizer", "bytes", "--out", out, source, "--val-fraction", "0.05")
    assert code == 0 and stdout.startswith(f"reused {out}")


def test_prepare_errors_are_one_line(cli, tmp_path):
    (tmp_path / "a.txt").write_text("hello\n")
    code, _, err = cli(
        "prepare",
        "--tokenizer",
        "bytes",
        "--out",
        tmp_path / "o",
        tmp_path / "a.txt",
        "--val-fraction",
        "1.5",
    )
    assert code == 2 and "--val-fraction must be in [0, 1)" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(
        "prepare", "--tokenizer", tmp_path / "missing.json", "--out", tmp_path / "o", tmp_path / "a.txt"
    )
    assert code == 2 and "missing.json: no such file" in err
    code, _, err = cli("prepare", "--tokenizer", "bytes", "--out", tmp_path / "o", tmp_path / "nope.txt")
    assert code == 2 and "nope.txt" in err


def test_prepare_without_the_tokenizer_package_says_so(cli, tmp_path, monkeypatch):
    (tmp_path / "tok.json").write_text("{}")
    (tmp_path / "a.txt").write_text("hello\n")
    monkeypatch.setitem(sys.modules, "lmforge.tokenizers", None)  # as if the package were absent
    code, _, err = cli(
        "prepare", "--tokenizer", tmp_path / "tok.json", "--out", tmp_path / "o", tmp_path / "a.txt"
    )
    assert code == 2 and "no lmforge.tokenizers package" in err and len(err.strip().splitlines()) == 1


def test_prepare_with_a_trained_tokenizer(cli, shared_data, tmp_path):
    tokenizers = pytest.importorskip("lmforge.tokenizers")
    reference = pytest.importorskip("tokenizers")
    # a byte-level BPE tokenizer.json written by the reference library; lmforge loads the same file
    hf = reference.Tokenizer(reference.models.BPE())
    hf.pre_tokenizer = reference.pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = reference.decoders.ByteLevel()
    trainer = reference.trainers.BpeTrainer(vocab_size=500, special_tokens=["<|endoftext|>"])
    source = shared_data / "tinyshakespeare" / "input.txt"
    hf.train([str(source)], trainer)
    hf.save(str(tmp_path / "tok.json"))
    code, _, err = cli("prepare", "--tokenizer", tmp_path / "tok.json", "--out", tmp_path / "o", source)
    assert code == 0, err
    train = TokenShards(tmp_path / "o", "train")
    eot = hf.token_to_id("<|endoftext|>")
    assert train.eot_id == eot and train[len(train) - 1] == eot and train.dtype == np.uint16
    head = source.read_text()[:200]
    expected = hf.encode(head).ids
    assert np.asarray(train[: len(expected) - 1]).tolist() == expected[:-1]  # the last may merge further
    assert tokenizers is not None
