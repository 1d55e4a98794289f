"""lmforge.embeddings against gensim on WikiText-2 (train split): speed and quality, side by side.

Same corpus, tokens and settings for both (one sentence per line, lower-cased, whitespace split; dim 100,
window 5, 5 negatives, min count 5, sample 1e-3, 5 epochs, 2 threads). Runs are interleaved
(lmforge, gensim, lmforge, gensim, ...) so machine load hits both alike. Both sides are scored by
lmforge's evaluation, which tests/test_embeddings.py proves equal to gensim's evaluate_word_analogies /
evaluate_word_pairs. Time is the training call only (vocabulary building excluded on both sides);
words/s = corpus tokens × epochs / time, as gensim's "raw words".

    python benchmarks/embeddings.py [--seeds 3] [--fasttext-seeds 3] [--corpus PATH]

Writes the "Embeddings" section of benchmarks/RESULTS.md and saves lmforge's seed-1 skip-gram and
FastText vectors under runs/embeddings/ (for docs/embeddings.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

from common import RESULTS, write_section  # noqa: E402

from lmforge.embeddings import (  # noqa: E402
    FastTextConfig,
    GloVeConfig,
    Word2VecConfig,
    WordVectors,
    encode_corpus,
    gensim_test_file,
    tokenize_lines,
    train_fasttext,
    train_glove,
    train_word2vec,
)
from lmforge.embeddings.vectors import evaluate_analogies, evaluate_pairs  # noqa: E402

SETTINGS = dict(dim=100, window=5, negative=5, min_count=5, sample=1e-3, epochs=5, workers=2, device="cpu")


def scores(vectors: WordVectors) -> dict[str, float]:
    analogies = evaluate_analogies(vectors, gensim_test_file("questions-words.txt"))
    wordsim = evaluate_pairs(vectors, gensim_test_file("wordsim353.tsv"))
    simlex = evaluate_pairs(vectors, gensim_test_file("simlex999.txt"))
    return {
        "analogy": analogies.accuracy,
        "analogy_oov": analogies.oov_ratio,
        "wordsim": wordsim.spearman,
        "wordsim_oov": wordsim.oov_ratio,
        "simlex": simlex.spearman,
    }


def from_gensim(keyed) -> WordVectors:
    return WordVectors(list(keyed.index_to_key), keyed.vectors)


def run_lmforge(method: str, corpus, seed: int, out: Path | None):
    common = dict(SETTINGS, seed=seed, progress=False)
    if method == "fasttext":
        trained = train_fasttext(corpus, FastTextConfig(method="skipgram", **common))
        if out:
            trained.model.save(out / "fasttext.bin")
    else:
        trained = train_word2vec(corpus, Word2VecConfig(method=method, **common))
        if out:
            trained.vectors.save(out / f"{method}.bin")
    return trained.stats.seconds, trained.vectors


def run_gensim(method: str, sentences, seed: int):
    from gensim.models import FastText, Word2Vec

    s = SETTINGS
    common = dict(
        vector_size=s["dim"], window=s["window"], negative=s["negative"], min_count=s["min_count"],
        sample=s["sample"], workers=s["workers"], seed=seed, sg=0 if method == "cbow" else 1,
    )  # fmt: skip
    model = (
        FastText(min_n=3, max_n=6, bucket=2_000_000, **common) if method == "fasttext" else Word2Vec(**common)
    )
    model.build_vocab(sentences)
    started = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=s["epochs"])
    return time.perf_counter() - started, from_gensim(model.wv)


def mean(values):
    return statistics.fmean(values)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default=str(REPO.parent / "shared" / "data" / "wikitext-2" / "train.txt"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fasttext-seeds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    load_before = os.getloadavg()
    begun = time.perf_counter()
    sentences = list(tokenize_lines([args.corpus]))
    corpus = encode_corpus(sentences, SETTINGS["min_count"])
    raw = corpus.vocab.raw_words * SETTINGS["epochs"]
    print(
        f"corpus {args.corpus}: {corpus.vocab.raw_words:,} words, vocabulary {len(corpus.vocab):,}",
        flush=True,
    )
    out = REPO / "runs" / "embeddings"
    out.mkdir(parents=True, exist_ok=True)
    train_word2vec(encode_corpus(sentences[:200], 1), Word2VecConfig(epochs=1, progress=False))  # JIT warm-up

    results: dict[tuple[str, str], list[dict]] = {}
    plan = [("skipgram", args.seeds), ("cbow", args.seeds), ("fasttext", args.fasttext_seeds)]
    for method, seeds in plan:
        for seed in range(1, seeds + 1):
            for library in ("lmforge", "gensim"):  # interleaved
                if library == "lmforge":
                    seconds, vectors = run_lmforge(method, corpus, seed, out if seed == 1 else None)
                else:
                    seconds, vectors = run_gensim(method, sentences, seed)
                row = {"seconds": seconds, "words_per_second": raw / seconds, **scores(vectors)}
                results.setdefault((method, library), []).append(row)
                print(
                    f"{method:<9} {library:<8} seed {seed}: {seconds:6.1f}s {row['words_per_second']:>9,.0f} w/s  "
                    f"analogy {row['analogy']:.2%}  wordsim {row['wordsim']:.3f}  simlex {row['simlex']:.3f}",
                    flush=True,
                )
    glove = train_glove(
        corpus,
        GloVeConfig(
            dim=100, window=5, min_count=5, epochs=25, x_max=10, workers=2, progress=False, device="cpu"
        ),
    )
    glove.vectors.save(out / "glove.bin")
    glove_row = {
        "seconds": glove.stats.seconds,
        "words_per_second": glove.stats.words_per_second,
        **scores(glove.vectors),
    }
    results[("glove", "lmforge")] = [glove_row]
    print(
        f"glove     lmforge: {glove_row['seconds']:.1f}s analogy {glove_row['analogy']:.2%} wordsim {glove_row['wordsim']:.3f}"
    )
    load_after = os.getloadavg()
    args.minutes = (time.perf_counter() - begun) / 60

    table = format_results(results, args, corpus, load_before, load_after)
    print(table)
    if not args.no_write:
        write_section("## Embeddings (`benchmarks/embeddings.py`)", table)
        print(f"wrote {RESULTS}")
    return 0


def format_results(results, args, corpus, load_before, load_after) -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    import gensim
    import numba

    lines = [
        "## Embeddings (`benchmarks/embeddings.py`)",
        "",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · {cpu}, {os.cpu_count()} cores "
        f"(1-minute load average {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end; "
        f"{args.minutes:.0f} minutes in all) · "
        f"Python {platform.python_version()}, numba {numba.__version__}, gensim {gensim.__version__}.",
        "",
        f"WikiText-2 train ({corpus.vocab.raw_words:,} words, vocabulary {len(corpus.vocab):,} at min count 5), "
        "lower-cased; dim 100, window 5, 5 negatives, sample 1e-3, 5 epochs, 2 threads on both sides; runs "
        "interleaved; means over seeds (skip-gram and CBOW: "
        f"{args.seeds} seeds each, FastText: {args.fasttext_seeds}). Analogy: Google set, 3CosAdd, "
        "case-insensitive; ρ: Spearman. Scored by lmforge's evaluation (equal to gensim's, see tests).",
        "",
        "| method | library | time s (median) | words/s (median) | speed ratio | analogy acc | WordSim-353 ρ | SimLex-999 ρ | analogy OOV | WordSim OOV |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method in ("skipgram", "cbow", "fasttext", "glove"):
        reference = results.get((method, "gensim"))
        for library in ("lmforge", "gensim"):
            rows = results.get((method, library))
            if not rows:
                continue
            seconds = statistics.median(r["seconds"] for r in rows)
            speed = statistics.median(r["words_per_second"] for r in rows)
            ratio = ""
            if reference:
                ratio = f"{speed / statistics.median(r['words_per_second'] for r in reference):.2f}×"
            name = method if method != "glove" else "glove (25 passes over the counts)"
            lines.append(
                f"| {name} | {library} | {seconds:.1f} | {speed:,.0f} | {ratio} | {mean(r['analogy'] for r in rows):.2%} "
                f"| {mean(r['wordsim'] for r in rows):.3f} | {mean(r['simlex'] for r in rows):.3f} "
                f"| {rows[0]['analogy_oov']:.1f}% | {rows[0]['wordsim_oov']:.1f}% |"
            )
    lines += ["", "Per seed:", ""]
    for (method, library), rows in results.items():
        cells = ", ".join(f"{r['seconds']:.1f}s / {r['analogy']:.2%} / {r['wordsim']:.3f}" for r in rows)
        lines.append(f"- {method} {library} (time / analogy / WordSim ρ): {cells}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
