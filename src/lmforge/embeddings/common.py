"""What the static-embedding trainers share: training statistics, the sampling tables, Hogwild
chunking, the progress bar and which device trains.

word2vec (numba kernels), fasttext, glove and torch_train (the PyTorch path) all build on this module and
never on each other's internals, so the package has no import cycle. No torch import at module level.
"""

from __future__ import annotations

import functools
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np

from lmforge.errors import ConfigError

MAX_EXP = 6.0  # beyond ±6 the sigmoid is 0 or 1 to 3 digits: the pair is saturated and takes no step,
# right or wrong, as gensim does (word2vec.c gives a wrong saturated pair the full step, ±alpha). Paired
# over 21 seeds (same seed, same random streams; per-seed scores correlate at 0.96-1.00), CBOW scored higher
# with gensim's rule on all three measures (paired t +2.6 analogies, +4.2 WordSim, +7.8 SimLex); skip-gram
# barely meets a saturated pair. See benchmarks/RESULTS.md, "Embeddings".
CHUNK_WORDS = 10_000  # words per Hogwild work item (gensim's batch_words)
BACKENDS = ("auto", "numba", "torch")
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


@dataclass
class TrainStats:
    seconds: float  # wall time of the epochs (vocabulary building not included)
    raw_words: int  # corpus tokens × epochs, as gensim counts "raw words"
    effective_words: int  # words actually trained on (in vocabulary, kept by subsampling)
    workers: int  # CPU threads (1 on a GPU)
    backend: str = "numba"  # "numba" (CPU kernels) or "torch"
    device: str = "cpu"  # where it trained: "cpu" or e.g. "cuda:0 (NVIDIA H100 80GB HBM3)"

    @property
    def words_per_second(self) -> float:
        return self.raw_words / self.seconds if self.seconds > 0 else float("inf")


# --- sampling tables and chunks ------------------------------------------------------------------


def alias_table(counts: np.ndarray, power: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias tables for drawing word ids ∝ count^power: (probability float32, alias int32).

    Draw: pick a column c uniformly; keep c with probability[c], else take alias[c]. Every column holds
    exactly 1/V of the mass, split between c and its alias (Vose's construction).

    >>> probability, alias = alias_table(np.array([3, 1]), power=1.0)
    >>> probability.tolist(), alias.tolist()
    ([1.0, 0.5], [0, 0])
    """
    weights = np.asarray(counts, dtype=np.float64) ** power
    scaled = weights * len(weights) / weights.sum()  # mean 1
    probability = np.ones(len(weights), dtype=np.float64)
    alias = np.arange(len(weights), dtype=np.int32)
    small = [i for i, x in enumerate(scaled) if x < 1.0]
    large = [i for i, x in enumerate(scaled) if x >= 1.0]
    while small and large:
        low, high = small.pop(), large.pop()
        probability[low] = scaled[low]
        alias[low] = high
        scaled[high] -= 1.0 - scaled[low]
        (small if scaled[high] < 1.0 else large).append(high)
    return probability.astype(np.float32), alias


def keep_probability(counts: np.ndarray, sample: float) -> np.ndarray:
    """(V,) float32: probability to keep each occurrence of a word, (sqrt(f/s) + 1)·s/f capped at 1."""
    if sample <= 0:
        return np.ones(len(counts), dtype=np.float32)
    threshold = sample * float(np.sum(counts))
    counts = np.asarray(counts, dtype=np.float64)
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1) * threshold / counts).astype(np.float32)


def chunk_sentences(starts: np.ndarray, chunk_words: int = CHUNK_WORDS) -> np.ndarray:
    """Sentence boundaries of work items of about `chunk_words` words: (K + 1,) int64.

    >>> chunk_sentences(np.array([0, 4, 8, 9, 20]), chunk_words=5).tolist()
    [0, 2, 4]
    """
    bounds = [0]
    count = len(starts) - 1
    target = chunk_words
    for s in range(1, count + 1):
        if starts[s] >= target or s == count:
            bounds.append(s)
            target = starts[s] + chunk_words
    return np.array(bounds if count else [0], dtype=np.int64)


def init_input_vectors(rows: int, dim: int, seed: int, scale: float) -> np.ndarray:
    """(rows, dim) float32 uniform in ±scale: small, so that early updates are not noise-dominated."""
    rng = np.random.default_rng(seed)
    return ((rng.random((rows, dim), dtype=np.float32) * 2 - 1) * scale).astype(np.float32)


# --- threads, devices, progress ------------------------------------------------------------------


@contextmanager
def torch_threads(count: int | None):
    """Run the block with `count` torch intra-op threads (None: as they are), then put the count back."""
    import torch

    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def keeps_torch_threads(function):
    """Decorate a trainer that sets numba's thread count: numba's OpenMP layer and torch share one OpenMP
    runtime, so `numba.set_num_threads(n)` also sets torch's intra-op count to n. The trainer puts torch's
    count back when it ends, so training word vectors never changes how many threads later torch work uses
    (it did: a run under OMP_NUM_THREADS=1 went on with 2 torch threads after its static vectors)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        torch = sys.modules.get("torch")  # not imported here: only restored where it is already in use
        before = torch.get_num_threads() if torch is not None else None
        try:
            return function(*args, **kwargs)
        finally:
            if before is not None:
                torch.set_num_threads(before)

    return wrapper


def resolve_workers(workers: int) -> int:
    """0 = every core numba may use."""
    available = numba.config.NUMBA_NUM_THREADS
    return available if workers == 0 else min(workers, available)


def check_device(device: str, backend: str) -> None:
    """Config check shared by the three trainers' configs (no torch import)."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if not DEVICE_PATTERN.fullmatch(device):
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
    if backend == "numba" and device not in ("auto", "cpu"):
        raise ConfigError(f"backend 'numba' trains on CPU threads; device {device!r} needs backend torch")


def select_device(device: str = "auto", backend: str = "auto") -> str | None:
    """None = the numba CPU kernels; otherwise the torch device to train on.

    backend auto: device auto = cuda when torch sees one, else numba; cpu = numba; cuda/cuda:N/mps = torch.
    backend torch: the same devices, with cpu (and auto without a GPU) trained by torch on CPU.
    backend numba: CPU threads only.

    >>> select_device("cpu"), select_device("cpu", "torch")
    (None, 'cpu')
    """
    check_device(device, backend)
    if backend == "numba" or (device == "cpu" and backend == "auto"):
        return None
    if device == "cpu":
        return "cpu"
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "cpu" if backend == "torch" else None
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {device!r}: torch {torch.__version__} sees no CUDA GPU; use device cpu "
                "(numba, the fast CPU path) or auto"
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps': torch sees no Apple GPU; use device cpu or auto")
    return device


def device_name(device: str) -> str:
    """'cuda' -> 'cuda:0 (NVIDIA H100 ...)', 'cpu' -> 'cpu': what the progress label and stats show."""
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device


def progress_bar(total: int, label: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="word", unit_scale=True, leave=False, smoothing=0.1)
