"""Checkpoints: exact round trip without pickle, keep-last-K and best, and crashes that leave the old one."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import lmforge.train.state as state_module
from lmforge.train.optim import LRSchedule, build_optimizer, parameter_groups
from lmforge.train.state import (
    best_checkpoint,
    capture_rng,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)

SRC = Path(__file__).resolve().parents[1] / "src"


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(11, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 11)
        self.head.weight = self.embedding.weight  # shared storage: safetensors needs a copy

    def forward(self, ids):
        return self.head(self.norm(self.embedding(ids)))


def _trained() -> tuple[Tied, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = Tied()
    optimizer = build_optimizer(model, lr=1e-2)
    for _ in range(2):
        model(torch.tensor([[1, 2, 3]])).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, optimizer


def test_round_trip_is_exact_and_never_pickles(tmp_path):
    model, optimizer = _trained()
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),  # int keys, tuples (betas), scalar tensors (step)
        "rng": capture_rng(),  # tuples of ints (python), numpy arrays, byte tensors
        "data": {"next_micro_batch": 42},
        "metrics": {"val_loss": 1.5},
    }
    expected = (random.random(), np.random.rand(), torch.rand(1))  # the draws right after the capture
    path = save_checkpoint(tmp_path, 7, state)
    assert sorted(p.name for p in path.iterdir()) == ["state.json", "tensors.safetensors"]
    loaded = load_checkpoint(path)
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded["model"][key], tensor), key
    assert loaded["optimizer"]["param_groups"] == optimizer.state_dict()["param_groups"]
    for pid, entries in optimizer.state_dict()["state"].items():
        for name, value in entries.items():
            assert torch.equal(loaded["optimizer"]["state"][pid][name], value)
    fresh_model = Tied()
    fresh_model.load_state_dict(loaded["model"])
    fresh_optimizer = build_optimizer(fresh_model, lr=1e-2)
    fresh_optimizer.load_state_dict(loaded["optimizer"])
    restore_rng(loaded["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
    assert loaded["data"] == {"next_micro_batch": 42}


def test_keeps_last_k_and_the_best(tmp_path):
    losses = {1: 3.0, 2: 1.0, 3: 2.0, 4: 2.5, 5: 2.2}
    for step, loss in losses.items():
        save_checkpoint(tmp_path, step, {"step": step, "w": torch.ones(2) * step}, keep_last=2, metric=loss)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000002", "step-00000004", "step-00000005"]
    assert best_checkpoint(tmp_path).name == "step-00000002"
    assert latest_checkpoint(tmp_path).name == "step-00000005"
    assert load_checkpoint(best_checkpoint(tmp_path))["step"] == 2


def test_exception_between_write_and_rename_keeps_the_previous(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, 1, {"step": 1, "w": torch.arange(4.0)})

    def crash(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(state_module.os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        save_checkpoint(tmp_path, 2, {"step": 2, "w": torch.zeros(4)})
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path).name == "step-00000001"
    assert torch.equal(load_checkpoint(latest_checkpoint(tmp_path))["w"], torch.arange(4.0))
    assert list(tmp_path.glob(".tmp-*"))  # the half-done save is left aside ...
    save_checkpoint(tmp_path, 3, {"step": 3, "w": torch.ones(4)})
    assert not list(tmp_path.glob(".tmp-*"))  # ... and swept by the next one


KILLED_DURING_SAVE = """
import os, signal, torch
import lmforge.train.state as state
root = {root!r}
state.save_checkpoint(root, 1, {{"step": 1, "w": torch.arange(1000.0)}})
real = state.save_file
def save_then_die(tensors, path, metadata=None):
    real(tensors, path, metadata=metadata)
    with open(path, "r+b") as handle:   # half-written: keep only the first bytes, then die
        handle.truncate(100)
    os.kill(os.getpid(), signal.SIGKILL)
state.save_file = save_then_die
state.save_checkpoint(root, 2, {{"step": 2, "w": torch.zeros(1000)}})
"""


def test_process_killed_during_save_leaves_the_previous_loadable(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(SRC))
    done = subprocess.run(
        [sys.executable, "-c", KILLED_DURING_SAVE.format(root=str(tmp_path))], env=env, capture_output=True
    )
    assert done.returncode == -9  # SIGKILL, in the middle of the second save
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000001"]
    assert torch.equal(load_checkpoint(latest_checkpoint(tmp_path))["w"], torch.arange(1000.0))


def test_load_rejects_a_directory_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "state.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="not a checkpoint"):
        load_checkpoint(tmp_path)


def test_parameter_groups_decay_matrices_only_and_count_tied_once():
    groups = parameter_groups(Tied(), weight_decay=0.1)
    decayed, plain = groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert [tuple(p.shape) for p in decayed["params"]] == [(11, 4)]  # the tied matrix, once
    assert sorted(tuple(p.shape) for p in plain["params"]) == [
        (4,),
        (4,),
        (11,),
    ]  # norm weight/bias, head bias


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("cosine", [0.25, 0.5, 0.75, 1.0, 1.0, 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 0.25)), 0.55, 0.1, 0.1]),
        ("linear", [0.25, 0.5, 0.75, 1.0, 1.0, 0.1 + 0.9 * 0.75, 0.55, 0.1, 0.1]),
        ("constant", [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
    ],
)
def test_schedule_warms_up_then_decays_to_the_floor(kind, expected):
    schedule = LRSchedule(warmup_steps=4, total_steps=12, kind=kind, min_lr_ratio=0.1)
    steps = [0, 1, 2, 3, 4, 6, 8, 12, 20]
    assert [schedule.factor(s) for s in steps] == pytest.approx(expected)
    model = Tied()
    optimizer = build_optimizer(model, lr=2e-3)
    assert schedule.apply(optimizer, 8, 2e-3) == pytest.approx(2e-3 * expected[6])
    assert all(g["lr"] == pytest.approx(2e-3 * expected[6]) for g in optimizer.param_groups)


def test_logger_reports_mfu_and_a_resumed_run_rewrites_later_records(tmp_path):
    from lmforge.train.logging import RunLogger, read_metrics

    logger = RunLogger(
        tmp_path, total_steps=10, flops_per_token=6e3, peak_flops_per_s=1e9, progress=False, tensorboard=False
    )
    logger.train_step(5, loss=2.0, lr=1e-3, tokens=1000, seconds=0.5)
    logger.eval(5, {"val_loss": 2.1})
    logger.train_step(10, loss=1.5, lr=1e-4, tokens=1000, seconds=0.5)
    assert logger.close() == tmp_path / "loss.png"
    first = read_metrics(tmp_path / "metrics.jsonl")
    assert [(r["step"], r["split"]) for r in first] == [(5, "train"), (5, "val"), (10, "train")]
    assert first[0]["tokens_per_s"] == 2000 and first[0]["mfu"] == pytest.approx(6e3 * 2000 / 1e9)
    RunLogger(tmp_path, total_steps=10, start_step=5, progress=False, tensorboard=False).close()
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [5, 5]  # step 10 is redone
