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

from lmforge.errors import ConfigError


class Pipeline:
    """Base class: `load`, the str-or-list convention and the tokenizer lock. A subclass states the models
    it serves in `kinds` (architecture → the heads it needs, None: any; see
    `lmforge.model_source.require_kind`), what it does with them in `purpose`, and what to use instead in
    `hint`."""

    task = ""  # the config.json "task" this pipeline serves
    kinds: dict[str, tuple[str | None, ...] | None] | None = None  # None: any model
    purpose = ""  # e.g. "generate text": the wrong kind of model "cannot generate text"
    hint = ""

    def __init__(self, model, tokenizer, *, source: str = ""):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.source = source  # what it was loaded from, for repr and messages
        self.tokenizer_lock = threading.Lock()
        self.device = next(model.parameters()).device
        self._drafts: dict[str, object] = {}  # speculative decoding: draft models by directory, loaded once
        self._drafts_lock = threading.Lock()

    @classmethod
    def load(cls, source: str | os.PathLike, *, device: str = "cpu", name: str = "model", **options):
        """The pipeline of a model directory, `py:PACKAGE/DIR` or Hugging Face checkpoint directory.
        `name` is how errors call the source (a command passes its option, ``--model``)."""
        from lmforge.model_source import model_directory

        directory = model_directory(source, name=name)
        return cls.from_directory(directory, device=device, source=str(source), name=name, **options)

    @classmethod
    def from_directory(
        cls, directory: Path, *, device: str = "cpu", source: str = "", name: str = "model", **options
    ):
        """The pipeline of an lmforge model (or LoRA adapter) directory; a model of the wrong kind fails
        before its weights are read, in one line that names `source`."""
        from lmforge.model_source import require_kind, source_config

        spec = source or str(directory)
        if cls.kinds is not None:
            config = source_config(directory, name=name, adapters=True)
            require_kind(config, spec, cls.kinds, purpose=cls.purpose, name=name, hint=cls.hint)
        model, tokenizer = load_for_use(directory, device=device, name=f"{name} {spec}")
        options = {**cls.directory_options(Path(directory)), **options}
        return cls(model, tokenizer, source=spec, **options)

    @classmethod
    def directory_options(cls, directory: Path) -> dict:
        """Settings the pipeline reads from the model directory besides the model (e.g. generation.json)."""
        return {}

    def draft_model(self, draft: str | None):
        """The draft model of directory `draft` (loaded once, checked to share this model's tokenizer), or
        None when `draft` is None."""
        if not draft:
            return None
        with self._drafts_lock:
            if draft not in self._drafts:
                from lmforge.generate import GenerationError, check_draft
                from lmforge.model_source import model_directory

                directory = model_directory(draft, name="draft")
                model, tokenizer = load_for_use(directory, device=str(self.device), name=f"draft {draft}")
                if tokenizer.get_vocab() != self.tokenizer.get_vocab():
                    raise ConfigError(
                        f"draft {draft}: its tokenizer is not the model's; a draft must share it"
                    )
                try:
                    check_draft(self.model, model)
                except GenerationError as exc:
                    raise ConfigError(f"draft {draft}: {exc}") from None
                self._drafts[draft] = model
            return self._drafts[draft]

    def __repr__(self) -> str:
        config = self.model.config
        return f"{type(self).__name__}({self.source or '<in memory>'}: {describe(config)})"


def describe(config) -> str:
    """`decoder, 2 layers × 32, vocabulary 300` — a model config in a few words."""
    layers = f"{config.n_layers}" + (
        f"+{config.decoder_layers}" if config.architecture == "encoder-decoder" else ""
    )
    return f"{config.architecture}, {layers} layers × {config.d_model}, vocabulary {config.vocab_size:,}"


def load_for_use(directory: str | os.PathLike, *, device: str = "cpu", name: str = ""):
    """(model in eval mode, tokenizer without padding or truncation) of an lmforge model (or LoRA adapter)
    directory; `name` starts the errors' messages."""
    from lmforge.model_source import base_tokenizer, load_model_source

    _, tokenizer = base_tokenizer(directory, name=name)  # checked before the (slower) model load
    model, _ = load_model_source(directory, adapters=True, device=device)
    tokenizer.no_padding()  # tokenizer.json files often pad to a fixed length: pipelines pad per batch
    tokenizer.no_truncation()
    return model.eval(), tokenizer


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


def with_draft_path(config, directory: Path):
    """generation.json names its draft relative to the model directory: make the path usable from here."""
    if config.draft and not Path(config.draft).is_absolute():
        return config.replace(draft=str(Path(directory) / config.draft))
    return config
