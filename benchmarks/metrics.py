"""lmforge.metrics against sacrebleu (corpus BLEU, 10k pairs) and rouge-score (ROUGE-1/2/L, 2k pairs).

Run: `python benchmarks/metrics.py` (needs ../shared/data and the dev extras). One process, the two
libraries interleaved (their order alternates), each repetition on sentences no earlier repetition saw,
medians reported. Every repetition also checks that the scores are identical (BLEU: every statistic;
ROUGE: every precision, recall and F1 of every pair). lmforge's Porter-stem cache is cleared before each
of its timed runs, so nothing carries over between calls. Writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("LMFORGE_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
sys.path.insert(0, str(HERE.parent / "src"))

import sacrebleu  # noqa: E402
from rouge_score import rouge_scorer  # noqa: E402

from lmforge.metrics import bleu, rouge  # noqa: E402
from lmforge.metrics.porter import stem  # noqa: E402

BLEU_PAIRS, BLEU_REPEATS = 10_000, 7
ROUGE_PAIRS, ROUGE_REPEATS = 2_000, 5
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def perturb(sentence: str, rng: random.Random) -> str:
    """A plausible system output: drop, swap and repeat some words."""
    words = [w for w in sentence.split() if rng.random() > 0.15]
    if len(words) > 2 and rng.random() < 0.3:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    if words and rng.random() < 0.2:
        words.insert(rng.randrange(len(words)), rng.choice(words))
    return " ".join(words)


def timed(function, *args):
    """(wall seconds, CPU seconds of this process, result). On a shared machine the CPU time is the
    steadier measure: it does not count the time other engineers' jobs held the core."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def bench_bleu() -> dict:
    """Tatoeba's Spanish sentences as references, perturbed copies as hypotheses; repetition k takes
    every BLEU_REPEATS-th line from offset k, so all repetitions see the same mix of lengths."""
    lines = (DATA / "tatoeba-spa-eng" / "spa.txt").read_text(encoding="utf-8").splitlines()
    spanish = [line.split("\t")[1] for line in lines]
    rng = random.Random(0)
    times: dict[str, list[float]] = {"sacrebleu": [], "lmforge": []}
    cpu_times: dict[str, list[float]] = {"sacrebleu": [], "lmforge": []}
    for k in range(BLEU_REPEATS):
        refs = spanish[k::BLEU_REPEATS][:BLEU_PAIRS]
        hyps = [perturb(r, rng) for r in refs]
        runs = [("sacrebleu", sacrebleu.corpus_bleu), ("lmforge", bleu)]
        results = {}
        for name, call in runs if k % 2 == 0 else runs[::-1]:
            seconds, cpu_seconds, results[name] = timed(call, hyps, [refs])
            times[name].append(seconds)
            cpu_times[name].append(cpu_seconds)
        ours, theirs = results["lmforge"], results["sacrebleu"]
        same = (ours.score, ours.counts, ours.totals, ours.precisions, ours.bp, ours.sys_len, ours.ref_len) == (
            theirs.score, theirs.counts, theirs.totals, theirs.precisions, theirs.bp, theirs.sys_len, theirs.ref_len
        )  # fmt: skip
        if not same:
            raise SystemExit(f"BLEU differs on repetition {k}: {ours} vs {theirs}")
        print(f"bleu  rep {k}: sacrebleu {times['sacrebleu'][-1]:.3f}s  lmforge {times['lmforge'][-1]:.3f}s  "
              f"BLEU {ours.score:.2f} (identical)", flush=True)  # fmt: skip
    return {"times": times, "cpu_times": cpu_times, "score": ours.score}


def bench_rouge(use_stemmer: bool) -> dict:
    """XSum: each article sentence (a lead-style extractive summary) against the reference summary;
    repetition k takes every ROUGE_REPEATS-th pair from offset k."""
    pairs = []
    for line in (DATA / "xsum" / "validation-1000.jsonl").open(encoding="utf-8"):
        example = json.loads(line)
        for sentence in example["document"].split("\n"):
            if sentence.strip():
                pairs.append((sentence, example["summary"]))
    times: dict[str, list[float]] = {"rouge-score": [], "lmforge": []}
    cpu_times: dict[str, list[float]] = {"rouge-score": [], "lmforge": []}
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)

    def ours(chunk):
        stem.cache_clear()  # no stems carried over from an earlier call
        return [rouge(h, r, use_stemmer, rouge_types=ROUGE_TYPES) for h, r in chunk]

    def theirs(chunk):
        return [scorer.score(r, h) for h, r in chunk]

    for k in range(ROUGE_REPEATS):
        chunk = pairs[k::ROUGE_REPEATS][:ROUGE_PAIRS]
        assert len(chunk) == ROUGE_PAIRS, "not enough XSum sentences for distinct repetitions"
        runs = [("rouge-score", theirs), ("lmforge", ours)]
        results = {}
        for name, call in runs if k % 2 == 0 else runs[::-1]:
            seconds, cpu_seconds, results[name] = timed(call, chunk)
            times[name].append(seconds)
            cpu_times[name].append(cpu_seconds)
        if results["lmforge"] != results["rouge-score"]:
            raise SystemExit(f"ROUGE differs on repetition {k}")
        mean_f = statistics.fmean(s["rougeL"].fmeasure for s in results["lmforge"])
        print(f"rouge rep {k} (stem={use_stemmer}): rouge-score {times['rouge-score'][-1]:.3f}s  "
              f"lmforge {times['lmforge'][-1]:.3f}s  mean ROUGE-L F {mean_f:.4f} (identical)", flush=True)  # fmt: skip
    return {"times": times, "cpu_times": cpu_times, "mean_rougeL_f": mean_f}


def write_results(section: str) -> None:
    path = HERE / "RESULTS.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    header = "## metrics"
    if header in text:
        start = text.index(header)
        end = text.find("\n## ", start + len(header))
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> int:
    load_before = os.getloadavg()
    bleu_result = bench_bleu()
    rouge_plain = bench_rouge(False)
    rouge_stem = bench_rouge(True)
    load_after = os.getloadavg()

    def row(task, reference, result, ref_name, pairs, check):
        times, cpu_times = result["times"], result["cpu_times"]
        ref_median, our_median = statistics.median(times[ref_name]), statistics.median(times["lmforge"])
        cpu_ratio = statistics.median(cpu_times[ref_name]) / statistics.median(cpu_times["lmforge"])
        return (
            f"| {task} | {reference} | {pairs / ref_median:,.0f} pairs/s ({ref_median:.3f} s) | "
            f"{pairs / our_median:,.0f} pairs/s ({our_median:.3f} s) | **{ref_median / our_median:.1f}×** | "
            f"{cpu_ratio:.1f}× | {check} |"
        )

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join([
        "## metrics (`benchmarks/metrics.py`)",
        "",
        f"{now} · {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, sacrebleu {sacrebleu.__version__}, rouge-score 0.1.2 · "
        f"**shared machine**: 4 other engineers were working on the same 2 cores (load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after), so absolute times are noisy; the ratio is "
        "what to read. Speed-ups are ratios of medians, of wall-clock time and of this process's CPU time "
        "(the steadier one under load). Interleaved runs (order alternating), every repetition on sentences "
        "no earlier one saw, no caching across calls (lmforge's stem cache cleared before each run).",
        "",
        "| task | reference | reference speed (median) | lmforge speed (median) | speed-up (wall) | speed-up (CPU time) | scores |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        row(f"corpus BLEU (13a, exp), Tatoeba es, {BLEU_PAIRS:,} pairs × {BLEU_REPEATS}", "`sacrebleu.corpus_bleu`",
            bleu_result, "sacrebleu", BLEU_PAIRS, "identical: score, counts, totals, precisions, BP, lengths"),
        row(f"ROUGE-1/2/L, XSum, {ROUGE_PAIRS:,} pairs × {ROUGE_REPEATS}, no stemming", "`RougeScorer.score`",
            rouge_plain, "rouge-score", ROUGE_PAIRS, "identical P/R/F of every pair"),
        row(f"ROUGE-1/2/L, XSum, {ROUGE_PAIRS:,} pairs × {ROUGE_REPEATS}, Porter stemming", "`RougeScorer.score`",
            rouge_stem, "rouge-score", ROUGE_PAIRS, "identical P/R/F of every pair"),
        "",
    ])  # fmt: skip
    write_results(section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
