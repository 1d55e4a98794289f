"""What every fine-tuning task shares: the result, LoRA, the training run and the saved model.

`train_task` runs between a task building its model and scoring it (LoRA adapters, the schedule fitted to
the time budget, the one loop of `lmforge.train.loop`); `save_finetuned` writes the model directory (or
the adapters) with the tokenizer and the card; `copy_base_weights` starts a task's model from a base
model directory. Config objects are duck-typed `FinetuneConfig`s (`lmforge.finetune.config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from lmforge.config import CountOrZero
from lmforge.errors import ConfigError
from lmforge.train.config import TrainConfig


@dataclass
class LoRASpec:
    rank: CountOrZero = 0  # 0 = off (full fine-tuning); 8 trains ~1% of MiniLM's weights
    alpha: float = 16.0  # the update is scaled by alpha / rank, so changing the rank keeps its size
    dropout: float = 0.0  # on the adapters' input
    targets: list[str] = field(default_factory=lambda: ["attention", "feed_forward"])  # or projection names
    save: Literal["merged", "adapters"] = "merged"  # a plain model directory, or only the trained tensors


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

    @classmethod
    def of(cls, training: TaskTraining, out: Path, model_dir, metrics: dict, labels=()) -> FinetuneResult:
        """The result of a task that trained as `training` says and saved its model in `model_dir`."""
        loop = training.result
        return cls(
            out=out,
            model_dir=Path(model_dir),
            metrics=metrics,
            steps=loop.steps,
            seconds=loop.seconds,
            num_parameters=training.num_parameters,
            trainable_parameters=training.trainable,
            labels=list(labels),
        )


def apply_lora_spec(model, spec: LoRASpec, log=print) -> None:
    """Wrap the model's projections in LoRA adapters when `spec.rank` > 0 (the rest frozen)."""
    if not spec.rank:
        return
    from lmforge.model import lora as lora_

    wrapped = lora_.apply_lora(
        model, rank=spec.rank, alpha=spec.alpha, dropout=spec.dropout, targets=spec.targets
    )
    log(f"LoRA: rank {spec.rank} on {len(wrapped)} projections")


class TaskTraining(NamedTuple):
    result: object  # lmforge.train.loop's result: .model, .metrics, .steps, .seconds
    num_parameters: int  # with the LoRA adapters, when there are any
    trainable: int
    train_config: TrainConfig  # as the loop ran it (precision settled, max_steps fitted to the budget)


def train_task(config, model, objective, out: Path, start: str, log=print, *, frozen_with_lora=()):
    """What every task does between building its model and scoring it: LoRA adapters when `lora.rank` > 0
    (the modules named in `frozen_with_lora` then stay frozen too), the parameter count, the schedule fitted
    to the time budget and the pre-training loop with the task's objective.

    Returns a `TaskTraining`; the loop's model is in eval mode.
    """
    from lmforge.model import lora as lora_
    from lmforge.train.budget import plan_training
    from lmforge.train.loop import train

    apply_lora_spec(model, config.lora, log)
    if config.lora.rank:
        for name in frozen_with_lora:
            for parameter in model.get_submodule(name).parameters():
                parameter.requires_grad_(False)
    num_parameters = sum(p.numel() for p in model.parameters())
    trainable = lora_.trainable_parameters(model)
    log(f"model: {num_parameters / 1e6:.2f}M parameters ({trainable:,} trained), from {start}")

    # precision settled (`precision: auto`) and, with fit_steps_to_minutes, the schedule fitted
    train_config = plan_training(
        model, objective, config.train, fit_to_minutes=config.fit_steps_to_minutes, log=log
    )
    result = train(model, objective, train_config, out)
    result.model.eval()
    return TaskTraining(result, num_parameters, trainable, train_config)


def save_finetuned(
    model, config, out: Path, base_dir: Path, tokenizer_file, card: str, *, train_modules
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


def card_start(config, base_dir: Path) -> tuple[str, str]:
    """For a task's model card: where the run started (the model as the config named it, and the directory
    it was converted into, or its random initialisation) and the name of the saved directory."""
    source = f"`{config.model}`" + (
        f" (converted into `{base_dir}`)" if str(base_dir) != config.model else ""
    )
    start = (
        f"random initialisation of {source}'s architecture (--from-scratch)"
        if config.from_scratch
        else source
    )
    saved = "adapters" if config.lora.rank and config.lora.save == "adapters" else "model"
    return start, saved


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
