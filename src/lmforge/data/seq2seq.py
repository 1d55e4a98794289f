"""Sequence to sequence (translation): sentence pairs, tokenized once, and the teacher-forcing objective.

What this file implements:
  - `Pair` and `read_pairs`: source/target pairs from a TSV file (columns by position), every bad line
    reported as file:line;
  - `encode_texts`: one side of all pairs tokenized in one call, each sequence ending in EOS (as Marian
    does for both sides), truncated to `max_length` tokens;
  - `length_batches`: batches of examples of similar length — a pool of shuffled examples is sorted by
    length and cut into batches of at most `batch_tokens` padded tokens (or `batch_size` examples), then
    the batches are shuffled — so padding stays small and every batch holds about the same work;
  - `pad_sources` / `pad_pairs`: dynamic padding into input_ids / attention_mask (the source), decoder_input_ids (the
    target shifted right behind the start token: teacher forcing) and labels (-100 at padding);
  - `Seq2SeqObjective`: the training loop's objective — label-smoothed cross-entropy on the real target
    positions only (logits are not even computed at padding); validation loss, perplexity and token
    accuracy without smoothing.

    objective = Seq2SeqObjective(sources, targets, val_sources, val_targets, pad_id=0, start_id=0,
                                 batch_tokens=4096)
    batch = objective.train_batch(0, batch_size=32)
    batch["input_ids"].shape, batch["decoder_input_ids"].shape     # (B, S), (B, T): B·max(S, T) <= 4096
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmforge.errors import ConfigError, CorpusError, MissingFileError
from lmforge.text import iter_lines

IGNORE = -100  # label value cross-entropy skips: padding
POOL_BATCHES = 64  # a pool of about this many batches is sorted by length: little padding, still random


@dataclass(frozen=True)
class Pair:
    source: str
    target: str
    line: int  # 1-based line of the file it came from (for error messages and stable ordering)


def read_pairs(path: str | Path, source_column: int = 0, target_column: int = 1) -> list[Pair]:
    """Every line of a TSV file as a (source, target) pair; blank lines are skipped.

    >>> read_pairs("../shared/data/tatoeba-spa-eng/spa.txt")[0]
    Pair(source='Go.', target='Ve.', line=1)
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"pairs file not found: {path}")
    needed = max(source_column, target_column) + 1
    pairs = []
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        cells = line.rstrip("\r\n").split("\t")
        if len(cells) < needed:
            raise CorpusError(
                f"{path}:{number}: {len(cells)} tab-separated column(s), expected at least {needed} "
                f"(source column {source_column}, target column {target_column}, counted from 0)"
            )
        source, target = cells[source_column].strip(), cells[target_column].strip()
        if not source or not target:
            raise CorpusError(f"{path}:{number}: empty {'source' if not source else 'target'} sentence")
        pairs.append(Pair(source, target, number))
    if not pairs:
        raise CorpusError(f"{path}: no sentence pairs")
    return pairs


def encode_texts(tokenizer, texts: Sequence[str], max_length: int, eos_id: int | None) -> list[list[int]]:
    """Token ids of each text, ending in `eos_id` (unless the tokenizer already put it there), at most
    `max_length` ids (truncation keeps the EOS)."""
    if max_length < 2:
        raise ConfigError(f"max_length must be at least 2 (a token and EOS), got {max_length}")
    tokenizer.no_truncation()
    tokenizer.no_padding()
    encoded = []
    for encoding in tokenizer.encode_batch(list(texts), progress="tokenizing the sentences"):
        ids = list(encoding.ids)
        if eos_id is not None and (not ids or ids[-1] != eos_id):
            ids.append(eos_id)
        if len(ids) > max_length:
            ids = ids[: max_length - 1] + ids[-1:] if eos_id is not None else ids[:max_length]
        encoded.append(ids)
    return encoded


def length_batches(
    lengths: np.ndarray, *, seed: int, epoch: int, batch_size: int, batch_tokens: int = 0
) -> list[np.ndarray]:
    """One epoch's batches (arrays of example indices): a pure function of (seed, epoch).

    The examples are shuffled, cut into pools of about POOL_BATCHES batches, each pool sorted by length
    and cut greedily so that a batch's padded size (examples × its longest length) stays within
    `batch_tokens` (when > 0; else `batch_size` examples per batch); then all batches are shuffled.

    >>> lengths = np.array([1, 5, 2, 6])          # examples 0 and 2 are short, 1 and 3 long
    >>> [b.tolist() for b in length_batches(lengths, seed=0, epoch=0, batch_size=2)]
    [[1, 3], [0, 2]]
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    mean = float(lengths.mean()) if len(lengths) else 1.0
    per_batch = batch_size if batch_tokens <= 0 else max(1, int(batch_tokens / mean))
    pool = max(per_batch * POOL_BATCHES, 1)
    batches: list[np.ndarray] = []
    for start in range(0, len(order), pool):
        members = order[start : start + pool]
        members = members[np.argsort(lengths[members], kind="stable")]
        if batch_tokens <= 0:
            batches += [members[i : i + batch_size] for i in range(0, len(members), batch_size)]
            continue
        # sorted ascending, so a batch's longest member is its last: cut where count × length would pass
        sizes = lengths[members]
        first = 0
        for i in range(len(members)):
            if (i + 1 - first) * sizes[i] > batch_tokens and i > first:
                batches.append(members[first:i])
                first = i
        batches.append(members[first:])
    rng.shuffle(batches)
    return batches


def pad_sources(sources: Sequence[Sequence[int]], rows: Sequence[int], *, pad_id: int) -> dict:
    """Sources `rows` right-padded to the longest: input_ids and attention_mask, both (B, S).

    >>> pad_sources([[5, 6, 2], [7, 2]], [0, 1], pad_id=0)["attention_mask"]
    tensor([[1, 1, 1],
            [1, 1, 0]])
    """
    import torch

    S = max(len(sources[r]) for r in rows)
    input_ids = np.full((len(rows), S), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), S), dtype=np.int64)
    for i, row in enumerate(rows):
        input_ids[i, : len(sources[row])] = sources[row]
        mask[i, : len(sources[row])] = 1
    return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}


def pad_pairs(
    sources: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    rows: Sequence[int],
    *,
    pad_id: int,
    start_id: int,
) -> dict:
    """Examples `rows` as one batch padded to its own longest source and target.

    input_ids, attention_mask (B, S): the source, right-padded; decoder_input_ids (B, T): the start token,
    then the target without its last token (teacher forcing); labels (B, T): the target, IGNORE at padding.

    >>> pad_pairs([[5, 6, 2]], [[7, 2]], [0], pad_id=0, start_id=0)["decoder_input_ids"]
    tensor([[0, 7]])
    """
    import torch

    T = max(len(targets[r]) for r in rows)
    labels = np.full((len(rows), T), IGNORE, dtype=np.int64)
    decoder_input_ids = np.full((len(rows), T), pad_id, dtype=np.int64)
    for i, row in enumerate(rows):
        target = targets[row]
        labels[i, : len(target)] = target
        decoder_input_ids[i, 0] = start_id
        decoder_input_ids[i, 1 : len(target)] = target[:-1]
    return {
        **pad_sources(sources, rows, pad_id=pad_id),
        "decoder_input_ids": torch.from_numpy(decoder_input_ids),
        "labels": torch.from_numpy(labels),
    }


class Seq2SeqObjective:
    """Teacher-forced cross-entropy of an encoder-decoder; plugs into `lmforge.train.loop.train`.

    Sources and targets are token-id lists (see `encode_texts`). Training batch j of the stream is batch
    j - (batches of the earlier epochs) of its epoch's `length_batches`, so a batch depends only on its
    index (exact resume, DDP-safe). With `batch_tokens` > 0 the loop's batch_size is ignored.
    """

    name = "seq2seq"

    def __init__(
        self,
        train_sources: Sequence[Sequence[int]],
        train_targets: Sequence[Sequence[int]],
        val_sources: Sequence[Sequence[int]] | None = None,
        val_targets: Sequence[Sequence[int]] | None = None,
        *,
        pad_id: int,
        start_id: int,
        batch_tokens: int = 0,
        label_smoothing: float = 0.0,
        seed: int = 0,
    ):
        if len(train_sources) != len(train_targets) or not train_sources:
            raise ConfigError(
                f"seq2seq needs as many sources as targets, and some: {len(train_sources)} vs {len(train_targets)}"
            )
        if not 0 <= label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.sources, self.targets = list(train_sources), list(train_targets)
        self.val_sources = list(val_sources or [])
        self.val_targets = list(val_targets or [])
        self.pad_id, self.start_id = pad_id, start_id
        self.batch_tokens = batch_tokens
        self.label_smoothing = label_smoothing
        self.seed = seed
        self.lengths = np.array(
            [max(len(s), len(t)) for s, t in zip(self.sources, self.targets, strict=True)], dtype=np.int64
        )
        self._epoch_starts = [0]  # index of the first batch of each epoch computed so far
        self._epochs: dict[tuple[int, int], list[np.ndarray]] = {}

    def _epoch(self, epoch: int, batch_size: int) -> list[np.ndarray]:
        key = (epoch, batch_size)
        if key not in self._epochs:
            if len(self._epochs) > 3:
                self._epochs.clear()
            self._epochs[key] = length_batches(
                self.lengths,
                seed=self.seed,
                epoch=epoch,
                batch_size=batch_size,
                batch_tokens=self.batch_tokens,
            )
        return self._epochs[key]

    def _locate(self, index: int, batch_size: int) -> np.ndarray:
        """The example rows of stream batch `index` (epochs are counted lazily, once each)."""
        if self.batch_tokens <= 0:  # every epoch has the same number of batches
            per_epoch = math.ceil(len(self.sources) / batch_size)
            return self._epoch(index // per_epoch, batch_size)[index % per_epoch]
        while self._epoch_starts[-1] <= index:
            epoch = len(self._epoch_starts) - 1
            self._epoch_starts.append(self._epoch_starts[-1] + len(self._epoch(epoch, batch_size)))
        epoch = int(np.searchsorted(self._epoch_starts, index, side="right")) - 1
        return self._epoch(epoch, batch_size)[index - self._epoch_starts[epoch]]

    def train_batch(self, index: int, batch_size: int, rank: int = 0, world_size: int = 1) -> dict:
        rows = self._locate(index * world_size + rank, batch_size)
        return pad_pairs(
            self.sources, self.targets, rows.tolist(), pad_id=self.pad_id, start_id=self.start_id
        )

    def eval_batches(
        self, num_batches: int | None, batch_size: int, rank: int = 0, world_size: int = 1
    ) -> Iterator[dict]:
        """The validation pairs in length order (little padding), the same batches every time."""
        if not self.val_sources:
            return
        order = sorted(range(len(self.val_sources)), key=lambda i: (len(self.val_sources[i]), i))
        available = math.ceil(len(order) / batch_size)
        total = available if not num_batches else min(num_batches, available)
        for batch in range(rank, total, world_size):
            rows = order[batch * batch_size : (batch + 1) * batch_size]
            yield pad_pairs(
                self.val_sources, self.val_targets, rows, pad_id=self.pad_id, start_id=self.start_id
            )

    def _logits(self, model, batch: dict):
        """(N, V) logits at the N real target positions, with the (N,) labels they predict."""
        real = batch["labels"] != IGNORE  # (B, T)
        output = model(
            batch["input_ids"],
            attention_mask=batch["attention_mask"],
            decoder_input_ids=batch["decoder_input_ids"],
            logits_where=real,
        )
        return output.logits.float(), batch["labels"][real]

    def loss(self, model, batch: dict):
        import torch.nn.functional as F

        logits, labels = self._logits(model, batch)
        return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)

    def evaluate(self, model, batch: dict) -> dict[str, float]:
        import torch.nn.functional as F

        logits, labels = self._logits(model, batch)
        return {
            "nll": float(F.cross_entropy(logits, labels, reduction="sum")),
            "tokens": float(labels.numel()),
            "correct": float((logits.argmax(-1) == labels).sum()),
        }

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        from lmforge.metrics.perplexity import perplexity

        tokens = max(sums["tokens"], 1.0)
        return {
            "val_loss": sums["nll"] / tokens,
            "val_perplexity": perplexity(sums["nll"], tokens),
            "val_token_accuracy": sums["correct"] / tokens,
        }
