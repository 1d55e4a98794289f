"""Checkpoints that survive a crash and resume a run exactly, without pickle.

What this file implements:
  - `save_checkpoint`: a nested state (model and optimizer state dicts, schedule step, RNG states, data
    position, metrics) written as ``tensors.safetensors`` + ``state.json`` into a temporary directory,
    fsynced, then renamed to ``step-00000100`` — a rename is atomic, so a crash at any moment leaves
    either the old set of checkpoints or the new one, never a half-written one. It keeps the last K
    and the best (by a metric) and removes the others;
  - `load_checkpoint`: the inverse. It reads JSON and safetensors only — it never unpickles, so a
    checkpoint from elsewhere cannot run code (unlike a bare ``torch.load``);
  - `latest_checkpoint`, `best_checkpoint`: find them;
  - `capture_rng` / `restore_rng`: Python's, NumPy's and torch's (CPU and CUDA) generator states.

    save_checkpoint("ckpt/", step=100, state={"model": model.state_dict(), "step": 100}, keep_last=2)
    # PosixPath('ckpt/step-00000100')
    load_checkpoint(latest_checkpoint("ckpt/"))["step"]
    # 100
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from lmforge.errors import MissingFileError
from lmforge.io import write_json

FORMAT_VERSION = 1
STEP_DIR = re.compile(r"^step-(\d{8})$")
TENSORS_FILE = "tensors.safetensors"
STATE_FILE = "state.json"
INDEX_FILE = "best.json"


def save_checkpoint(
    root: str | os.PathLike,
    step: int,
    state: dict[str, Any],
    *,
    keep_last: int = 2,
    metric: float | None = None,
    metric_name: str = "val_loss",
    lower_is_better: bool = True,
) -> Path:
    """Write `state` as checkpoint `step` under `root`, atomically; keep the last `keep_last` and the best."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in [*root.glob(".tmp-*"), *root.glob(f".{INDEX_FILE}.*.tmp")]:  # left by a crash mid-save
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    tree = _flatten(state, tensors, "")
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    tmp.mkdir()
    save_file(tensors, str(tmp / TENSORS_FILE), metadata={"format": str(FORMAT_VERSION)})
    _fsync_file(tmp / TENSORS_FILE)
    payload = {"format": FORMAT_VERSION, "step": step, "state": tree}
    with open(tmp / STATE_FILE, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_dir(tmp)
    final = root / f"step-{step:08d}"
    if final.exists():  # the same step saved again (e.g. a final save after the last periodic one)
        trash = root / f".tmp-old-{step:08d}-{os.getpid()}"
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(root)

    if metric is not None:
        best = _read_best(root)
        better = best is None or (metric < best["value"] if lower_is_better else metric > best["value"])
        if better or best.get("name") == final.name:
            _write_json_atomic(
                root / INDEX_FILE, {"name": final.name, "step": step, "metric": metric_name, "value": metric}
            )
    _prune(root, keep_last)
    return final


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The state saved by `save_checkpoint` (tensors on `device`). Never unpickles."""
    path = Path(path)
    if not (path / STATE_FILE).is_file() or not (path / TENSORS_FILE).is_file():
        raise MissingFileError(f"{path}: not a checkpoint (needs {STATE_FILE} and {TENSORS_FILE})")
    payload = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    tensors = load_file(str(path / TENSORS_FILE), device=str(device))
    return _unflatten(payload["state"], tensors)


def load_checkpoint_metrics(path: str | os.PathLike) -> dict[str, float]:
    """The "metrics" entry of a checkpoint, read from its JSON alone (no tensors loaded)."""
    payload = json.loads((Path(path) / STATE_FILE).read_text(encoding="utf-8"))
    metrics = payload["state"].get("metrics") or {}
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under `root`, oldest first (a renamed directory is always complete)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and STEP_DIR.match(p.name))


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def best_checkpoint(root: str | os.PathLike) -> Path | None:
    best = _read_best(Path(root))
    if best is None or not (Path(root) / best["name"]).is_dir():
        return None
    return Path(root) / best["name"]


def capture_rng() -> dict[str, Any]:
    """Every random generator a training step may draw from."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# --- internals ---------------------------------------------------------------------------------------


def _flatten(value: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    """Nested state -> JSON-able tree; tensors move into `tensors` under their path, replaced by a marker."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu").contiguous()
        if tensor.data_ptr() in {t.data_ptr() for t in tensors.values()} and tensor.numel():
            tensor = tensor.clone()  # safetensors refuses shared storage (tied weights)
        key = path or "."
        tensors[key] = tensor
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _flatten(v, tensors, f"{path}/{k}") for k, v in value.items()}
        return {"__items__": [[k, _flatten(v, tensors, f"{path}/{k}")] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_flatten(v, tensors, f"{path}/{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_flatten(v, tensors, f"{path}/{i}") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (torch.dtype, torch.device)):
        return str(value)
    raise TypeError(f"cannot checkpoint {type(value).__name__} at {path or 'the top'}")


def _unflatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__ndarray__" in value:
            return np.array(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        if "__tuple__" in value:
            return tuple(_unflatten(v, tensors) for v in value["__tuple__"])
        if "__items__" in value:
            return {k: _unflatten(v, tensors) for k, v in value["__items__"]}
        return {k: _unflatten(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_unflatten(v, tensors) for v in value]
    return value


def _read_best(root: Path) -> dict[str, Any] | None:
    path = root / INDEX_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def _prune(root: Path, keep_last: int) -> None:
    found = list_checkpoints(root)
    best = _read_best(root)
    keep = {p.name for p in found[-max(keep_last, 1) :]}
    if best is not None:
        keep.add(best["name"])
    for path in found:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_json(path, data, indent=None)
    _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
