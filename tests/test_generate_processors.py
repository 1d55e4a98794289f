"""The logits processors transform the same logits exactly as Hugging Face's do."""

from __future__ import annotations

import pytest
import torch

from lmforge.generate import (
    GenerationConfig,
    IncrementalDecoder,
    min_p_filter,
    no_repeat_ngram,
    process_logits,
    repetition_penalty,
    top_k_filter,
    top_p_filter,
)

hf = pytest.importorskip("transformers.generation.logits_process")


def make_inputs(seed: int, batch: int = 4, vocab: int = 50, length: int = 12):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, vocab, generator=generator) * 3
    # a few exact ties and repeated ids make the edge cases show
    scores[0, :5] = scores[0, 0]
    input_ids = torch.randint(0, 8, (batch, length), generator=generator)
    return scores, input_ids


def same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert torch.equal(torch.isinf(a), torch.isinf(b))
    finite = ~torch.isinf(a)
    assert torch.equal(a[finite], b[finite])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("penalty", [0.5, 1.3, 2.0])
def test_repetition_penalty(seed, penalty):
    scores, ids = make_inputs(seed)
    same(
        repetition_penalty(scores, ids, penalty),
        hf.RepetitionPenaltyLogitsProcessor(penalty)(ids, scores.clone()),
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("size", [1, 2, 3, 13])
def test_no_repeat_ngram(seed, size):
    scores, ids = make_inputs(seed)
    same(no_repeat_ngram(scores, ids, size), hf.NoRepeatNGramLogitsProcessor(size)(ids, scores.clone()))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 3, 10, 50, 80])
def test_top_k(seed, k):
    scores, ids = make_inputs(seed)
    same(top_k_filter(scores, k), hf.TopKLogitsWarper(k)(ids, scores.clone()))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("p", [0.01, 0.3, 0.9, 0.999])
def test_top_p(seed, p):
    scores, ids = make_inputs(seed)
    same(top_p_filter(scores, p), hf.TopPLogitsWarper(p)(ids, scores.clone()))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("min_p", [0.01, 0.1, 0.5, 1.0])
def test_min_p(seed, min_p):
    scores, ids = make_inputs(seed)
    same(min_p_filter(scores, min_p), hf.MinPLogitsWarper(min_p)(ids, scores.clone()))


@pytest.mark.parametrize("seed", range(3))
def test_whole_chain_matches_hf_order(seed):
    scores, ids = make_inputs(seed)
    config = GenerationConfig(
        temperature=0.7, top_k=20, top_p=0.9, min_p=0.05, repetition_penalty=1.2, no_repeat_ngram_size=2
    )
    chain = hf.LogitsProcessorList(
        [
            hf.RepetitionPenaltyLogitsProcessor(1.2),
            hf.NoRepeatNGramLogitsProcessor(2),
            hf.TemperatureLogitsWarper(0.7),
            hf.TopKLogitsWarper(20),
            hf.TopPLogitsWarper(0.9),
            hf.MinPLogitsWarper(0.05),
        ]
    )
    same(process_logits(scores, ids, config), chain(ids, scores.clone()))


def test_greedy_config_skips_warpers():
    scores, ids = make_inputs(0)
    assert torch.equal(process_logits(scores, ids, GenerationConfig(temperature=0, top_k=1)), scores)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"num_beams": 0}, "num_beams"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
    ],
)
def test_config_checks(changes, message):
    with pytest.raises(ValueError, match=message):
        GenerationConfig(**changes)


def test_config_saves_and_loads(tmp_path):
    config = GenerationConfig(max_new_tokens=7, temperature=0.5, eos_token_id=3, stop_strings="\n\n")
    assert config.eos_token_id == [3] and config.stop_strings == ["\n\n"]
    config.save(tmp_path)
    assert GenerationConfig.load(tmp_path) == config
    assert GenerationConfig.load(tmp_path / "nowhere") == GenerationConfig()
    assert config.replace(temperature=None, top_k=5).temperature == 0.5


class ByteTokenizer:
    """Bytes as tokens: the worst case for streaming, every multi-byte character spans several tokens."""

    def decode(self, ids, skip_special_tokens=True):
        return bytes(ids).decode("utf-8", errors="replace")


def test_incremental_decoder_waits_for_whole_characters():
    text = "héllo wörld — 你好 🙂!"
    ids = list(text.encode())
    decoder = IncrementalDecoder(ByteTokenizer())
    pieces = [decoder.push([i]) for i in ids] + [decoder.flush()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in piece for piece in pieces)
    # the four bytes of the emoji came out as one piece
    assert "🙂" in pieces
