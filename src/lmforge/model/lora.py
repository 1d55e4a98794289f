"""LoRA (Hu et al. 2021): fine-tune a frozen model through low-rank updates of its projections.

A frozen weight W (out × in) is used as W + (alpha / rank) · B A, with A (rank × in) random and B
(out × rank) zero at the start — so the adapted model starts exactly as the pre-trained one, and only
rank · (in + out) numbers per projection are trained.

What this file implements:
  - `LoRALinear`: an `nn.Linear` with a trainable low-rank update beside its frozen weight;
  - `apply_lora`: wrap the target projections of a model (attention: qkv / query / key_value / out;
    feed-forward: up / gate / down), freeze everything else except the modules to train in full (the
    task head, the pooler);
  - `merge_lora`: fold every update into its weight (W ← W + scale · B A) and unwrap — a plain model again,
    with the same outputs and no extra cost at inference;
  - `adapter_state_dict` / `save_adapters` / `load_adapters`: the trained numbers only (adapters and the
    fully trained modules), to store beside a base model directory.

    names = apply_lora(model, rank=8, alpha=16, targets=["attention", "feed_forward"])
    ...train...
    save_adapters(model, "runs/sst2-lora/adapters", base="runs/minilm")   # a few hundred KB
    merge_lora(model); model.save("runs/sst2-lora/model")                  # or merged weights
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from lmforge.errors import ConfigError, MissingFileError

ATTENTION = ("qkv", "query", "key_value", "out")  # projection names inside `attention` / `cross_attention`
FEED_FORWARD = ("up", "gate", "down")
ADAPTER_FILE = "adapters.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


class LoRALinear(nn.Module):
    """y = base(x) + scale · dropout(x) Aᵀ Bᵀ, with base frozen; scale = alpha / rank."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        if rank < 1:
            raise ConfigError(f"lora rank must be >= 1, got {rank}")
        self.base = base
        self.rank = rank
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear's own init, and the paper's
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        for parameter in base.parameters():
            parameter.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:  # (…, in) -> (…, out)
        update = (self.dropout(x) @ self.lora_a.t()) @ self.lora_b.t()  # (…, rank) -> (…, out)
        return self.base(x) + self.scale * update

    def merged(self) -> nn.Linear:
        """A plain `nn.Linear` with the update folded in."""
        linear = nn.Linear(
            self.base.in_features,
            self.base.out_features,
            bias=self.base.bias is not None,
            device=self.base.weight.device,
            dtype=self.base.weight.dtype,
        )
        with torch.no_grad():
            delta = self.scale * (self.lora_b.float() @ self.lora_a.float())  # (out, in)
            linear.weight.copy_((self.base.weight.float() + delta).to(linear.weight.dtype))
            if self.base.bias is not None:
                linear.bias.copy_(self.base.bias)
        return linear


def _is_target(path: str, targets: Sequence[str]) -> bool:
    """Whether the Linear at `path` (e.g. "layers.0.attention.qkv") is one LoRA should wrap."""
    parts = path.split(".")
    name, parents = parts[-1], parts[:-1]
    for target in targets:
        if target in ("attention", "cross_attention") and target in parents and name in ATTENTION:
            return True
        if target == "feed_forward" and "feed_forward" in parents and name in FEED_FORWARD:
            return True
        if target == name and (name in ATTENTION or name in FEED_FORWARD):
            return True
    return False


def apply_lora(
    model: nn.Module,
    *,
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    targets: Sequence[str] = ("attention", "feed_forward"),
    train_modules: Sequence[str] = ("head", "pooler"),
) -> list[str]:
    """Wrap the target projections in `LoRALinear` and freeze the rest; returns the wrapped paths.

    targets: "attention", "cross_attention", "feed_forward", or projection names ("qkv", "out", "up", …).
    train_modules: top-level modules trained in full (a fresh task head must learn from zero).
    """
    valid = {"attention", "cross_attention", "feed_forward", *ATTENTION, *FEED_FORWARD}
    unknown = sorted(set(targets) - valid)
    if unknown:
        raise ConfigError(f"lora.targets: unknown {unknown}; choose from {', '.join(sorted(valid))}")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    wrapped = []
    for path, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and _is_target(path, targets):
            parent_path, _, name = path.rpartition(".")
            parent = model.get_submodule(parent_path) if parent_path else model
            setattr(parent, name, LoRALinear(module, rank, alpha, dropout))
            wrapped.append(path)
    if not wrapped:
        raise ConfigError(f"lora.targets {list(targets)} matched no projection of this model")
    for name in train_modules:
        module = getattr(model, name, None)
        if isinstance(module, nn.Module):
            for parameter in module.parameters():
                parameter.requires_grad_(True)
    return wrapped


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every `LoRALinear` into a plain `nn.Linear` (in place); all parameters trainable again."""
    for path, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            parent_path, _, name = path.rpartition(".")
            parent = model.get_submodule(parent_path) if parent_path else model
            setattr(parent, name, module.merged())
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return model


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def adapter_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The trained tensors only: LoRA matrices and the parameters of fully trained modules."""
    return {
        name: parameter.detach().cpu().contiguous()
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
    }


def save_adapters(model: nn.Module, directory: str | os.PathLike, *, base: str, settings: dict) -> Path:
    """Write adapters.safetensors + adapter_config.json ({base, rank, alpha, targets, model config})."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    from lmforge.io import atomic_write

    state = adapter_state_dict(model)
    atomic_write(directory / ADAPTER_FILE, lambda p: save_file(state, p, metadata={"format": "pt"}))
    document = {"base": str(base), **settings, "model": model.config.to_dict()}
    text = json.dumps(document, indent=2) + "\n"
    atomic_write(directory / ADAPTER_CONFIG, lambda p: Path(p).write_text(text))
    return directory


def load_adapters(directory: str | os.PathLike, *, device: str = "cpu") -> nn.Module:
    """Rebuild the model: the base directory's weights, the task config, LoRA wrappers, trained tensors."""
    from safetensors.torch import load_file

    from lmforge.model.build import build_model
    from lmforge.model.checkpoint import read_config
    from lmforge.model.config import ModelConfig

    directory = Path(directory)
    path = directory / ADAPTER_CONFIG
    if not path.is_file():
        raise MissingFileError(f"{path} not found: not a LoRA adapter directory")
    document = json.loads(path.read_text())
    base = Path(document["base"])
    read_config(base)  # a clear error when the base directory has moved
    model = build_model(ModelConfig.from_dict(document["model"], where=str(path)))
    base_state = load_file(str(base / "model.safetensors"), device=device)
    own = model.state_dict()
    kept = {k: v for k, v in base_state.items() if k in own and v.shape == own[k].shape}
    model.load_state_dict(kept, strict=False)
    apply_lora(
        model,
        rank=document["rank"],
        alpha=document["alpha"],
        targets=document["targets"],
        train_modules=document.get("train_modules", ("head", "pooler")),
    )
    state = load_file(str(directory / ADAPTER_FILE), device=device)
    missing = [name for name in state if name not in dict(model.named_parameters())]
    if missing:
        raise ConfigError(f"{directory / ADAPTER_FILE}: tensors the model does not have: {missing[:10]}")
    model.load_state_dict(state, strict=False)
    model.eval()
    return model.to(device)
