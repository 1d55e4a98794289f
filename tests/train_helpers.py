"""Small models and data shared by the training tests (and the DDP worker script they launch)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import nn

from lmforge.data.shards import ByteEncoder, TokenShards, prepare_shards

SHAKESPEARE_BYTES = 200_000  # enough real text for a tiny model to learn from in seconds


class TinyOutput(NamedTuple):
    """A NamedTuple: a pytree, so FSDP2 can hook the tensors inside (a plain class would hide them)."""

    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...]


class NGramMLP(nn.Module):
    """Predicts token t+1 from tokens t-context+1..t: embeddings of the window -> MLP -> logits.

    Causal by construction (only past tokens enter); dropout makes the RNG part of the state to restore.
    """

    def __init__(
        self, vocab_size: int = 257, dim: int = 32, context: int = 3, hidden: int = 128, dropout: float = 0.1
    ):
        super().__init__()
        self.context = context
        self.embedding = nn.Embedding(vocab_size, dim)
        self.mlp = nn.Sequential(
            nn.Linear(context * dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, vocab_size)
        )

    def forward(self, input_ids: torch.Tensor) -> TinyOutput:
        x = self.embedding(input_ids)  # (B, T, C)
        shifted = [x] + [nn.functional.pad(x, (0, 0, k, 0))[:, : x.shape[1]] for k in range(1, self.context)]
        logits = self.mlp(torch.cat(shifted, dim=-1))  # (B, T, V)
        return TinyOutput(logits, (x,))


def shakespeare_shards(
    shared_data: Path, out: Path, limit: int = SHAKESPEARE_BYTES
) -> tuple[TokenShards, TokenShards]:
    """The first `limit` bytes of tinyshakespeare as byte-level shards (90% train, 10% val)."""
    text = (shared_data / "tinyshakespeare" / "input.txt").read_bytes()[:limit]
    out.mkdir(parents=True, exist_ok=True)
    source = out / "shakespeare.txt"
    if not source.exists():
        source.write_bytes(text)
    prepare_shards([source], out / "shards", ByteEncoder(), val_fraction=0.1)
    return TokenShards(out / "shards", "train"), TokenShards(out / "shards", "val")


def rng_array(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, n)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from a second thread, and on a busy machine OpenMP threads waiting on each
    other make a test several times slower. Import this fixture into a test module to use it there."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
