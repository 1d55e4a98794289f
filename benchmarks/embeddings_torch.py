"""The PyTorch training path of lmforge.embeddings against the numba path: speed, side by side.

The first `--words` words of WikiText-2 train (one sentence per line, lower-cased), dim 100, window 5,
5 negatives, min count 5, sample 1e-3, 1 epoch, `--threads` threads for both (numba threads, torch
intra-op threads). Runs are interleaved (numba, torch, numba, torch, ...) so machine load hits both
alike; the table gives medians and the torch / numba ratio of words/s. With `--device cuda` the torch side
runs on the GPU instead of the CPU. Prints a markdown table; writes nothing.

    python benchmarks/embeddings_torch.py [--words 500000] [--repeats 3] [--methods skipgram,cbow,fasttext]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

from lmforge.embeddings import (  # noqa: E402
    FastTextConfig,
    Word2VecConfig,
    encode_corpus,
    train_fasttext,
    train_word2vec,
)

SETTINGS = dict(dim=100, window=5, negative=5, min_count=5, sample=1e-3, epochs=1, progress=False)


def first_words(path: Path, limit: int) -> list[list[str]]:
    sentences, words = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if words >= limit:
                break
            if line.split():
                sentences.append(line.lower().split())
                words += len(sentences[-1])
    return sentences


def train(method: str, corpus, backend: str, device: str, threads: int):
    config = dict(SETTINGS, workers=threads, backend=backend, device=device)
    if method == "fasttext":
        return train_fasttext(corpus, FastTextConfig(**config)).stats
    return train_word2vec(corpus, Word2VecConfig(method=method, **config)).stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--words", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", default="skipgram,cbow,fasttext")
    parser.add_argument("--device", default="cpu", help="where the torch side runs (cpu, cuda, ...)")
    parser.add_argument("--corpus", default=str(REPO.parent / "shared" / "data" / "wikitext-2" / "train.txt"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    corpus = encode_corpus(first_words(Path(args.corpus), args.words), SETTINGS["min_count"])
    print(f"corpus: {corpus.vocab.raw_words:,} words, vocabulary {len(corpus.vocab):,}", flush=True)
    for method in args.methods.split(","):  # compile the numba kernels before timing
        train(method, encode_corpus([["a", "b"]] * 5, 1), "numba", "cpu", args.threads)
    rows = []
    for method in args.methods.split(","):
        runs: dict[str, list[float]] = {"numba": [], "torch": []}
        for _ in range(args.repeats):
            for backend, device in (("numba", "cpu"), ("torch", args.device)):  # interleaved
                stats = train(method, corpus, backend, device, args.threads)
                runs[backend].append(stats.words_per_second)
                print(f"{method:<9} {backend:<6} {stats.seconds:6.2f}s {stats.words_per_second:>11,.0f} w/s",
                      flush=True)  # fmt: skip
        numba, torch_path = statistics.median(runs["numba"]), statistics.median(runs["torch"])
        rows.append((method, numba, torch_path))
    print(f"\n| method | numba words/s (median) | torch on {args.device} words/s (median) | torch / numba |")
    print("|---|---:|---:|---:|")
    for method, numba, torch_path in rows:
        print(f"| {method} | {numba:,.0f} | {torch_path:,.0f} | {torch_path / numba:.3f}× |")


if __name__ == "__main__":
    main()
