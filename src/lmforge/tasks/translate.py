"""Task `translate` of `lmforge finetune` (being built: the pipeline raises until it lands)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TranslateData:
    train: str = ""  # the data file(s) of the task


def finetune_translate(config, log=print):
    from lmforge.errors import ConfigError

    raise ConfigError("task translate is not implemented yet; this version fine-tunes task classify")
