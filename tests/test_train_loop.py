"""The training loop on real text: the loss falls, resume is bit-exact, accumulation and budgets work."""

from __future__ import annotations

import json

import pytest
import torch

from lmforge.data.clm import CLMObjective
from lmforge.errors import ConfigError
from lmforge.train.loop import TrainConfig, train
from lmforge.train.state import latest_checkpoint, load_checkpoint
from train_helpers import NGramMLP, one_torch_thread, shakespeare_shards  # noqa: F401

# no bar, no TensorBoard, and fp32 whatever the machine: `auto` would take bf16 where it is faster
QUIET = dict(progress=False, tensorboard=False, precision="fp32")


@pytest.fixture(scope="module")
def shards(shared_data, tmp_path_factory):
    return shakespeare_shards(shared_data, tmp_path_factory.mktemp("shakespeare"))


def test_loss_falls_and_run_directory_is_complete(shards, tmp_path):
    train_tokens, val_tokens = shards
    torch.manual_seed(0)
    model = NGramMLP(dropout=0.0)
    objective = CLMObjective(train_tokens, val_tokens, block_size=64)
    config = TrainConfig(
        max_steps=50, batch_size=16, lr=1e-2, warmup_steps=5, eval_every=25, eval_batches=8, log_every=1
    )
    result = train(model, objective, config, tmp_path)
    # a uniform guess over 257 byte ids costs ln 257 = 5.55 nats; the best guess that ignores context
    # (byte frequencies) 3.30 nats on this text. Below 2.9 the model uses the preceding bytes.
    assert result.losses[0][1] > 5.0  # step 1: about ln 257
    assert result.metrics["val_loss"] < 2.9, result.metrics
    assert result.metrics["val_perplexity"] == pytest.approx(
        torch.tensor(result.metrics["val_loss"]).exp().item()
    )
    assert result.metrics["val_bpb"] == pytest.approx(
        result.metrics["val_loss"] / 0.6931471805599453, rel=1e-3
    )
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["split"] == "train"]
    val_records = [r for r in records if r["split"] == "val"]
    assert [r["step"] for r in train_records] == list(range(1, 51))
    assert [r["step"] for r in val_records] == [25, 50]
    assert all(r["tokens_per_s"] > 0 and r["lr"] > 0 for r in train_records)
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if _has_tensorboard():
        assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert latest_checkpoint(tmp_path / "checkpoints").name == "step-00000050"


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _run(shards, out, *, steps, **overrides):
    train_tokens, val_tokens = shards
    torch.manual_seed(1)
    model = NGramMLP(dropout=0.1)
    objective = CLMObjective(train_tokens, val_tokens, block_size=32, seed=7)
    options = dict(
        max_steps=steps,
        batch_size=8,
        lr=3e-3,
        warmup_steps=4,
        eval_every=5,
        eval_batches=2,
        log_every=1,
        **QUIET,
    )
    options.update(overrides)
    return train(model, objective, TrainConfig(**options), out)


def test_resume_is_bit_exact(shards, tmp_path):
    straight = _run(shards, tmp_path / "straight", steps=16)
    first = _run(shards, tmp_path / "resumed", steps=16, stop_after=8)
    assert first.stopped_by == "stop_after" and first.steps == 8
    second = _run(shards, tmp_path / "resumed", steps=16)
    assert second.resumed_from == 8
    assert first.losses + second.losses == straight.losses  # exact float equality, step by step
    for (name, a), b in zip(
        straight.model.state_dict().items(), second.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_resume_refuses_a_different_batch_geometry(shards, tmp_path):
    _run(shards, tmp_path, steps=4, stop_after=2)
    with pytest.raises(ConfigError, match="same batch_size"):
        _run(shards, tmp_path, steps=4, batch_size=4)


def test_gradient_accumulation_matches_the_large_batch(shards, tmp_path):
    big = _run_no_dropout(shards, tmp_path / "big", batch_size=8, grad_accum=1)
    accumulated = _run_no_dropout(shards, tmp_path / "accum", batch_size=4, grad_accum=2)
    for (step_a, loss_a), (step_b, loss_b) in zip(big.losses, accumulated.losses, strict=True):
        assert step_a == step_b and loss_a == pytest.approx(loss_b, rel=1e-5, abs=1e-6)


def _run_no_dropout(shards, out, **overrides):
    train_tokens, val_tokens = shards
    torch.manual_seed(1)
    model = NGramMLP(dropout=0.0)
    objective = CLMObjective(train_tokens, val_tokens, block_size=32, seed=7)
    config = TrainConfig(
        max_steps=6, lr=3e-3, warmup_steps=2, eval_every=0, eval_batches=2, log_every=1, **QUIET, **overrides
    )
    return train(model, objective, config, out)


def test_bf16_autocast_on_cpu_trains(shards, tmp_path):
    result = _run(shards, tmp_path, steps=8, precision="bf16", lr=1e-2)
    assert result.losses[-1][1] < result.losses[0][1]
    assert all(p.dtype == torch.float32 for p in result.model.parameters())  # master weights stay fp32


def test_fp16_without_cuda_is_a_config_error(shards, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: fp16 is valid here")
    with pytest.raises(ConfigError, match="fp16 needs CUDA"):
        _run(shards, tmp_path, steps=2, precision="fp16")


def test_time_budget_stops_evaluates_and_saves(shards, tmp_path):
    result = _run(shards, tmp_path, steps=10_000, max_minutes=1e-4)
    assert result.stopped_by == "time" and 1 <= result.steps < 10_000
    assert "val_loss" in result.metrics
    assert load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"))["step"] == result.steps


def test_time_budget_counts_over_resumed_sessions(shards, tmp_path):
    """max_minutes is the run's budget: the checkpoint records the training time spent, and a resumed
    session gets only what is left; raising max_minutes extends the run."""
    first = _run(shards, tmp_path, steps=40, stop_after=10)
    spent = load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"))["elapsed_s"]
    assert first.steps == 10 and 0 < spent < first.seconds + 1e-6

    budget_spent = _run(shards, tmp_path, steps=40, max_minutes=spent / 60 / 2)
    assert budget_spent.stopped_by == "time" and budget_spent.steps == 10  # not one step more
    assert "val_loss" in budget_spent.metrics

    extended = _run(shards, tmp_path, steps=40, max_minutes=60)
    assert extended.stopped_by == "steps" and extended.resumed_from == 10 and extended.steps == 40
    assert load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"))["elapsed_s"] > spent


def _last_lr(out) -> float:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["split"] == "train"][-1]["lr"]


def test_schedule_that_follows_time_decays_within_the_budget(shards, tmp_path):
    """A schedule planned for far more steps than fit: following the pace, it still ends decayed."""
    budget = dict(steps=1_000_000, max_minutes=0.04, eval_every=0, warmup_steps=2, lr=3e-3, min_lr_ratio=0.1)
    followed = _run(shards, tmp_path / "follows", schedule_follows_time=True, **budget)
    fixed = _run(shards, tmp_path / "fixed", **budget)
    assert 30 < followed.steps < 1_000_000 and 30 < fixed.steps < 1_000_000
    assert _last_lr(tmp_path / "follows") < 0.5 * 3e-3  # cosine near its floor of 0.1 x peak
    assert _last_lr(tmp_path / "fixed") > 0.99 * 3e-3  # cut off at the start of its long decay


@pytest.mark.slow
def test_compiled_model_saves_unwrapped_names(shards, tmp_path):
    result = _run(shards, tmp_path, steps=3, compile=True)
    state = load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"))
    assert set(state["model"]) == set(NGramMLP().state_dict())
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in state["model"])
    assert result.losses[-1][1] > 0


def test_train_config_loads_from_yaml_with_overrides(tmp_path):
    from lmforge.config import load_config

    (tmp_path / "run.yaml").write_text("max_steps: 500\nlr: 3e-4\nprecision: bf16\n")
    config = load_config(TrainConfig, tmp_path / "run.yaml", ["--grad_accum=4", "--max_minutes=2.5"])
    assert (config.max_steps, config.lr, config.precision, config.grad_accum, config.max_minutes) == (
        500,
        3e-4,
        "bf16",
        4,
        2.5,
    )
    with pytest.raises(ConfigError, match="precision"):
        load_config(TrainConfig, None, ["--precision=fp8"])
    with pytest.raises(ConfigError, match="'batch_size' must be at least 1, got 0"):
        load_config(TrainConfig, None, ["--batch_size=0"])


class BiGRU(torch.nn.Module):
    """A tiny bidirectional encoder: each position sees both sides, as masked LM needs."""

    def __init__(self, vocab_size: int = 258, dim: int = 48):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab_size, dim)
        self.gru = torch.nn.GRU(dim, dim, batch_first=True, bidirectional=True)
        self.head = torch.nn.Linear(2 * dim, vocab_size)

    def forward(self, input_ids):
        states, _ = self.gru(self.embedding(input_ids))  # (B, T, 2C)
        return self.head(states)  # (B, T, V): a bare tensor is accepted as the logits too


def test_masked_lm_trains_through_the_same_loop(shards, tmp_path):
    from lmforge.data.mlm import MLMObjective

    train_tokens, val_tokens = shards
    torch.manual_seed(0)
    # bytes 0-255, end-of-text 256, [MASK] 257
    objective = MLMObjective(
        train_tokens, val_tokens, block_size=48, mask_id=257, vocab_size=258, special_ids=[256], seed=1
    )
    config = TrainConfig(
        max_steps=60, batch_size=16, lr=1e-2, warmup_steps=5, eval_every=0, eval_batches=8, **QUIET
    )
    result = train(BiGRU(), objective, config, tmp_path)
    # byte frequencies alone give 3.30 nats and ~15% accuracy (the space); both sides of the mask help
    assert result.metrics["val_loss"] < 3.1, result.metrics
    assert result.metrics["val_masked_accuracy"] > 0.2, result.metrics
