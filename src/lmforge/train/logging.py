"""What a training run shows and leaves behind: a progress bar, metrics.jsonl, TensorBoard, loss.png.

What this file implements:
  - `RunLogger`: a tqdm bar (step, loss, tokens/s, MFU when the FLOPs per token and the hardware peak are
    known, and tqdm's ETA); one JSON line per logged step and per evaluation in ``metrics.jsonl``;
    TensorBoard event files under ``tb/`` when `tensorboard` is importable; ``loss.png`` at the end;
  - `plot_losses`: the loss curve (train and validation) from a metrics.jsonl, drawn with matplotlib's
    file-only Agg backend (no display needed);
  - `peak_flops`: the dense bf16 peak of known GPUs, for MFU.

MFU (model FLOPs utilisation, PaLM appendix B) = FLOPs per token x tokens per second / the hardware's
peak FLOPs per second: how much of the chip the training actually uses.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lmforge.io import save_figure

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets; a name matches by substring.
GPU_PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "4090": 165e12}


def peak_flops(device) -> float | None:
    """The bf16 peak of `device` when it is a known GPU; None on CPU (no reliable figure)."""
    import torch

    if getattr(device, "type", str(device)) != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in GPU_PEAK_FLOPS.items() if k in name), None)


class RunLogger:
    """Progress and records of one run; only rank 0 writes (`enabled=False` on the others)."""

    def __init__(
        self,
        out_dir: str | Path,
        *,
        total_steps: int,
        start_step: int = 0,
        flops_per_token: float | None = None,
        peak_flops_per_s: float | None = None,
        progress: bool = True,
        tensorboard: bool = True,
        enabled: bool = True,
    ):
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.flops_per_token = flops_per_token
        self.peak = peak_flops_per_s
        self.tokens_per_s: float | None = None
        self.started = time.perf_counter()
        self.last_train: dict[str, Any] = {}
        self.bar = None
        self.writer = None
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = self.out_dir / "metrics.jsonl"
        _truncate_after(self.jsonl, start_step)  # a resumed run rewrites what came after its checkpoint
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the `tb` extra is not installed
                pass
            else:
                self.writer = SummaryWriter(str(self.out_dir / "tb"), purge_step=start_step or None)

    def advance(self, step: int) -> None:
        """Move the bar to `step` optimizer steps done (called every step; cheap)."""
        if self.bar is not None:
            self.bar.update(step - self.bar.n)

    def set_total(self, total_steps: int) -> None:
        """The run's planned steps changed (a schedule that follows the time budget)."""
        if self.bar is not None and self.bar.total != total_steps:
            self.bar.total = total_steps
            self.bar.refresh()

    def train_step(self, step: int, *, loss: float, lr: float, tokens: int, seconds: float) -> None:
        """Record a log point: `loss` at step `step`, `tokens` processed in `seconds` since the last one."""
        rate = tokens / max(seconds, 1e-9)
        # smooth tokens/s over a few log points so the bar does not flicker
        self.tokens_per_s = rate if self.tokens_per_s is None else 0.7 * self.tokens_per_s + 0.3 * rate
        if not self.enabled:
            return
        self.advance(step)
        record = {
            "step": step,
            "split": "train",
            "loss": loss,
            "lr": lr,
            "tokens_per_s": round(self.tokens_per_s, 1),
            "elapsed_s": round(time.perf_counter() - self.started, 2),
        }
        mfu = self.mfu
        if mfu is not None:
            record["mfu"] = round(mfu, 4)
        self.last_train = record
        if self.bar is not None:
            text = f"loss {loss:.4f} | {self.tokens_per_s:,.0f} tok/s"
            if mfu is not None:
                text += f" | MFU {100 * mfu:.1f}%"
            self.bar.set_postfix_str(text, refresh=False)
        self._write(record)
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, step)
            self.writer.add_scalar("train/lr", lr, step)
            self.writer.add_scalar("train/tokens_per_s", self.tokens_per_s, step)

    @property
    def mfu(self) -> float | None:
        if self.flops_per_token is None or self.peak is None or self.tokens_per_s is None:
            return None
        return self.flops_per_token * self.tokens_per_s / self.peak

    def eval(self, step: int, metrics: dict[str, float], *, show: bool = True) -> None:
        """Record an evaluation; `show` also writes it above the progress bar."""
        if not self.enabled:
            return
        record = {"step": step, "split": "val", **{k: float(v) for k, v in metrics.items()}}
        record["elapsed_s"] = round(time.perf_counter() - self.started, 2)
        self._write(record)
        summary = " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        if self.bar is not None and show:
            self.bar.write(f"step {step}: {summary}")
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(f"val/{key.removeprefix('val_')}", value, step)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> Path | None:
        """Close the bar and TensorBoard; draw loss.png. Returns its path (None when nothing was logged)."""
        if not self.enabled:
            return None
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
        return plot_losses(self.jsonl, self.out_dir / "loss.png")

    def _write(self, record: dict[str, Any]) -> None:
        with open(self.jsonl, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_losses(jsonl: str | Path, png: str | Path) -> Path | None:
    """Train and validation loss against the step, from metrics.jsonl, into `png`."""
    records = read_metrics(jsonl)
    train = [(r["step"], r["loss"]) for r in records if r.get("split") == "train" and "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if r.get("split") == "val" and "val_loss" in r]
    if not train and not val:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), dpi=110)
    if train:
        axes.plot(*zip(*train, strict=True), label="train", linewidth=1)
    if val:
        axes.plot(*zip(*val, strict=True), label="validation", marker="o", linewidth=1.5)
    axes.set_xlabel("step")
    axes.set_ylabel("loss (nats per token)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return save_figure(figure, png)


def _truncate_after(jsonl: Path, step: int) -> None:
    if not jsonl.is_file():
        return
    kept = [r for r in read_metrics(jsonl) if r.get("step", 0) <= step]
    if step == 0:
        kept = []
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
