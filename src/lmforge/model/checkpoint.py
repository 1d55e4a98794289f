"""The model directory: save and load without pickle.

    DIR/config.json        {"format": "lmforge-model", "format_version": 1, "task": "generation",
                           "model": {ModelConfig fields}}; `task` names the use (`lmforge.pipelines`)
    DIR/model.safetensors  the unwrapped state dict (no `module.` / `_orig_mod.` prefixes); a tied weight is
                           stored once, under its first name
    DIR/tokenizer.json     copied from the tokenizer given to `save` (and any other tokenizer files)
    DIR/README.md          the model card: what it is, its size and cost, where it came from

- `TransformerModel` — the base class of the three architectures: `save`, `num_parameters`,
  `flops_per_token`, `new_cache`, `new_slot_cache`.
- `save_model(model, dir, tokenizer=None, card="")`, `read_config(dir)`; `build.load_model(dir)` reads it back.
- `check_state_dict(expected, found)` — names every missing, unexpected or mis-shaped tensor at once.
- `task_of(config)` — what a model is for, from its architecture and head: "generation" (decoder),
  "translation" (encoder-decoder), "classification", "question-answering" or "embedding" (encoders);
  `read_task(dir)` reads it back, inferring it for directories saved before the key existed.

Loading reads safetensors only, so a model directory can never run code. Every file is written to a
temporary name, flushed to disk and renamed, so an interrupted save leaves no half-written file.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from torch import Tensor, nn

from lmforge.errors import LmforgeError, MissingFileError
from lmforge.io import atomic_write
from lmforge.model.config import ModelConfig, model_config_from_dict
from lmforge.model.layers import KVCache, SlotKVCache

FORMAT = "lmforge-model"
FORMAT_VERSION = 1
TASKS = ("generation", "translation", "classification", "question-answering", "embedding")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "source.spm",
    "target.spm",
    "tokenizer.model",
)


class CheckpointError(LmforgeError, ValueError):
    """A model directory that does not match its config: missing, unexpected or mis-shaped tensors."""


class TransformerModel(nn.Module):
    """What every lmforge model shares: its config, saving, size, cost and a fresh KV cache."""

    config: ModelConfig

    def save(self, directory: str | os.PathLike, tokenizer=None, card: str = "") -> Path:
        """Write the model directory (see the module docstring); returns its path."""
        return save_model(self, directory, tokenizer=tokenizer, card=card)

    def num_parameters(self) -> int:
        """Parameters counted once each (a tied embedding/output matrix counts once)."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, seq_len: int | None = None) -> int:
        return self.config.flops_per_token(seq_len)

    def new_cache(self, capacity: int = 0) -> KVCache:
        """An empty KV cache for incremental decoding (see `KVCache`); `capacity`: positions to reserve."""
        return KVCache.empty(len(self.cache_layers()), capacity)

    def new_slot_cache(self, slots: int, capacity: int | None = None) -> SlotKVCache:
        """A cache of `slots` sequences that join and leave a running batch (see `SlotKVCache`), each with
        room for `capacity` positions (default: the model's context), in the dtype and on the device of the
        weights."""
        config = self.config
        capacity = capacity or config.max_positions
        weight = next(self.parameters())
        return SlotKVCache(
            len(self.cache_layers()),
            slots,
            capacity,
            config.kv_heads,
            config.head_dim,
            source_capacity=config.max_positions if config.architecture == "encoder-decoder" else 0,
            dtype=weight.dtype,
            device=weight.device,
        )

    def cache_layers(self) -> nn.ModuleList:  # the layers that use the cache
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------------------
# Writing


def unique_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The state dict with each shared tensor once (under its first name) and wrapper prefixes removed."""
    seen: set[tuple[int, int]] = set()
    state: dict[str, Tensor] = {}
    for name, tensor in model.state_dict().items():
        key = (
            (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
            if tensor.device.type != "meta"
            else None
        )
        if key is not None and key in seen:
            continue
        if key is not None:
            seen.add(key)
        for prefix in ("_orig_mod.", "module."):
            name = name.replace(prefix, "")
        state[name] = tensor
    return state


def task_of(config: ModelConfig) -> str:
    """The use a model's architecture and head are for (the `task` key of config.json).

    >>> task_of(ModelConfig(architecture="encoder", head="question-answering"))
    'question-answering'
    """
    if config.architecture == "decoder":
        return "generation"
    if config.architecture == "encoder-decoder":
        return "translation"
    heads = {"sequence-classification": "classification", "question-answering": "question-answering"}
    return heads.get(config.head, "embedding")  # a bare or MLM encoder: its vectors are what it gives


def save_model(
    model: TransformerModel,
    directory: str | os.PathLike,
    tokenizer=None,
    card: str = "",
    *,
    task: str | None = None,
) -> Path:
    """Save `model` to `directory` (created if needed). `tokenizer`: a path to a tokenizer.json (or a folder
    holding tokenizer files) to copy, or an object with `.save(path)`. `task`: the use written into
    config.json (default: `task_of` the model's config)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    model = getattr(model, "module", model)  # DDP wrapper
    config: ModelConfig = model.config
    task = task or task_of(config)
    if task not in TASKS:
        raise LmforgeError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in unique_state_dict(model).items()}
    atomic_write(directory / "model.safetensors", lambda p: save_file(state, p, metadata={"format": "pt"}))
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "task": task, "model": config.to_dict()}
    atomic_write(
        directory / "config.json", lambda p: Path(p).write_text(json.dumps(document, indent=2) + "\n")
    )
    if tokenizer is not None:
        copy_tokenizer(tokenizer, directory)
    atomic_write(directory / "README.md", lambda p: Path(p).write_text(model_card(model, card)))
    return directory


def copy_tokenizer(tokenizer, directory: Path) -> None:
    if hasattr(tokenizer, "save"):
        tokenizer.save(str(directory / "tokenizer.json"))
        return
    source = Path(tokenizer)
    if source.is_dir():
        files = [source / name for name in TOKENIZER_FILES if (source / name).is_file()]
    elif source.is_file():
        files = [source]
    else:
        raise MissingFileError(f"tokenizer not found: {source}")
    for file in files:
        target = directory / (file.name if source.is_dir() else "tokenizer.json")
        if file.resolve() != target.resolve():
            atomic_write(target, lambda p, file=file: shutil.copyfile(file, p))


def model_card(model: TransformerModel, notes: str = "") -> str:
    config = model.config
    if hasattr(model, "describe"):  # an architecture that describes itself (ELMo)
        lines = [f"# lmforge model: {config.preset}", "", *model.describe()]
        lines += [
            "",
            "Load it with `lmforge.model.load(DIR)`; files: config.json, model.safetensors, tokenizer.json.",
        ]
        return "\n".join(lines + (["", notes.rstrip()] if notes else [])) + "\n"
    kind = {"encoder": "encoder (BERT-like)", "decoder": "decoder-only", "encoder-decoder": "encoder-decoder"}
    layers = f"{config.n_layers}" + (
        f" + {config.decoder_layers}" if config.architecture == "encoder-decoder" else ""
    )
    lines = [
        f"# lmforge model{f': {config.preset}' if config.preset else ''}",
        "",
        f"- architecture: {kind[config.architecture]}, head: {config.head or 'none'}",
        f"- parameters: {model.num_parameters():,}",
        f"- layers: {layers}, d_model {config.d_model}, heads {config.n_heads}"
        + (f" (key/value heads {config.kv_heads})" if config.kv_heads != config.n_heads else "")
        + f", d_ff {config.d_ff}, vocabulary {config.vocab_size}",
        f"- positions: {config.positions}, norm: {config.norm} ({'pre' if config.pre_norm else 'post'}-norm), "
        f"activation: {config.activation}",
        f"- training FLOPs per token at context {config.max_positions}: {config.flops_per_token():,}",
    ]
    if config.extra.get("converted_from"):
        lines.append(f"- converted from: {config.extra['converted_from']}")
    lines += [
        "",
        "Load it with `lmforge.model.load(DIR)`; files: config.json, model.safetensors, tokenizer.json.",
    ]
    if notes:
        lines += ["", notes.rstrip()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------
# Reading


def read_config(directory: str | os.PathLike) -> ModelConfig:
    path = Path(directory) / "config.json"
    if not Path(directory).is_dir():
        raise MissingFileError(f"model directory not found: {directory}")
    if not path.is_file():
        raise MissingFileError(f"{path} not found: a model directory holds config.json and model.safetensors")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if document.get("format") != FORMAT:
        hint = " (a Hugging Face model? run `lmforge convert --from-hf`)" if "model_type" in document else ""
        raise CheckpointError(f"{path}: not an lmforge model directory{hint}")
    if document.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {document['format_version']} is newer than this lmforge reads "
            f"({FORMAT_VERSION}); upgrade lmforge"
        )
    return model_config_from_dict(document["model"], where=str(path))


def read_task(directory: str | os.PathLike) -> str:
    """The `task` of a model directory's config.json (or a LoRA adapter directory's adapter_config.json);
    inferred from the architecture and head when the directory was saved without one."""
    directory = Path(directory)
    adapter_config = directory / "adapter_config.json"
    if adapter_config.is_file():
        document = json.loads(adapter_config.read_text(encoding="utf-8"))
        config = model_config_from_dict(document["model"], where=str(adapter_config))
    else:
        config = read_config(directory)
        document = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    task = document.get("task") or task_of(config)
    if task not in TASKS:
        raise CheckpointError(f"{directory}: unknown task {task!r} (known: {', '.join(TASKS)})")
    return task


def check_state_dict(expected: dict[str, Tensor], found: dict[str, Tensor], where: str) -> None:
    """Raise one `CheckpointError` listing every missing, unexpected and mis-shaped tensor."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    misshaped = [
        f"{name} {tuple(found[name].shape)} (expected {tuple(expected[name].shape)})"
        for name in sorted(set(expected) & set(found))
        if tuple(found[name].shape) != tuple(expected[name].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if unexpected:
        problems.append(f"unexpected {unexpected}")
    if misshaped:
        problems.append(f"mis-shaped {misshaped}")
    if problems:
        raise CheckpointError(f"{where}: tensors do not match the config: " + "; ".join(problems))
