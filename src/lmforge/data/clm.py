"""Causal language modelling (GPT): predict the next token. The dataset and the objective in one file.

What this file implements:
  - `PackedBlocks`: windows of `block_size + 1` tokens cut from a token stream (documents packed end to
    end, separated by end-of-text), sampled at random or in order. Sample j's window is a pure function
    of (seed, j), so the data position is one integer, resuming is exact, and a batch of 2B samples on
    one process holds exactly the samples of two ranks with B each;
  - `CLMObjective`: the loop's objective — batches of (input_ids, labels = input_ids shifted by one),
    the mean cross-entropy as the loss, and validation loss, perplexity and bits per byte as metrics.

    >>> blocks = PackedBlocks(np.arange(100), block_size=4, seed=0, sampling="sequential")
    >>> blocks.windows(0, 2)            # samples 0 and 1: tokens [0..4] and [4..8]
    array([[0, 1, 2, 3, 4],
           [4, 5, 6, 7, 8]])
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

import numpy as np

from lmforge.data.shards import TokenShards
from lmforge.errors import ConfigError

Sampling = Literal["random", "sequential"]


def splitmix64(values: np.ndarray) -> np.ndarray:
    """A counter-based hash (SplitMix64): uint64 -> well-mixed uint64, the same on every machine.

    >>> int(splitmix64(np.array([0], dtype=np.uint64))[0])
    16294208416658607535
    """
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class PackedBlocks:
    """Sample j -> `block_size + 1` consecutive tokens of `tokens` (a `TokenShards` or a 1-D array).

    sampling="random":     the window starts at hash(seed, j) mod (len - block_size): any offset, so a
                           small corpus still yields varied batches (nanoGPT's sampler, made indexable).
    sampling="sequential": sample j is the j-th non-overlapping window, wrapping around (an epoch).
    """

    def __init__(self, tokens, block_size: int, *, seed: int = 0, sampling: Sampling = "random"):
        if block_size < 1:
            raise ConfigError(f"block_size must be at least 1, got {block_size}")
        if len(tokens) < block_size + 1:
            raise ConfigError(
                f"{len(tokens):,} tokens cannot fill one block of {block_size} + 1; "
                "use a smaller context length or more data"
            )
        if sampling not in ("random", "sequential"):
            raise ConfigError(f"sampling must be 'random' or 'sequential', got {sampling!r}")
        self.tokens = tokens
        self.block_size = block_size
        self.seed = seed
        self.sampling = sampling
        self.num_starts = len(tokens) - block_size  # starts s with s + block_size < len
        self.num_blocks = (len(tokens) - 1) // block_size  # non-overlapping windows

    def starts(self, first: int, count: int) -> np.ndarray:
        index = np.arange(first, first + count, dtype=np.uint64)
        if self.sampling == "sequential":
            return (index % np.uint64(self.num_blocks)).astype(np.int64) * self.block_size
        mixed = splitmix64(index ^ splitmix64(np.array([self.seed], dtype=np.uint64)))
        return (mixed % np.uint64(self.num_starts)).astype(np.int64)

    def eval_spans(self, num_batches: int | None, batch_size: int, rank: int, world_size: int):
        """(first block, block count) of this rank's share of the first `num_batches` batches, in order."""
        available = math.ceil(self.num_blocks / batch_size)
        total = available if not num_batches else min(num_batches, available)
        for batch in range(rank, total, world_size):
            first = batch * batch_size
            yield first, min(batch_size, self.num_blocks - first)

    def windows(self, first: int, count: int) -> np.ndarray:
        """(count, block_size + 1) int64 token windows of samples first .. first + count - 1."""
        span = self.block_size + 1
        if isinstance(self.tokens, TokenShards):
            rows = [self.tokens.read(int(s), span) for s in self.starts(first, count)]
        else:
            rows = [self.tokens[int(s) : int(s) + span] for s in self.starts(first, count)]
        return np.stack(rows).astype(np.int64)


class CLMObjective:
    """Next-token prediction on packed blocks; plugs into `lmforge.train.loop.train`.

    The model is called as ``model(input_ids)`` and must return the logits (B, T, V) or an object with
    ``.logits``. Validation reads the val split in order, each block once.
    """

    name = "clm"

    def __init__(
        self,
        train_tokens,
        val_tokens=None,
        *,
        block_size: int,
        seed: int = 0,
        sampling: Sampling = "random",
        bytes_per_token: float | None = None,
    ):
        self.block_size = block_size
        self.train = PackedBlocks(train_tokens, block_size, seed=seed, sampling=sampling)
        self.val = (
            PackedBlocks(val_tokens, block_size, sampling="sequential")
            if val_tokens is not None and len(val_tokens) > block_size
            else None
        )
        if bytes_per_token is None and isinstance(val_tokens, TokenShards):
            bytes_per_token = val_tokens.bytes_per_token
        self.bytes_per_token = bytes_per_token  # text bytes per token of the val split: for bits per byte

    def train_batch(self, index: int, batch_size: int, rank: int = 0, world_size: int = 1) -> dict:
        """Micro-batch `index` of this rank: samples (index * world_size + rank) * batch_size onwards."""
        import torch

        windows = self.train.windows((index * world_size + rank) * batch_size, batch_size)
        tokens = torch.from_numpy(windows)  # (B, T + 1)
        return {"input_ids": tokens[:, :-1], "labels": tokens[:, 1:]}

    def eval_batches(
        self, num_batches: int | None, batch_size: int, rank: int = 0, world_size: int = 1
    ) -> Iterator[dict]:
        """This rank's share of the first `num_batches` validation batches (all of them when None)."""
        import torch

        if self.val is None:
            return
        for first, count in self.val.eval_spans(num_batches, batch_size, rank, world_size):
            tokens = torch.from_numpy(self.val.windows(first, count))
            yield {"input_ids": tokens[:, :-1], "labels": tokens[:, 1:]}

    def loss(self, model, batch: dict):
        """Mean next-token cross-entropy over the batch (a scalar tensor for backward)."""
        import torch.nn.functional as F

        logits = _logits(model(batch["input_ids"]))  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1).float(), batch["labels"].flatten())

    def evaluate(self, model, batch: dict) -> dict[str, float]:
        """Summed quantities over one validation batch; the loop adds them over batches and ranks."""
        import torch.nn.functional as F

        logits = _logits(model(batch["input_ids"]))
        nll = F.cross_entropy(logits.flatten(0, 1).float(), batch["labels"].flatten(), reduction="sum")
        return {"nll": float(nll), "tokens": float(batch["labels"].numel())}

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        from lmforge.metrics.perplexity import bits_per_byte, perplexity

        result = {
            "val_loss": sums["nll"] / sums["tokens"],
            "val_perplexity": perplexity(sums["nll"], sums["tokens"]),
        }
        if self.bytes_per_token:
            result["val_bpb"] = bits_per_byte(sums["nll"], sums["tokens"] * self.bytes_per_token)
        return result


def _logits(output):
    return output if hasattr(output, "shape") else output.logits
