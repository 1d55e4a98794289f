"""Which precision a run trains in: `precision: auto` measures, and a slow explicit `bf16` says so.

bf16 autocast runs matmuls on bf16 inputs. Where the hardware has bf16 units (CUDA GPUs from Ampere on,
CPUs with AVX512-BF16 or AMX) that is several times faster than fp32; where it has none, PyTorch emulates
bf16 and the same matmul can be ~75x slower (an AMD EPYC without AVX-512: 22 ms in fp32, 1,633 ms under
bf16 autocast for 2048x256 @ 256x1024). So `auto` decides by measuring, not by a guess:

  - CUDA: bf16 when the device supports it (`torch.cuda.is_bf16_supported()`), else fp32;
  - CPU: a timed probe, that matmul in fp32 and under bf16 autocast (a fraction of a second; a slow bf16
    is cut short), cached per machine in ``precision.json`` of lmforge's cache (`lmforge.io.cache_directory`:
    ``$LMFORGE_CACHE``, else ``$XDG_CACHE_HOME/lmforge``, else ``~/.cache/lmforge``) under the CPU model,
    the torch version and the thread count; bf16 when it is at least `SPEEDUP_NEEDED` times faster;
  - other devices: fp32.

`lmforge.train.budget` then checks the model's own step before keeping bf16 on a CPU: on the 2-core Xeon
these docs were written on, whose bf16 matmuls are ~7x faster, the LSTM baseline trained 7.5x slower under
bf16 autocast with 2 torch threads (and 2.4x faster with 1).

    >>> fast = lambda: MatmulProbe("a CPU with bf16 units", fp32_seconds=0.0124, bf16_seconds=0.0017)
    >>> choice = choose_precision("auto", torch.device("cpu"), probe=fast)
    >>> choice.precision, choice.reason
    ('bf16', 'auto: bf16, since bf16 autocast is 7.3x faster than fp32 on this CPU (a 2048x256x1024 matmul takes 12 ms in fp32, 1.7 ms under bf16 autocast)')
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from lmforge.errors import ConfigError
from lmforge.io import cache_directory, write_text

PRECISIONS = ("fp32", "bf16", "fp16")
PROBE_SHAPE = (2048, 256, 1024)  # (M, K, N): a transformer's feed-forward matmul for 2,048 tokens
SPEEDUP_NEEDED = 1.1  # bf16 must beat fp32 by 10%: below that, its rounding is not worth it
CACHE_FILE = "precision.json"


@dataclass(frozen=True)
class MatmulProbe:
    """The seconds of one PROBE_SHAPE matmul in fp32 and under bf16 autocast on one machine."""

    machine: str  # the cache key: CPU model | torch version | threads
    fp32_seconds: float
    bf16_seconds: float

    @property
    def speedup(self) -> float:
        """How many times faster bf16 is (below 1: slower)."""
        return self.fp32_seconds / self.bf16_seconds

    def describe(self) -> str:
        return (
            f"a {'x'.join(map(str, PROBE_SHAPE))} matmul takes {_ms(self.fp32_seconds)} in fp32, "
            f"{_ms(self.bf16_seconds)} under bf16 autocast"
        )


def _ms(seconds: float) -> str:
    """1.633 -> '1,633 ms', 0.0049 -> '4.9 ms', 0.00069 -> '0.69 ms'."""
    milliseconds = seconds * 1e3
    return f"{milliseconds:,.0f} ms" if milliseconds >= 10 else f"{milliseconds:.2g} ms"


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # "fp32", "bf16" or "fp16": what the loop autocasts to
    reason: str  # one line: why
    warning: str | None = None  # one line when the configured precision is slow on this machine
    probe: MatmulProbe | None = None  # the CPU measurement behind the choice, if one was made


def bf16_pays(fp32_seconds: float, bf16_seconds: float, needed: float = SPEEDUP_NEEDED) -> bool:
    """Whether measured bf16 timings are fast enough to train in bf16.

    >>> bf16_pays(0.022, 1.633), bf16_pays(0.0049, 0.0007), bf16_pays(0.010, 0.0095)
    (False, True, False)
    """
    return bf16_seconds * needed <= fp32_seconds


def choose_precision(
    requested: str, device: torch.device, probe: Callable[[], MatmulProbe] | None = None
) -> PrecisionChoice:
    """The precision to train in for `requested` ("auto", "fp32", "bf16", "fp16") on `device`.

    `probe` returns this machine's CPU measurement (default: `cpu_matmul_probe`, cached).
    """
    probe = probe or cpu_matmul_probe
    if requested == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs CUDA (its GradScaler is CUDA-only); use bf16 on CPU")
    if requested == "fp32" or requested == "fp16":
        return PrecisionChoice(requested, f"{requested}, as configured")
    if requested not in ("auto", "bf16"):
        raise ConfigError(f"precision must be auto, fp32, bf16 or fp16, got {requested!r}")
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
        name = torch.cuda.get_device_name(device)
        if requested == "bf16":
            warning = None if supported else f"precision bf16: {name} has no native bf16; use auto or fp32"
            return PrecisionChoice("bf16", "bf16, as configured", warning)
        if supported:
            return PrecisionChoice("bf16", f"auto: {name} supports bf16")
        return PrecisionChoice("fp32", f"auto: {name} does not support bf16")
    if device.type != "cpu":
        if requested == "bf16":
            return PrecisionChoice("bf16", "bf16, as configured")
        return PrecisionChoice("fp32", f"auto: fp32 on {device.type} (bf16 is measured on CPU and CUDA only)")
    measured = probe()
    pays = bf16_pays(measured.fp32_seconds, measured.bf16_seconds)
    if requested == "bf16":
        warning = None
        if not pays:
            warning = (
                f"precision bf16 is {1 / measured.speedup:.1f}x slower than fp32 on this CPU "
                f"({measured.describe()}); set precision: auto (or fp32)"
                if measured.speedup < 1
                else f"precision bf16 is only {measured.speedup:.2f}x as fast as fp32 on this CPU "
                f"({measured.describe()}); precision: auto would train in fp32"
            )
        return PrecisionChoice("bf16", "bf16, as configured", warning, measured)
    if pays:
        reason = f"auto: bf16, since bf16 autocast is {measured.speedup:.1f}x faster than fp32 on this CPU"
    elif measured.speedup < 1:
        reason = (
            f"auto: fp32, since bf16 autocast is {1 / measured.speedup:.1f}x slower than fp32 on this CPU"
        )
    else:
        reason = (
            f"auto: fp32, since bf16 autocast is only {measured.speedup:.2f}x as fast as fp32 on this CPU"
        )
    return PrecisionChoice("bf16" if pays else "fp32", f"{reason} ({measured.describe()})", None, measured)


_warned: set[str] = set()


def warn_once(warning: str, log: Callable[[str], None]) -> None:
    """Log `warning` the first time this process meets it (a recipe warns before it measures a step, and
    the loop it then starts would say the same again)."""
    if warning not in _warned:
        _warned.add(warning)
        log(f"warning: {warning}")


# --- the CPU probe and its cache ---------------------------------------------------------------------------


def cpu_matmul_probe(
    cache_dir: str | os.PathLike | None = None, measure: Callable[[], tuple[float, float]] | None = None
) -> MatmulProbe:
    """This machine's probe: read from the cache, or measured (once; `measure`, default `time_matmul`)
    and written to it atomically."""
    path = Path(cache_dir) if cache_dir is not None else cache_directory()
    path = path / CACHE_FILE
    key = machine_key()
    cached = read_probe(path, key)
    if cached is not None:
        return cached
    fp32_seconds, bf16_seconds = (measure or time_matmul)()
    measured = MatmulProbe(key, fp32_seconds, bf16_seconds)
    write_probe(path, measured)
    return measured


def time_matmul(shape: tuple[int, int, int] = PROBE_SHAPE, repeats: int = 5) -> tuple[float, float]:
    """Fastest seconds of one (M, K) @ (K, N) matmul in fp32, then under bf16 autocast (after a warm-up
    each): other jobs on the machine only ever add time, so the fastest repeat is the machine's own speed.
    A bf16 repeat slower than twice the fp32 time ends the bf16 timing: it is slow enough to know."""
    m, k, n = shape
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=generator)
    b = torch.randn(k, n, generator=generator)

    def fastest_seconds(run: Callable[[], torch.Tensor], stop_above: float = float("inf")) -> float:
        run()  # warm-up: kernels chosen, buffers allocated
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            timings.append(time.perf_counter() - started)
            if timings[-1] > stop_above:
                break
        return min(timings)

    def bf16_matmul() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return a @ b

    fp32_seconds = fastest_seconds(lambda: a @ b)
    return fp32_seconds, fastest_seconds(bf16_matmul, stop_above=2 * fp32_seconds)


def machine_key() -> str:
    """What the probe's result depends on: the CPU, the torch build and how many threads it uses."""
    return f"{cpu_model()} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def read_probe(path: Path, key: str) -> MatmulProbe | None:
    """The cached probe of machine `key`; None when absent or unreadable (it is then measured again)."""
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))[key]
        return MatmulProbe(key, float(entry["fp32_seconds"]), float(entry["bf16_seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_probe(path: Path, probe: MatmulProbe) -> None:
    """Add `probe` to the cache file, written atomically (a temporary file renamed over it). A cache that
    cannot be written costs a new probe next time, nothing else."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(entries, dict):
            entries = {}
    except (OSError, ValueError):
        entries = {}
    entry = asdict(probe)
    entries[entry.pop("machine")] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(entries, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass
