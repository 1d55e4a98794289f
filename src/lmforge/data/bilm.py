"""Bidirectional language modelling (ELMo): predict the next word left to right and the previous word right
to left; the loss is the mean of the two. The dataset and the objective in one file.

What this file implements:
  - `BiLMObjective`: windows of `block_size + 2` words cut from a word-id stream (`PackedBlocks`, so
    sampling, resuming and ranks work as for the causal LM); the model reads the middle `block_size`
    words as characters (one table lookup: word id -> its spelling), the forward LM is scored on the word
    after each position and the backward LM on the word before it. Validation: each direction's loss and
    perplexity per token.

    window  w0 w1 w2 w3 w4 w5          (block_size 4)
    input      w1 w2 w3 w4
    forward    w2 w3 w4 w5             (the word after: read w1..wt, predict w(t+1))
    backward   w0 w1 w2 w3             (the word before: read wt..w4, predict w(t-1))

    >>> import numpy as np
    >>> objective = BiLMObjective(np.arange(20), block_size=4, char_table=np.zeros((20, 3), np.int32),
    ...                           sampling="sequential")
    >>> batch = objective.train_batch(0, 1)
    >>> batch["input_ids"].tolist(), batch["forward_labels"].tolist(), batch["backward_labels"].tolist()
    ([[1, 2, 3, 4]], [[2, 3, 4, 5]], [[0, 1, 2, 3]])
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from lmforge.data.clm import PackedBlocks, Sampling
from lmforge.data.shards import TokenShards


class BiLMObjective:
    """Forward + backward next-word prediction; plugs into `lmforge.train.loop.train`.

    The model is called as ``model(chars, forward_targets=, backward_targets=)`` and returns an object with
    ``.forward_nll`` and ``.backward_nll`` (B, T) (`lmforge.model.elmo.ELMoModel`).
    """

    name = "bilm"

    def __init__(
        self,
        train_tokens,
        val_tokens=None,
        *,
        block_size: int,
        char_table: np.ndarray,
        seed: int = 0,
        sampling: Sampling = "random",
    ):
        self.block_size = block_size
        self.char_table = np.ascontiguousarray(char_table, dtype=np.int32)  # (V, W): id -> characters
        self.train = PackedBlocks(train_tokens, block_size + 1, seed=seed, sampling=sampling)
        self.val = (
            PackedBlocks(val_tokens, block_size + 1, sampling="sequential")
            if val_tokens is not None and len(val_tokens) > block_size + 1
            else None
        )
        if isinstance(val_tokens, TokenShards):
            self.bytes_per_token = val_tokens.bytes_per_token

    def _batch(self, windows: np.ndarray) -> dict:
        import torch

        inputs = windows[:, 1:-1]  # (B, T)
        return {
            "input_ids": torch.from_numpy(np.ascontiguousarray(inputs)),
            "chars": torch.from_numpy(self.char_table[inputs]),  # (B, T, W)
            "forward_labels": torch.from_numpy(np.ascontiguousarray(windows[:, 2:])),
            "backward_labels": torch.from_numpy(np.ascontiguousarray(windows[:, :-2])),
        }

    def train_batch(self, index: int, batch_size: int, rank: int = 0, world_size: int = 1) -> dict:
        return self._batch(self.train.windows((index * world_size + rank) * batch_size, batch_size))

    def eval_batches(
        self, num_batches: int | None, batch_size: int, rank: int = 0, world_size: int = 1
    ) -> Iterator[dict]:
        if self.val is None:
            return
        for first, count in self.val.eval_spans(num_batches, batch_size, rank, world_size):
            yield self._batch(self.val.windows(first, count))

    @staticmethod
    def _output(model, batch: dict):
        return model(
            batch["chars"], forward_targets=batch["forward_labels"], backward_targets=batch["backward_labels"]
        )

    def loss(self, model, batch: dict):
        """The mean of the two directions' mean negative log-likelihoods."""
        out = self._output(model, batch)
        return (out.forward_nll.mean() + out.backward_nll.mean()) / 2

    def evaluate(self, model, batch: dict) -> dict[str, float]:
        out = self._output(model, batch)
        return {
            "forward_nll": float(out.forward_nll.sum()),
            "backward_nll": float(out.backward_nll.sum()),
            "tokens": float(batch["input_ids"].numel()),
        }

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        from lmforge.metrics.perplexity import perplexity

        tokens = sums["tokens"]
        return {
            "val_loss": (sums["forward_nll"] + sums["backward_nll"]) / (2 * tokens),
            "val_forward_loss": sums["forward_nll"] / tokens,
            "val_backward_loss": sums["backward_nll"] / tokens,
            "val_forward_perplexity": perplexity(sums["forward_nll"], tokens),
            "val_backward_perplexity": perplexity(sums["backward_nll"], tokens),
        }
