"""Embedding quality, lmforge against gensim, over many seeds: is a gap a difference or seed noise?

`benchmarks/embeddings.py` compares speed and quality with 3-5 seeds; one seed moves WordSim ρ by up to
0.03, so gaps under ~0.01 flip between runs. This script trains only for quality, with more seeds and
one worker on each side: with one thread neither side has Hogwild races, so each (library, seed) run is
reproducible and the spread is the seed's alone. Same corpus and settings as embeddings.py otherwise
(WikiText-2 train, dim 100, window 5, 5 negatives, min count 5, sample 1e-3, 5 epochs). Per method and
metric it reports the means, the difference lmforge − gensim, its standard error and Welch's t.

    python benchmarks/embeddings_seeds.py [--seeds 10] [--methods skipgram,cbow,fasttext] [--workers 1] [--jobs 1]

`--jobs 2` trains two runs at once in separate processes: one-worker runs are reproducible, so the scores
are those of `--jobs 1`, in about half the time on two cores (this script does not report speed).

Writes the "Embedding quality over seeds" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone

import embeddings as bench  # benchmarks/embeddings.py: the same runs and scoring (and src/ on sys.path)
from common import RESULTS, write_section

from lmforge.embeddings import Word2VecConfig, encode_corpus, tokenize_lines, train_word2vec

HEADING = "## Embedding quality over seeds (`benchmarks/embeddings_seeds.py`)"
METRICS = (("analogy", "analogy acc", 100.0, "{:.2f}%"), ("wordsim", "WordSim-353 ρ", 1.0, "{:.3f}"),
           ("simlex", "SimLex-999 ρ", 1.0, "{:.3f}"))  # fmt: skip


def welch(a: list[float], b: list[float]) -> tuple[float, float]:
    """(standard error of mean(a) − mean(b), Welch's t)."""
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    return se, (statistics.fmean(a) - statistics.fmean(b)) / se if se > 0 else float("inf")


def cell(values: list[float], fmt: str) -> str:
    return f"{fmt.format(statistics.fmean(values))} [{fmt.format(min(values))}–{fmt.format(max(values))}]"


LIBRARIES = ("lmforge", "gensim")
_STATE: dict = {}  # per process: the tokenized sentences and the encoded corpus


def _load(corpus: str, workers: int) -> None:
    """Read and encode the corpus once per process and compile the kernels (a process-pool initializer)."""
    bench.SETTINGS["workers"] = workers
    _STATE["sentences"] = list(tokenize_lines([corpus]))
    _STATE["corpus"] = encode_corpus(_STATE["sentences"], bench.SETTINGS["min_count"])
    warm_up = encode_corpus(_STATE["sentences"][:200], 1)
    train_word2vec(warm_up, Word2VecConfig(epochs=1, workers=workers, progress=False))  # JIT, not timed


def _run(task: tuple[str, str, int]) -> dict:
    """Train one (method, library, seed) and score it."""
    method, library, seed = task
    if library == "lmforge":
        _, vectors = bench.run_lmforge(method, _STATE["corpus"], seed, None)
    else:
        _, vectors = bench.run_gensim(method, _STATE["sentences"], seed)
    return bench.scores(vectors)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus", default=str(bench.REPO.parent / "shared" / "data" / "wikitext-2" / "train.txt")
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--methods", default="skipgram,cbow,fasttext")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs at once, in separate processes (scores do not change)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.jobs > 1 and args.workers > 1:
        parser.error(
            "--jobs > 1 needs --workers 1: only one-worker runs give the same scores run side by side"
        )
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 (a spread needs two runs)")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - {"skipgram", "cbow", "fasttext"})
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)} (choose from skipgram, cbow, fasttext)")

    begun = time.perf_counter()
    load_before = os.getloadavg()
    tasks = [
        (m, library, seed) for m in methods for seed in range(1, args.seeds + 1) for library in LIBRARIES
    ]
    results: dict[tuple[str, str], dict[int, dict]] = {}

    def record(task: tuple[str, str, int], row: dict) -> None:
        method, library, seed = task
        results.setdefault((method, library), {})[seed] = row
        print(
            f"{method:<9} {library:<8} seed {seed:>2}: analogy {row['analogy']:.2%}  "
            f"wordsim {row['wordsim']:.3f}  simlex {row['simlex']:.3f}",
            flush=True,
        )

    _load(args.corpus, args.workers)
    if args.jobs == 1:  # interleaved, in this process
        for task in tasks:
            record(task, _run(task))
    else:  # one-worker runs are reproducible, so running several at once changes no score
        context = multiprocessing.get_context("spawn")  # numba's thread pool does not survive fork
        with ProcessPoolExecutor(
            args.jobs, context, initializer=_load, initargs=(args.corpus, args.workers)
        ) as pool:
            for task, row in zip(tasks, pool.map(_run, tasks), strict=True):
                record(task, row)
    corpus = _STATE["corpus"]
    minutes = (time.perf_counter() - begun) / 60
    load_after = os.getloadavg()

    import gensim
    import numba

    lines = [
        HEADING,
        "",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · {os.cpu_count()} cores (1-minute load average "
        f"{load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end; {minutes:.0f} minutes) · numba "
        f"{numba.__version__}, gensim {gensim.__version__}.",
        "",
        f"WikiText-2 train ({corpus.vocab.raw_words:,} words), the settings of `benchmarks/embeddings.py`, but "
        f"{args.workers} worker(s) on each side and seeds 1–{args.seeds} (FastText: skip-gram). Mean over the "
        "seeds; Δ = lmforge − gensim with its standard error; t = Welch's t (|t| < 2: not distinguishable "
        "from seed noise).",
        "",
        "| method | metric | lmforge mean [min–max] | gensim mean [min–max] | Δ ± s.e. | t |",
        "|---|---|---|---|---:|---:|",
    ]
    for method in methods:
        for key, name, scale, fmt in METRICS:
            ours = [r[key] * scale for r in results[(method, "lmforge")].values()]
            theirs = [r[key] * scale for r in results[(method, "gensim")].values()]
            se, t = welch(ours, theirs)
            delta = statistics.fmean(ours) - statistics.fmean(theirs)
            lines.append(
                f"| {method} | {name} | {cell(ours, fmt)} | {cell(theirs, fmt)} | {delta:+.3f} ± {se:.3f} | {t:+.2f} |"
            )
    table = "\n".join(lines) + "\n"
    print(table)
    if not args.no_write:
        write_section(HEADING, table, before="## Generation (`benchmarks/generate.py`)")
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
