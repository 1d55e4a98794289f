"""The models a server holds: their names, kinds, pipelines and (for text generators) engines.

A model is named by `--model NAME=DIR`, else by its directory's name — or its parent's when the directory is
called `model`, as every preset's output is (`runs/sst2-minilm/model` → `sst2-minilm`). Two models with one
name are a startup error. Text generators (decoders and encoder-decoders) get an `lmforge.engine.Engine`
each: one thread that owns the weights and batches every request continuously; the encoders' pipelines run
in the server's worker threads (they are thread-safe).

`--index IDX` adds an index (`lmforge.search`) that `/v1/search` searches; with `--reader QA` the server also
holds the model `assistant`, an `lmforge.search.Assistant` over that index and reader, which answers on
`/v1/chat/completions` (its kind is `assistant`). Both are checked before the server starts (a missing or
half-written index, a reader that is not an extractive QA model: one line) and loaded with the models.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.errors import LmforgeError

GENERATORS = ("generation", "translation")  # the kinds an engine serves
ASSISTANT = "assistant"  # the name and the kind of the model `--index IDX --reader QA` adds


@dataclass
class ModelSpec:
    name: str
    source: str  # what --model named (a directory, py:PACKAGE/DIR, a Hugging Face checkpoint)
    directory: Path  # the lmforge model directory it resolves to
    task: str  # lmforge.pipelines' name of its kind


@dataclass
class ServedModel:
    spec: ModelSpec
    pipeline: object
    fingerprint: str  # the model directory's hash: OpenAI's system_fingerprint
    created: int
    engine: object | None = None  # lmforge.engine.Engine, for the generators

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def task(self) -> str:
        return self.spec.task


def default_name(source: str) -> str:
    """`runs/sst2/model` → `sst2`; `models/gpt` → `gpt`; `py:pkg/model` → `pkg`.

    >>> default_name("runs/sst2-minilm/model"), default_name("models/gpt2/"), default_name("py:gt_x/model")
    ('sst2-minilm', 'gpt2', 'gt_x')
    """
    path = Path(source[3:]) if source.startswith("py:") else Path(source).resolve(strict=False)
    if path.name == "model" and path.parent.name:
        return path.parent.name
    return path.name or str(path)


def parse_specs(values: list[str], option: str = "--model") -> list[ModelSpec]:
    """`--model` values (DIR or NAME=DIR) → specs with their kinds, read from each config.json (the weights
    are not read yet). A name given twice is an error."""
    from lmforge.model.checkpoint import read_task
    from lmforge.model_source import model_directory

    if not values:
        raise LmforgeError(f"give at least one {option} DIR (or {option} NAME=DIR)")
    specs: list[ModelSpec] = []
    for value in values:
        name, sep, source = value.partition("=")
        if not sep or "/" in name or name.startswith("py:"):
            name, source = "", value
        if sep and not name:
            raise LmforgeError(f"{option} {value!r}: the name before '=' is empty")
        directory = model_directory(source, name=option)
        name = name or default_name(source)
        clash = next((s for s in specs if s.name == name), None)
        if clash is not None:
            raise LmforgeError(
                f"{option}: two models are named {name!r} ({clash.source} and {source}); "
                f"name one with {option} NAME={source}"
            )
        specs.append(ModelSpec(name, source, Path(directory), read_task(directory)))
    return specs


def load_model(
    spec: ModelSpec,
    *,
    max_batch: int = 16,
    max_queue: int = 64,
    on_sample: Callable[[str, str, float], None] | None = None,
    device: str = "cpu",
) -> ServedModel:
    """The pipeline (and, for a generator, the engine) of one spec. on_sample(model, name, seconds) gets the
    engine's latency samples."""
    import lmforge.pipelines as P
    from lmforge.model_source import checkpoint_hash

    pipeline = P.PIPELINES[spec.task].from_directory(
        spec.directory, device=device, source=spec.source, name="--model"
    )
    served = ServedModel(spec, pipeline, "fp_" + checkpoint_hash(spec.directory)[:16], int(time.time()))
    if spec.task in GENERATORS:
        from lmforge.engine import Engine

        hook = None if on_sample is None else (lambda name, seconds: on_sample(spec.name, name, seconds))
        served.engine = Engine(
            pipeline.model,
            pipeline.tokenizer,
            max_batch=max_batch,
            max_queue=max_queue,
            on_sample=hook,
            name=f"engine-{spec.name}",
        )
    return served


@dataclass
class SearchSpec:
    """What `--index IDX [--reader QA] [--threshold T]` serves: the index, and the assistant's reader."""

    index: Path
    reader: ModelSpec | None = None  # named `assistant`, of kind `assistant`
    threshold: float = (
        0.3  # the assistant abstains below this confidence (search_spec: lmforge.search's default)
    )


def search_spec(
    index: str, reader: str | None = None, threshold: float | None = None, models: list[ModelSpec] = ()
) -> SearchSpec:
    """`--index`, `--reader`, `--threshold`, checked without loading anything: the index's manifest and files
    are there, the reader is an extractive QA model, the threshold is in [0, 1], no `--model` is named
    `assistant`."""
    from lmforge.model_source import model_directory, require_kind, source_config
    from lmforge.pipelines import QuestionAnswering
    from lmforge.search import DEFAULT_THRESHOLD
    from lmforge.search.index import read_manifest

    read_manifest(Path(index))
    if reader is None:
        if threshold is not None:
            raise LmforgeError("--threshold is the assistant's: give --reader QA_MODEL with it")
        return SearchSpec(Path(index))
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    if not 0 <= threshold <= 1:
        raise LmforgeError(f"--threshold must be between 0 and 1, got {threshold}")
    if any(spec.name == ASSISTANT for spec in models):
        raise LmforgeError(
            f"--model: {ASSISTANT!r} is the name of --reader's assistant; name that model otherwise "
            "with --model NAME=DIR"
        )
    directory = model_directory(reader, name="--reader")
    qa = QuestionAnswering
    config = source_config(directory, name="--reader", adapters=True)
    require_kind(config, reader, qa.kinds, purpose=qa.purpose, name="--reader", hint=qa.hint)
    return SearchSpec(Path(index), ModelSpec(ASSISTANT, reader, Path(directory), ASSISTANT), threshold)


def load_search(spec: SearchSpec) -> tuple[object, ServedModel | None]:
    """(the opened `Index`, the served assistant or None). The index's embedder and BM25 are loaded now,
    not by the first request."""
    import hashlib

    from lmforge.model_source import checkpoint_hash
    from lmforge.pipelines import QuestionAnswering
    from lmforge.search import Assistant, Index

    index = Index.open(spec.index)
    index.embedder, index.bm25  # noqa: B018  (loaded, and the embedder checked against the manifest)
    if spec.reader is None:
        return index, None
    reader = QuestionAnswering.from_directory(
        spec.reader.directory, source=spec.reader.source, name="--reader"
    )
    assistant = Assistant(index, reader, threshold=spec.threshold)
    # the reader's files and the index's version: either changing gives another fingerprint
    identity = checkpoint_hash(spec.reader.directory) + str(index.data.resolve())
    fingerprint = "fp_" + hashlib.sha256(identity.encode()).hexdigest()[:16]
    return index, ServedModel(spec.reader, assistant, fingerprint, int(time.time()))


@dataclass
class Registry:
    """The served models by name, loaded in a background thread (the server answers 503 meanwhile)."""

    specs: list[ModelSpec]
    options: dict = field(default_factory=dict)
    search: SearchSpec | None = None
    models: dict[str, ServedModel] = field(default_factory=dict)
    index: object | None = None  # the lmforge.search.Index of `search`, once loaded
    error: str | None = None
    _loaded: threading.Event = field(default_factory=threading.Event)

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    def load(self, background: bool = True) -> None:
        if background:
            threading.Thread(target=self._load, name="lmforge-serve-load", daemon=True).start()
        else:
            self._load()

    def wait(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    def _load(self) -> None:
        try:
            for spec in self.specs:
                self.models[spec.name] = load_model(spec, **self.options)
            if self.search is not None:
                self.index, assistant = load_search(self.search)
                if assistant is not None:
                    self.models[ASSISTANT] = assistant
        except Exception as exc:  # reported on /health and in the log; the server answers 503
            self.error = str(exc) if isinstance(exc, LmforgeError) else f"{type(exc).__name__}: {exc}"
            logging.getLogger("lmforge.serve").error("error: the models failed to load: %s", self.error)
        finally:
            self._loaded.set()

    def close(self) -> None:
        for served in self.models.values():
            if served.engine is not None:
                served.engine.close()
        if self.index is not None:
            self.index.close()
