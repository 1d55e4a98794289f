"""Task `classify` of `lmforge finetune`: sequence classification of a text or a text pair.

    lmforge finetune --config configs/sst2-minilm.yaml
    lmforge finetune --config configs/sst2-minilm.yaml --from-scratch --out runs/sst2-scratch

Texts (and the labels) are read from CSV / TSV / JSONL columns (`ClassifyData`); the model is the base
encoder with a fresh sequence-classification head of one output per label, its weights copied from the
base model directory unless `from_scratch`; it trains on `ClassificationObjective` through the one loop
and is scored by dev loss, accuracy and macro-F1. `OUT/model` holds the label names in its config.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.config import Count
from lmforge.errors import ConfigError
from lmforge.finetune.common import FinetuneResult, card_start, copy_base_weights, save_finetuned, train_task


@dataclass
class ClassifyData:
    train: str = "../shared/data/sst2/train.tsv"  # .csv / .tsv / .jsonl with a header (or JSON keys)
    dev: str = "../shared/data/sst2/dev.tsv"  # validation split: the reported metrics are on it
    text_column: str = "sentence"
    pair_column: str | None = None  # second text of pair tasks (NLI, paraphrase); None = single texts
    label_column: str = "label"
    labels: list[str] = field(default_factory=list)  # label values in class order; [] = sorted train labels
    label_names: list[str] = field(default_factory=list)  # readable names, same order (e.g. negative,
    # positive); [] = the values themselves
    max_train_examples: Count | None = None  # use the first N training examples (quick runs, data efficiency)
    max_dev_examples: Count | None = None


def read_splits(data: ClassifyData):
    from lmforge.data.classification import read_examples

    options = dict(text_column=data.text_column, pair_column=data.pair_column, label_column=data.label_column)
    train = read_examples(data.train, limit=data.max_train_examples, **options)
    dev = read_examples(data.dev, limit=data.max_dev_examples, **options) if data.dev else None
    values = list(data.labels) or sorted({e.label for e in train}, key=lambda v: (len(v), v))
    names = list(data.label_names) or values
    if len(names) != len(values):
        raise ConfigError(f"data.label_names has {len(names)} names for {len(values)} labels {values}")
    return train, dev, values, names


def build_classifier(
    base_dir: Path,
    label_names: list[str],
    *,
    from_scratch: bool = False,
    dropout: float | None = None,
    seed: int = 0,
    pooling: str | None = None,
):
    """The base architecture with a fresh classification head; encoder weights copied unless from_scratch.

    Both starts build the same module under the same seed, so they differ only in the copied weights.
    """
    import torch

    from lmforge.model import build_model
    from lmforge.model.checkpoint import read_config

    base = read_config(base_dir)
    if base.architecture != "encoder":
        raise ConfigError(
            f"task classify needs an encoder model (BERT-like); {base_dir} is a {base.architecture}"
        )
    extra = {k: v for k, v in base.extra.items() if k != "labels"}
    config = base.replace(
        head="sequence-classification",
        num_labels=len(label_names),
        dropout=base.dropout if dropout is None else dropout,
        classifier_pooling=base.classifier_pooling if pooling is None else pooling,
        extra={**extra, "labels": list(label_names), "task": "classify"},
    )
    torch.manual_seed(seed)
    model = build_model(config)
    if not from_scratch:
        copy_base_weights(model, base_dir, "classifier")
    return model


def classify_card(config, base_dir: Path, result, labels: list[str], trainable: int) -> str:
    start, saved = card_start(config, base_dir)
    lines = [
        "## Fine-tuned for classification with lmforge",
        "",
        f"- start: {start}; labels: {', '.join(labels)}",
        f"- data: train `{config.data.train}`"
        + (f" (first {config.data.max_train_examples:,})" if config.data.max_train_examples else "")
        + f", dev `{config.data.dev}`",
        f"- steps: {result.steps:,} (batch {config.train.batch_size} × {config.train.grad_accum}), "
        f"lr {config.train.lr:g}, {result.seconds / 60:.1f} min; trainable parameters {trainable:,}"
        + (f" (LoRA rank {config.lora.rank}, alpha {config.lora.alpha:g})" if config.lora.rank else ""),
        "- dev metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()),
        "",
        f'Predict: `lmforge classify --model {config.out}/{saved} "a text"`.',
    ]
    return "\n".join(lines) + "\n"


def finetune_classify(config, log=print) -> FinetuneResult:
    """The whole `classify` pipeline for a `FinetuneConfig` whose task is "classify"."""
    from lmforge.config import dump_yaml
    from lmforge.data.classification import ClassificationObjective
    from lmforge.model_source import base_tokenizer, prepare_base, require_source_kind

    require_source_kind(
        config.model, {"encoder": None}, purpose="be fine-tuned to classify"
    )  # before any work
    train_examples, dev_examples, values, names = read_splits(config.data)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(dump_yaml(config))
    base_dir = prepare_base(config.model, out, log)
    tokenizer_file, tokenizer = base_tokenizer(base_dir)

    model = build_classifier(
        base_dir,
        names,
        from_scratch=config.from_scratch,
        dropout=config.dropout,
        seed=config.train.seed,
        pooling=config.pooling,
    )
    started = time.perf_counter()
    objective = ClassificationObjective(
        tokenizer,
        train_examples,
        dev_examples,
        labels=values,
        max_length=min(config.max_length, model.config.max_positions),
        pad_id=model.config.pad_id(tokenizer),
        seed=config.train.seed,
    )
    log(
        f"data: {len(train_examples):,} train / {len(dev_examples or []):,} dev examples, labels {names}, "
        f"tokenized in {time.perf_counter() - started:.1f}s"
    )
    start = "random initialisation" if config.from_scratch else str(base_dir)
    training = train_task(config, model, objective, out, start, log)
    result, trainable = training.result, training.trainable
    model = result.model
    card = classify_card(config, base_dir, result, names, trainable)
    model_dir = save_finetuned(
        model, config, out, base_dir, tokenizer_file, card, train_modules=["head", "pooler"]
    )
    return FinetuneResult.of(training, out, model_dir, result.metrics, labels=names)
