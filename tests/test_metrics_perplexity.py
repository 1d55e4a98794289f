"""Perplexity, bits per byte and sliding-window NLL, checked against independent computations and
against the Hugging Face perplexity guide's loop run on a tiny random `transformers` GPT-2."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lmforge.metrics.perplexity import bits_per_byte, perplexity, sliding_window_nll
from train_helpers import one_torch_thread  # noqa: F401


def test_perplexity_and_bits_per_byte_from_sums():
    torch.manual_seed(0)
    logits, targets = torch.randn(50, 7), torch.randint(0, 7, (50,))
    nll_sum = nn.functional.cross_entropy(logits, targets, reduction="sum").item()
    mean_probability = torch.log_softmax(logits, -1)[torch.arange(50), targets]
    assert perplexity(nll_sum, 50) == pytest.approx(torch.exp(-mean_probability.mean()).item(), rel=1e-6)
    assert perplexity(50 * math.log(7), 50) == pytest.approx(7.0)  # uniform over 7: perplexity 7
    # 3 tokens for 12 bytes at 2 bits each: 3 * 2 ln 2 nats spread over 12 bytes -> 0.5 bits per byte
    assert bits_per_byte(3 * 2 * math.log(2), 12) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        perplexity(1.0, 0)


class Bigram(nn.Module):
    """logits[t] depend on token t only: the NLL cannot depend on the window, a check on the bookkeeping."""

    def __init__(self, vocab=20):
        super().__init__()
        self.table = nn.Embedding(vocab, vocab)

    def forward(self, ids):
        return self.table(ids)


@pytest.mark.parametrize(("context", "stride"), [(8, 3), (8, 1), (8, 7), (64, 64), (2, 1)])
def test_overlapping_windows_score_every_token_once(context, stride):
    torch.manual_seed(0)
    model = Bigram()
    ids = torch.randint(0, 20, (37,))
    exact = nn.functional.cross_entropy(model(ids[:-1]), ids[1:], reduction="sum").item()
    result = sliding_window_nll(model, ids, context=context, stride=stride)
    assert result.tokens == 36
    assert result.nll_sum == pytest.approx(exact, rel=1e-5)


def test_disjoint_chunks_skip_each_chunks_first_token():
    torch.manual_seed(0)
    model = Bigram()
    ids = torch.randint(0, 20, (37,))
    per_token = nn.functional.cross_entropy(model(ids[:-1]), ids[1:], reduction="none")  # token t+1's NLL
    scored = [t for t in range(1, 37) if t % 8 != 0]  # tokens 8, 16, 24, 32 start a chunk: no history
    result = sliding_window_nll(model, ids, context=8)
    assert result.tokens == len(scored) == 32 and result.windows == 5
    assert result.nll_sum == pytest.approx(per_token[[t - 1 for t in scored]].sum().item(), rel=1e-5)


def _guide_loop(model, input_ids, max_length, stride):
    """The loop of https://huggingface.co/docs/transformers/perplexity, scored by transformers' own loss.

    One change: the guide weights each window's mean loss by `num_valid - batch_size`, which is exact only
    when the window's first label is valid (the shift inside the model drops it). In overlapping windows
    that label is already -100, so the guide undercounts by one token per window; we count the labels
    the model actually scores.
    """
    seq_len = input_ids.size(1)
    nll_sum, n_tokens, prev_end_loc = 0.0, 0, 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc
        window = input_ids[:, begin_loc:end_loc]
        target_ids = window.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(window, labels=target_ids).loss
        num_loss_tokens = (target_ids[:, 1:] != -100).sum().item()  # labels are shifted inside the model
        nll_sum += loss.item() * num_loss_tokens
        n_tokens += num_loss_tokens
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    return nll_sum, n_tokens


@pytest.mark.parametrize(("context", "stride"), [(32, 32), (32, 5)])
def test_matches_the_transformers_perplexity_guide(context, stride):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=97, n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    ids = torch.randint(0, 97, (1, 150))
    reference_sum, reference_tokens = _guide_loop(model, ids, context, stride)
    ours = sliding_window_nll(model, ids[0], context=context, stride=stride)
    assert ours.tokens == reference_tokens == (149 if stride < context else 145)  # 145: 4 chunk starts
    assert ours.nll_sum == pytest.approx(reference_sum, rel=1e-5)
    assert ours.perplexity == pytest.approx(math.exp(reference_sum / reference_tokens), rel=1e-5)
    if stride < context:  # more history per token: a trained model would do better; here they just differ
        chunked = sliding_window_nll(model, ids[0], context=context, stride=context)
        assert chunked.windows < ours.windows
