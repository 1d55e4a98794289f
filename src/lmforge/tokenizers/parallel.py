"""`Tokenizer.encode_batch(..., num_workers=N)`: a large batch split over N processes.

Each worker gets the tokenizer once (inherited when the platform forks, pickled otherwise) and encodes
contiguous chunks; results come back in order. Sending encodings between processes costs time, so this
pays only on large batches: the benchmark (benchmarks/tokenizers.py) reports the speed-up.
"""

from __future__ import annotations

import multiprocessing
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lmforge.tokenizers.base import Encoding, Tokenizer

_worker_tokenizer: Tokenizer | None = None


def _start_worker(tokenizer: Tokenizer | None) -> None:
    global _worker_tokenizer
    if tokenizer is not None:
        _worker_tokenizer = tokenizer


def _encode_chunk(task: tuple[list, bool]) -> list[Encoding]:
    texts, add_special_tokens = task
    tok = _worker_tokenizer
    return [tok._encode_one(item, add_special_tokens) for item in texts]


def encode_in_processes(
    tok: Tokenizer, texts: list, add_special_tokens: bool, workers: int
) -> list[Encoding]:
    global _worker_tokenizer
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    chunk = max(1, -(-len(texts) // (workers * 4)))
    tasks = [(texts[i : i + chunk], add_special_tokens) for i in range(0, len(texts), chunk)]
    forked = context.get_start_method() == "fork"
    _worker_tokenizer = tok if forked else None
    try:
        with context.Pool(workers, initializer=_start_worker, initargs=(None if forked else tok,)) as pool:
            parts = pool.map(_encode_chunk, tasks)
    finally:
        _worker_tokenizer = None
    return [encoding for part in parts for encoding in part]
