"""The LSTM baseline: shapes, a stepwise state that matches the full pass, and learning through the loop."""

from __future__ import annotations

import pytest
import torch

from lmforge.data.clm import CLMObjective
from lmforge.model.rnn import LSTMConfig, LSTMLanguageModel
from lmforge.train.loop import TrainConfig, train
from train_helpers import one_torch_thread, shakespeare_shards  # noqa: F401


def test_outputs_logits_and_hidden_states():
    config = LSTMConfig(vocab_size=50, embed_dim=16, hidden_size=24, num_layers=3)
    model = LSTMLanguageModel(config)
    out = model(torch.randint(0, 50, (2, 9)))
    assert out.logits.shape == (2, 9, 50)
    assert [tuple(h.shape) for h in out.hidden_states] == [(2, 9, 16)] + [(2, 9, 24)] * 3
    assert LSTMConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="tie_weights"):
        LSTMConfig(embed_dim=8, hidden_size=16, tie_weights=True)


def test_carried_state_equals_the_full_pass():
    torch.manual_seed(0)
    model = LSTMLanguageModel(LSTMConfig(vocab_size=30, embed_dim=8, hidden_size=8, tie_weights=True)).eval()
    ids = torch.randint(0, 30, (1, 12))
    full = model(ids).logits
    state, pieces = None, []
    for t in range(12):  # one token at a time, as generation does
        out = model(ids[:, t : t + 1], state)
        state = out.state
        pieces.append(out.logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full)
    assert model.head.weight is model.embedding.weight


def test_flops_per_token_counts_the_gates_and_the_head():
    model = LSTMLanguageModel(LSTMConfig(vocab_size=100, embed_dim=10, hidden_size=20, num_layers=2))
    macs = 4 * 20 * (10 + 20) + 4 * 20 * (20 + 20) + 20 * 100
    assert model.flops_per_token() == 6 * macs


def _train_lstm(shared_data, tmp_path, *, steps, hidden, block, batch):
    train_tokens, val_tokens = shakespeare_shards(shared_data, tmp_path, limit=100_000)
    torch.manual_seed(0)
    model = LSTMLanguageModel(
        LSTMConfig(vocab_size=257, embed_dim=hidden, hidden_size=hidden, num_layers=1, dropout=0.0)
    )
    objective = CLMObjective(train_tokens, val_tokens, block_size=block)
    config = TrainConfig(
        max_steps=steps,
        batch_size=batch,
        lr=2e-2,
        warmup_steps=5,
        log_every=1,
        eval_every=0,
        eval_batches=8,
        progress=False,
        precision="fp32",  # an LSTM step is slower under bf16 autocast on CPU
    )
    return train(model, objective, config, tmp_path / "run", flops_per_token=model.flops_per_token())


def test_lstm_trains_through_the_loop(shared_data, tmp_path):
    result = _train_lstm(shared_data, tmp_path, steps=30, hidden=48, block=32, batch=8)
    # a uniform guess costs ln 257 = 5.55 nats; 30 steps learn at least the byte frequencies (3.30)
    assert result.losses[0][1] > 5.0 and result.metrics["val_loss"] < 3.6, result.metrics


@pytest.mark.slow
def test_lstm_learns_context(shared_data, tmp_path):
    result = _train_lstm(shared_data, tmp_path, steps=300, hidden=128, block=64, batch=16)
    # below 3.30 nats (byte frequencies) only by using the bytes before
    assert result.metrics["val_loss"] < 2.6, result.metrics
