"""The fine-tuning config: which task, which model, which data, LoRA and the training settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lmforge.config import Count
from lmforge.finetune.classify import ClassifyData
from lmforge.finetune.common import LoRASpec
from lmforge.finetune.qa import QAData
from lmforge.finetune.translate import TranslateData
from lmforge.train.config import TrainConfig


@dataclass
class FinetuneConfig:
    task: Literal["classify", "translate", "qa"] = "classify"
    model: str = ""  # lmforge model dir, a Hugging Face dir (converted), or py:PACKAGE/DIR
    from_scratch: bool = False  # same architecture, random initialisation: the baseline pre-training beats
    out: str = "runs/finetune"  # run directory (checkpoints, metrics.jsonl, model/)
    max_length: Count = 128  # tokens per example after truncation (SST-2 sentences: 99% under 64)
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
