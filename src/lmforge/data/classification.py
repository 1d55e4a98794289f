"""Sequence classification (sentiment, topic, entailment of a text pair): the data and the objective.

What this file implements:
  - `Example` and `read_examples`: labelled texts (or text pairs) from CSV / TSV / JSONL with named
    columns; every bad row is reported as file:line;
  - `encode_examples`: tokenization with the model's tokenizer, truncated to `max_length` tokens (pairs:
    the longer text is cut first), special tokens ([CLS] a [SEP] b [SEP]) included;
  - `pad_batch`: dynamic padding — each batch is padded to its own longest example, not to max_length;
  - `ClassificationObjective`: the training loop's objective — shuffled epochs whose order depends only on
    (seed, epoch), cross-entropy on the classifier's logits; evaluation sums a confusion table so that
    accuracy and macro-F1 come from `lmforge.metrics` over the whole split (and add up across ranks).

    examples = read_examples("../shared/data/sst2/dev.tsv", text_column="sentence", label_column="label")
    examples[0]
    # Example(text="it 's a charming and often affecting journey .", pair=None, label='1')
    objective = ClassificationObjective(tokenizer, train, dev, labels=["0", "1"], max_length=128)
    objective.train_batch(0, batch_size=32)["input_ids"].shape      # (32, longest in the batch)
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmforge.errors import ConfigError, CorpusError, MissingFileError
from lmforge.text import iter_lines

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}


@dataclass(frozen=True)
class Example:
    text: str
    pair: str | None  # the second text of a pair task (entailment, paraphrase); None for single texts
    label: str  # labels are kept as strings: "1", "positive", "entailment"


def read_examples(
    path: str | Path,
    *,
    text_column: str = "text",
    pair_column: str | None = None,
    label_column: str | None = "label",
    limit: int | None = None,
) -> list[Example]:
    """The labelled examples of a .csv, .tsv or .jsonl file (first `limit` only when given).

    label_column None reads unlabelled texts (label ""), for prediction.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"data file not found: {path}")
    columns = [c for c in (text_column, pair_column, label_column) if c is not None]
    rows = _jsonl_rows(path, columns) if path.suffix == ".jsonl" else _table_rows(path, columns)
    examples = []
    for number, record in rows:
        if limit is not None and len(examples) >= limit:
            break
        text = record[text_column]
        if not text.strip():
            raise CorpusError(f"{path}:{number}: empty '{text_column}'")
        label = record[label_column].strip() if label_column is not None else ""
        if label_column is not None and not label:
            raise CorpusError(f"{path}:{number}: empty label in column '{label_column}'")
        pair = record[pair_column].strip() if pair_column is not None else None
        examples.append(Example(text.strip(), pair, label))
    if not examples:
        raise CorpusError(f"{path}: no examples")
    return examples


def _table_rows(path: Path, columns: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    delimiter = TABLE_SUFFIXES.get(path.suffix)
    if delimiter is None:
        raise ConfigError(f"{path}: unknown data format {path.suffix!r}; use .csv, .tsv or .jsonl")
    lines = (line + "\n" for _, line in iter_lines(path))
    if delimiter == "\t":  # GLUE-style TSV: no quoting, split on tabs
        rows = (line.rstrip("\n").split("\t") for line in lines)
    else:  # RFC 4180 CSV: quoted cells may hold commas and newlines
        rows = csv.reader(lines)
    header: list[str] | None = None
    for number, cells in enumerate(rows, 1):
        where = getattr(rows, "line_num", number)
        if header is None:
            header = [h.strip() for h in cells]
            missing = [c for c in columns if c not in header]
            if missing:
                raise CorpusError(
                    f"{path}:1: no column {', '.join(repr(c) for c in missing)} (columns: {', '.join(header)}); "
                    "set data.text_column / data.pair_column / data.label_column"
                )
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise CorpusError(f"{path}:{where}: {len(cells)} cells, but the header has {len(header)}")
        yield where, dict(zip(header, cells, strict=True))


def _jsonl_rows(path: Path, columns: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise CorpusError(f"{path}:{number}: expected a JSON object per line")
        missing = [c for c in columns if c not in record]
        if missing:
            raise CorpusError(
                f"{path}:{number}: no field {', '.join(repr(c) for c in missing)} "
                f"(fields: {', '.join(record) or 'none'})"
            )
        yield number, {c: str(record[c]) for c in columns}


# --- tokenization and batches -----------------------------------------------------------------------


@dataclass
class EncodedExamples:
    ids: list[list[int]]  # token ids per example, special tokens included, at most max_length
    type_ids: list[list[int]]  # segment ids (0 = first text, 1 = second)
    labels: np.ndarray  # (N,) int64 class index; -1 for unlabelled examples

    def __len__(self) -> int:
        return len(self.ids)


def encode_examples(
    tokenizer, examples: Sequence[Example], labels: Sequence[str], max_length: int
) -> EncodedExamples:
    """Tokenize (truncating to `max_length`) and map labels to class indices."""
    index = {name: i for i, name in enumerate(labels)}
    unknown = sorted({e.label for e in examples if e.label and e.label not in index})
    if unknown:
        raise CorpusError(
            f"label(s) {', '.join(map(repr, unknown[:10]))} are not among the model's labels "
            f"({', '.join(labels)})"
        )
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()  # padding is per batch (`pad_batch`)
    items = [(e.text, e.pair) if e.pair is not None else e.text for e in examples]
    encodings = tokenizer.encode_batch(items, progress="tokenizing the examples")
    return EncodedExamples(
        ids=[e.ids for e in encodings],
        type_ids=[e.type_ids for e in encodings],
        labels=np.array([index.get(e.label, -1) for e in examples], dtype=np.int64),
    )


def pad_batch(encoded: EncodedExamples, rows: Sequence[int], pad_id: int) -> dict:
    """The examples `rows` as a batch padded to its longest member: input_ids, attention_mask,
    token_type_ids (all (B, T)) and labels (B,)."""
    import torch

    longest = max(len(encoded.ids[r]) for r in rows)
    ids = np.full((len(rows), longest), pad_id, dtype=np.int64)
    types = np.zeros((len(rows), longest), dtype=np.int64)
    mask = np.zeros((len(rows), longest), dtype=np.int64)
    for i, row in enumerate(rows):
        n = len(encoded.ids[row])
        ids[i, :n] = encoded.ids[row]
        types[i, :n] = encoded.type_ids[row]
        mask[i, :n] = 1
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask),
        "token_type_ids": torch.from_numpy(types),
        "labels": torch.from_numpy(encoded.labels[list(rows)]),
    }


def classifier_logits(model, batch: dict):
    """(B, num_labels) logits of a sequence-classification model for a padded batch."""
    kwargs = {"attention_mask": batch["attention_mask"]}
    if getattr(getattr(model, "config", None), "type_vocab_size", 0):
        kwargs["token_type_ids"] = batch["token_type_ids"]
    output = model(batch["input_ids"], **kwargs)
    return output if hasattr(output, "shape") else output.logits


# --- the objective ----------------------------------------------------------------------------------


class ClassificationObjective:
    """Cross-entropy on a sequence classifier; plugs into `lmforge.train.loop.train`.

    Training batches walk through shuffled epochs: sample j of the stream is example
    permutation(seed, j // N)[j % N], so a batch depends only on its index (exact resume, DDP-safe).
    Metrics: val_loss, val_accuracy, val_macro_f1 (from a confusion table summed over batches).
    """

    name = "classify"

    def __init__(
        self,
        tokenizer,
        train_examples: Sequence[Example],
        val_examples: Sequence[Example] | None,
        *,
        labels: Sequence[str],
        max_length: int = 128,
        pad_id: int = 0,
        seed: int = 0,
    ):
        if len(labels) < 2:
            raise ConfigError(f"classification needs at least 2 labels, got {list(labels)}")
        self.labels = list(labels)
        self.pad_id = pad_id
        self.seed = seed
        self.train = encode_examples(tokenizer, train_examples, self.labels, max_length)
        self.val = encode_examples(tokenizer, val_examples, self.labels, max_length) if val_examples else None
        self._permutations: dict[int, np.ndarray] = {}

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._permutations:
            if len(self._permutations) > 4:
                self._permutations.clear()
            rng = np.random.default_rng([self.seed, epoch])
            self._permutations[epoch] = rng.permutation(len(self.train))
        return self._permutations[epoch]

    def train_batch(self, index: int, batch_size: int, rank: int = 0, world_size: int = 1) -> dict:
        first = (index * world_size + rank) * batch_size
        size = len(self.train)
        rows = [int(self._permutation(j // size)[j % size]) for j in range(first, first + batch_size)]
        return pad_batch(self.train, rows, self.pad_id)

    def eval_batches(
        self, num_batches: int | None, batch_size: int, rank: int = 0, world_size: int = 1
    ) -> Iterator[dict]:
        if self.val is None:
            return
        available = math.ceil(len(self.val) / batch_size)
        total = available if not num_batches else min(num_batches, available)
        for batch in range(rank, total, world_size):
            rows = range(batch * batch_size, min((batch + 1) * batch_size, len(self.val)))
            yield pad_batch(self.val, list(rows), self.pad_id)

    def loss(self, model, batch: dict):
        import torch.nn.functional as F

        return F.cross_entropy(classifier_logits(model, batch).float(), batch["labels"])

    def evaluate(self, model, batch: dict) -> dict[str, float]:
        import torch.nn.functional as F

        logits = classifier_logits(model, batch).float()
        labels = batch["labels"]
        sums = {
            "nll": float(F.cross_entropy(logits, labels, reduction="sum")),
            "examples": float(len(labels)),
        }
        # every cell, zeros too: ranks must sum the same keys (all_reduce_sums adds them as one vector)
        n = len(self.labels)
        cells = (logits.argmax(-1) * n + labels).bincount(minlength=n * n).tolist()  # (n*n,) counts
        for predicted in range(n):
            for true in range(n):
                sums[f"confusion/{predicted}/{true}"] = float(cells[predicted * n + true])
        return sums

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        predictions, truths = confusion_to_lists(sums)
        return {
            "val_loss": sums["nll"] / max(sums["examples"], 1.0),
            **classification_metrics(predictions, truths, len(self.labels)),
        }


def confusion_to_lists(sums: dict[str, float]) -> tuple[list[int], list[int]]:
    """Expand {"confusion/p/t": count} back into prediction and label lists (for lmforge.metrics)."""
    predictions: list[int] = []
    truths: list[int] = []
    for key, count in sorted(sums.items()):
        if key.startswith("confusion/"):
            _, predicted, true = key.split("/")
            predictions += [int(predicted)] * round(count)
            truths += [int(true)] * round(count)
    return predictions, truths


def classification_metrics(predictions: Sequence[int], truths: Sequence[int], num_labels: int) -> dict:
    """val_accuracy and val_macro_f1 (macro over every class of the model, seen or not)."""
    from lmforge.metrics import accuracy, precision_recall_f1

    if not truths:
        return {}
    macro = precision_recall_f1(predictions, truths, average="macro", classes=list(range(num_labels)))
    return {"val_accuracy": accuracy(predictions, truths), "val_macro_f1": macro.f1}
