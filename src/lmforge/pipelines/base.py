"""What every pipeline shares: finding the model, loading it once, one input or many, thread safety.

A pipeline holds a model in eval mode and its tokenizer, loaded once by `Cls.load(source)`, where source is
a model directory, `py:PACKAGE/DIR` or a Hugging Face checkpoint directory (converted once into the cache,
`lmforge.model_source.model_directory`). Calling it with a `str` gives one result, with a list a list of
results, computed in batches.

Thread safety: the weights are only read, every call builds its own batches, KV cache and random generator,
and the tokenizer — whose truncation settings some encoders change per call — is used under a lock, so
several threads may call one pipeline at once and get what serial calls give.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from lmforge.errors import ConfigError, MissingFileError


class Pipeline:
    """Base class: `load`, the str-or-list convention and the tokenizer lock."""

    task = ""  # the config.json "task" this pipeline serves

    def __init__(self, model, tokenizer, *, source: str = ""):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.source = source  # what it was loaded from, for repr and messages
        self.tokenizer_lock = threading.Lock()
        self.device = next(model.parameters()).device

    @classmethod
    def load(cls, source: str | os.PathLike, *, device: str = "cpu", **options):
        """The pipeline of a model directory, `py:PACKAGE/DIR` or Hugging Face checkpoint directory."""
        from lmforge.model_source import model_directory

        directory = model_directory(source)
        return cls.from_directory(directory, device=device, source=str(source), **options)

    @classmethod
    def from_directory(cls, directory: Path, *, device: str = "cpu", source: str = "", **options):
        """The pipeline of an lmforge model (or LoRA adapter) directory; a model of the wrong kind fails
        before its weights are read."""
        problem = cls.unsuitable(model_config_of(directory))
        if problem:
            raise ConfigError(f"{directory}: {problem}")
        model, tokenizer = load_model_and_tokenizer(directory, device=device)
        options = {**cls.directory_options(Path(directory)), **options}
        return cls(model, tokenizer, source=source or str(directory), **options)

    @classmethod
    def unsuitable(cls, config) -> str | None:
        """Why a model of this `ModelConfig` cannot serve this pipeline; None when it can."""
        return None

    @classmethod
    def directory_options(cls, directory: Path) -> dict:
        """Settings the pipeline reads from the model directory besides the model (e.g. generation.json)."""
        return {}

    def __repr__(self) -> str:
        config = self.model.config
        return f"{type(self).__name__}({self.source or '<in memory>'}: {describe(config)})"


def describe(config) -> str:
    """`decoder, 2 layers × 32, vocabulary 300` — a model config in a few words."""
    layers = f"{config.n_layers}" + (
        f"+{config.decoder_layers}" if config.architecture == "encoder-decoder" else ""
    )
    return f"{config.architecture}, {layers} layers × {config.d_model}, vocabulary {config.vocab_size:,}"


def load_model_and_tokenizer(source: str | os.PathLike, *, device: str = "cpu"):
    """(model in eval mode, tokenizer without padding or truncation) of a model directory, LoRA adapter
    directory, `py:PACKAGE/DIR` or Hugging Face checkpoint, with errors that name the file."""
    from lmforge.model import load
    from lmforge.model.lora import ADAPTER_CONFIG, load_adapters
    from lmforge.model_source import model_directory
    from lmforge.tokenizers import load_tokenizer

    directory = model_directory(source)
    tokenizer_file = directory / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise MissingFileError(f"{tokenizer_file} not found: the model directory needs its tokenizer")
    if (directory / ADAPTER_CONFIG).is_file():
        model = load_adapters(directory, device=device)
    else:
        model = load(directory, device=device)
    tokenizer = load_tokenizer(tokenizer_file)
    tokenizer.no_padding()  # tokenizer.json files often pad to a fixed length: pipelines pad per batch
    tokenizer.no_truncation()
    return model.eval(), tokenizer


def model_config_of(directory: Path):
    """A model (or adapter) directory's `ModelConfig`, read without loading weights."""
    import json

    from lmforge.model.checkpoint import read_config
    from lmforge.model.config import ModelConfig

    adapter_config = Path(directory) / "adapter_config.json"
    if adapter_config.is_file():
        document = json.loads(adapter_config.read_text(encoding="utf-8"))
        return ModelConfig.from_dict(document["model"], where=str(adapter_config))
    return read_config(directory)


def one_or_many(inputs, name: str) -> tuple[list, bool]:
    """(the inputs as a list, whether a single one was given); each must be a str.

    >>> one_or_many("hi", "text"), one_or_many(["a", "b"], "text")
    ((['hi'], True), (['a', 'b'], False))
    """
    single = isinstance(inputs, str)
    items = [inputs] if single else list(inputs)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ConfigError(f"{name} {i + 1} is a {type(item).__name__}, not a str")
    return items, single
