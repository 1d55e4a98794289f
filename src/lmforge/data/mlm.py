"""Masked language modelling (BERT): hide some tokens, predict them. The masking and the objective.

What this file implements:
  - `mask_tokens`: BERT's dynamic masking. Each token is chosen with probability 15% (special tokens
    never); a chosen token becomes [MASK] 80% of the time, a random token 10%, and stays itself 10%.
    Labels hold the original id at chosen positions and -100 (ignored by the loss) everywhere else.
    With a word-start table, whole words are chosen together (whole-word masking);
  - `word_start_table`: that table from a vocabulary (WordPiece "##" continuations, or byte-level BPE's
    "Ġ" word starts);
  - `MLMObjective`: the loop's objective — packed blocks, masked afresh for every sample (the mask of
    sample j depends only on (seed, j), so resume and DDP stay exact), masked-token loss and accuracy.

    >>> ids = np.array([[5, 6, 7, 8]])
    >>> inputs, labels = mask_tokens(ids, [np.random.default_rng(0)], mask_id=1, vocab_size=10,
    ...                              special_ids=[0, 1], probability=0.5)
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Sequence

import numpy as np

from lmforge.data.clm import PackedBlocks, _logits
from lmforge.errors import ConfigError

IGNORE_INDEX = -100  # what torch's cross_entropy skips by default
EVAL_SEED = 2**31 - 1  # validation uses one fixed mask, so evaluations at different steps compare


def mask_tokens(
    ids: np.ndarray,
    generators: Sequence[np.random.Generator],
    *,
    mask_id: int,
    vocab_size: int,
    special_ids: Sequence[int] = (),
    probability: float = 0.15,
    word_starts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mask (B, T) `ids` with one generator per row; returns (inputs, labels), both (B, T) int64.

    word_starts: bool array over the vocabulary, True where a token begins a word; when given, a word is
    chosen (with `probability`) as a whole and all its tokens are masked together.
    """
    if not 0.0 < probability < 1.0:
        raise ConfigError(f"mask probability must be in (0, 1), got {probability}")
    ids = np.asarray(ids, dtype=np.int64)
    inputs = ids.copy()
    labels = np.full_like(ids, IGNORE_INDEX)
    maskable = ~np.isin(ids, np.asarray(special_ids, dtype=np.int64))
    for row, rng in enumerate(generators):
        if word_starts is not None:
            # a word = a start token and the continuations after it; specials end words too
            starts = word_starts[ids[row]] | ~maskable[row]
            word_index = np.cumsum(starts) - 1  # (T,) which word each token belongs to
            chosen_words = rng.random(int(word_index[-1]) + 1) < probability
            chosen = chosen_words[word_index] & maskable[row]
        else:
            chosen = (rng.random(ids.shape[1]) < probability) & maskable[row]
        action = rng.random(ids.shape[1])  # < 0.8: [MASK]; 0.8-0.9: random token; else unchanged
        random_ids = rng.integers(0, vocab_size, ids.shape[1])
        labels[row, chosen] = ids[row, chosen]
        inputs[row] = np.where(chosen & (action < 0.8), mask_id, inputs[row])
        replace = chosen & (action >= 0.8) & (action < 0.9)
        inputs[row] = np.where(replace, random_ids, inputs[row])
    return inputs, labels


def word_start_table(id_to_token: Sequence[str], scheme: str = "wordpiece") -> np.ndarray:
    """True for tokens that start a word.

    scheme="wordpiece": every token except "##" continuations (BERT).
    scheme="bytelevel": tokens starting with "Ġ" (a space) or "Ċ" (a newline), GPT-2 style.
    scheme="metaspace": tokens starting with "▁" (SentencePiece's space: Unigram).

    >>> word_start_table(["▁the", "s", "▁cat"], "metaspace").tolist()
    [True, False, True]
    """
    if scheme == "wordpiece":
        return np.array([not token.startswith("##") for token in id_to_token])
    if scheme == "bytelevel":
        return np.array([token[:1] in ("Ġ", "Ċ") for token in id_to_token])
    if scheme == "metaspace":
        return np.array([token[:1] == "\u2581" for token in id_to_token])
    raise ConfigError(f"unknown word-start scheme {scheme!r}; use 'wordpiece', 'bytelevel' or 'metaspace'")


class MLMObjective:
    """Masked-token prediction on packed blocks of `block_size` tokens; plugs into the loop.

    The model is called as ``model(input_ids)`` and returns (B, T, V) logits or an object with ``.logits``.
    prefix_id: a token put first in every block (BERT's [CLS]), so the model sees it as in fine-tuning.
    """

    name = "mlm"

    def __init__(
        self,
        train_tokens,
        val_tokens=None,
        *,
        block_size: int,
        mask_id: int,
        vocab_size: int,
        special_ids: Sequence[int] = (),
        probability: float = 0.15,
        word_starts: np.ndarray | None = None,
        prefix_id: int | None = None,
        seed: int = 0,
    ):
        body = block_size - (prefix_id is not None)
        # PackedBlocks yields body + 1 tokens; MLM uses the first `body` of them
        self.train = PackedBlocks(train_tokens, body, seed=seed, sampling="random")
        self.val = (
            PackedBlocks(val_tokens, body, sampling="sequential")
            if val_tokens is not None and len(val_tokens) > body
            else None
        )
        self.mask_options = dict(
            mask_id=mask_id,
            vocab_size=vocab_size,
            special_ids=sorted(
                set(special_ids) | {mask_id} | ({prefix_id} if prefix_id is not None else set())
            ),
            probability=probability,
            word_starts=word_starts,
        )
        self.prefix_id = prefix_id
        self.seed = seed

    def _batch(self, blocks: PackedBlocks, first: int, count: int, seed: int) -> dict:
        import torch

        ids = blocks.windows(first, count)[:, :-1]  # (B, body)
        if self.prefix_id is not None:
            ids = np.concatenate([np.full((len(ids), 1), self.prefix_id, dtype=np.int64), ids], axis=1)
        generators = [np.random.default_rng([seed, first + i]) for i in range(count)]
        inputs, labels = mask_tokens(ids, generators, **self.mask_options)
        return {"input_ids": torch.from_numpy(inputs), "labels": torch.from_numpy(labels)}

    def train_batch(self, index: int, batch_size: int, rank: int = 0, world_size: int = 1) -> dict:
        first = (index * world_size + rank) * batch_size
        return self._batch(self.train, first, batch_size, self.seed)

    def eval_batches(
        self, num_batches: int | None, batch_size: int, rank: int = 0, world_size: int = 1
    ) -> Iterator[dict]:
        if self.val is None:
            return
        for first, count in self.val.eval_spans(num_batches, batch_size, rank, world_size):
            yield self._batch(self.val, first, count, seed=EVAL_SEED)

    def loss(self, model, batch: dict):
        import torch.nn.functional as F

        labels = batch["labels"]
        if not _takes_logits_where(model):  # any other module: logits everywhere, padding ignored
            logits = _logits(model(batch["input_ids"]))  # (B, T, V)
            return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten())
        chosen = labels != IGNORE_INDEX  # (B, T): the ~15% of positions that are scored
        # lmforge encoders run the MLM head only at the scored positions: the same loss, and the vocabulary
        # projection (about 40% of a tiny BERT's step at vocab 8192) shrinks to 15% of the tokens
        logits = _logits(model(batch["input_ids"], logits_where=chosen))  # (N, V)
        return F.cross_entropy(logits.float(), labels[chosen])

    def evaluate(self, model, batch: dict) -> dict[str, float]:
        import torch.nn.functional as F

        logits = _logits(model(batch["input_ids"])).flatten(0, 1).float()
        labels = batch["labels"].flatten()
        chosen = labels != IGNORE_INDEX
        nll = F.cross_entropy(logits[chosen], labels[chosen], reduction="sum")
        correct = (logits[chosen].argmax(-1) == labels[chosen]).sum()
        return {"nll": float(nll), "masked": float(chosen.sum()), "correct": float(correct)}

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        masked = max(sums["masked"], 1.0)
        return {
            "val_loss": sums["nll"] / masked,
            "val_masked_accuracy": sums["correct"] / masked,
            "val_masked_perplexity": math.exp(min(sums["nll"] / masked, 700.0)),
        }


def _takes_logits_where(model) -> bool:
    """Whether the module under DDP / torch.compile wrappers can compute logits at chosen positions only."""
    inner = getattr(model, "_orig_mod", model)  # torch.compile
    inner = getattr(inner, "module", inner)  # DistributedDataParallel
    return "logits_where" in inspect.signature(inner.forward).parameters
