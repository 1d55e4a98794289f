"""Train the four kinds on the same text and measure them on a held-out part: the course's trade-off.

The smaller the token, the longer the sequence: characters need no [UNK] but make long sequences; words
make short sequences but a huge vocabulary and [UNK]s; BPE and WordPiece sit between.

    rows = compare_kinds(train_docs, held_out_docs, vocab_size=4096)
    print(format_table(rows))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from lmforge.tokenizers import KINDS, Tokenizer


@dataclass
class ComparisonRow:
    kind: str
    vocab_size: int  # ids in the trained vocabulary
    tokens_per_word: float  # held-out tokens / whitespace-separated words
    bytes_per_token: float  # held-out UTF-8 bytes / tokens: how much text one token carries
    held_out_tokens: int  # length of the held-out text in tokens
    unk_rate: float  # share of held-out tokens that are [UNK]
    train_seconds: float
    encode_mb_per_s: float  # held-out UTF-8 megabytes per second, one thread


def measure(tok: Tokenizer, held_out: Sequence[str], train_seconds: float) -> ComparisonRow:
    started = time.perf_counter()
    encodings = tok.encode_batch(held_out, add_special_tokens=False)
    seconds = max(time.perf_counter() - started, 1e-9)
    n_tokens = sum(len(e.ids) for e in encodings)
    n_bytes = sum(len(t.encode("utf-8")) for t in held_out)
    n_words = sum(len(t.split()) for t in held_out)
    unk_id = tok.token_to_id("[UNK]")
    unknown = sum(e.ids.count(unk_id) for e in encodings) if unk_id is not None else 0
    return ComparisonRow(
        kind=tok.kind,
        vocab_size=tok.vocab_size,
        tokens_per_word=n_tokens / max(n_words, 1),
        bytes_per_token=n_bytes / max(n_tokens, 1),
        held_out_tokens=n_tokens,
        unk_rate=unknown / max(n_tokens, 1),
        train_seconds=train_seconds,
        encode_mb_per_s=n_bytes / seconds / 1e6,
    )


def compare_kinds(
    train_documents: Callable[[], Iterable[str]],
    held_out: Sequence[str],
    vocab_size: int,
    kinds: Sequence[str] = ("char", "word", "bpe", "wordpiece"),
    min_frequency: int = 2,
    progress: Callable[[str], None] | None = None,
) -> list[ComparisonRow]:
    """Train each kind on `train_documents()` (a fresh iterator per kind) and measure it on `held_out`.

    Each kind gets the same `vocab_size` (the character tokenizer keeps at most that many characters).
    """
    rows = []
    for kind in kinds:
        cls = KINDS[kind]
        started = time.perf_counter()
        tok = cls.train(
            train_documents(), vocab_size=vocab_size, min_frequency=1 if kind == "char" else min_frequency
        )
        row = measure(tok, held_out, time.perf_counter() - started)
        rows.append(row)
        if progress is not None:
            progress(f"{kind}: trained in {row.train_seconds:.1f}s")
    return rows


def format_table(rows: Sequence[ComparisonRow]) -> str:
    header = (
        "kind",
        "vocab",
        "tokens/word",
        "bytes/token",
        "held-out tokens",
        "[UNK] rate",
        "train s",
        "encode MB/s",
    )
    lines = [
        (
            row.kind,
            f"{row.vocab_size:,}",
            f"{row.tokens_per_word:.2f}",
            f"{row.bytes_per_token:.2f}",
            f"{row.held_out_tokens:,}",
            f"{row.unk_rate:.2%}",
            f"{row.train_seconds:.1f}",
            f"{row.encode_mb_per_s:.2f}",
        )
        for row in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    out = [
        "  ".join(
            h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    ]
    for line in lines:
        out.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    return "\n".join(out)
