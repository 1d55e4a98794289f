"""`Tokenizer.encode_batch(..., num_workers=N)`: a large batch split over N processes.

Each worker gets the tokenizer once (inherited when the platform forks, pickled otherwise) and encodes
contiguous chunks; results come back in order as raw byte arrays: ids and masks only. Tokens and offsets
are rebuilt in the parent, by encoding that one text again, only if someone reads them (a pre-training
pipeline reads ids only). With truncation on, offsets are sent too (overflowing windows). Sending results
between processes still costs time, so this pays only on large batches: benchmarks/tokenizers.py reports it.
"""

from __future__ import annotations

import gc
import multiprocessing
from array import array
from itertools import chain
from typing import TYPE_CHECKING

from lmforge.tokenizers.encoding import Encoding

if TYPE_CHECKING:
    from lmforge.tokenizers.base import Tokenizer

_worker_tokenizer: Tokenizer | None = None


def _start_worker(tokenizer: Tokenizer | None) -> None:
    global _worker_tokenizer
    if tokenizer is not None:
        _worker_tokenizer = tokenizer
    gc.disable()  # as in Tokenizer.encode_batch: encodings make no cycles; the collector would walk the cache


def _encode_chunk(task: tuple[list, bool]) -> list[tuple]:
    texts, add_special_tokens = task
    tok = _worker_tokenizer
    if tok.truncation is None:  # the common case: ids and masks only, tokens/offsets redone on demand
        return [pack_ids(tok._encode_one(item, add_special_tokens)) for item in texts]
    return [pack(tok._encode_one(item, add_special_tokens)) for item in texts]


def pack_ids(encoding: Encoding) -> tuple:
    """Ids and masks as raw byte arrays; the parent re-encodes the text only if tokens/offsets are read."""
    return (
        array("l", encoding.ids),
        bytes(encoding.type_ids),
        bytes(encoding.special_tokens_mask),
        bytes(255 if s is None else s for s in encoding.sequence_ids),
        (encoding.n_sequences, encoding._ranged),
    )


def pack(encoding: Encoding) -> tuple:
    """A whole unpadded Encoding as flat integer arrays (used with truncation, for overflowing windows).
    Tokens are not sent: each token is the vocabulary entry of its id, looked up when read."""
    return (
        array("l", encoding.ids),
        array("l", chain.from_iterable(encoding.offsets)),
        bytes(encoding.type_ids),
        bytes(encoding.special_tokens_mask),
        bytes(255 if s is None else s for s in encoding.sequence_ids),
        array("l", [-1 if w is None else w for w in encoding.word_ids]),
        (encoding.n_sequences, encoding._ranged),
        [pack(o) for o in encoding.overflowing],
    )


def unpack(packed: tuple, tok: Tokenizer, item, add_special_tokens: bool) -> Encoding:
    if len(packed) == 5:
        ids, type_ids, special, sequence_ids, (n_sequences, ranged) = packed
        overflowing: list = []
        parts = [("encode", tok, item, add_special_tokens)]
    else:
        ids, offsets, type_ids, special, sequence_ids, word_ids, (n_sequences, ranged), overflow = packed
        overflowing = [unpack(o, tok, None, add_special_tokens) for o in overflow]
        parts = [("ids", tok.id_to_token, ids, offsets, word_ids)]
    ids = ids.tolist()
    encoding = Encoding(
        ids,
        None,
        None,
        list(type_ids),
        [1] * len(ids),
        list(special),
        [None if s == 255 else s for s in sequence_ids],
        overflowing,
        parts=parts,
    )
    encoding.n_sequences, encoding._ranged = n_sequences, ranged
    return encoding


def encode_in_processes(
    tok: Tokenizer, texts: list, add_special_tokens: bool, workers: int
) -> list[Encoding]:
    """Encode `texts` on `workers` processes; the encodings come back in order, unpadded."""
    global _worker_tokenizer
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    chunk = max(1, -(-len(texts) // (workers * 4)))
    tasks = [(texts[i : i + chunk], add_special_tokens) for i in range(0, len(texts), chunk)]
    forked = context.get_start_method() == "fork"
    _worker_tokenizer = tok if forked else None
    if forked:
        gc.freeze()  # objects alive now stay out of the workers' collections (fewer copy-on-write pages)
    encodings: list[Encoding] = []
    try:
        with context.Pool(workers, initializer=_start_worker, initargs=(None if forked else tok,)) as pool:
            # imap keeps the order and lets this process unpack one chunk while the workers encode the next.
            for (chunk_texts, _), packed in zip(tasks, pool.imap(_encode_chunk, tasks), strict=True):
                encodings += [
                    unpack(p, tok, t, add_special_tokens) for p, t in zip(packed, chunk_texts, strict=True)
                ]
    finally:
        _worker_tokenizer = None
        if forked:
            gc.unfreeze()
    return encodings
