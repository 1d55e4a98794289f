"""Task `qa` of `lmforge finetune` (being built: the pipeline raises until it lands)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class QAData:
    train: str = ""  # the data file(s) of the task


def finetune_qa(config, log=print):
    from lmforge.errors import ConfigError

    raise ConfigError("task qa is not implemented yet; this version fine-tunes task classify")
