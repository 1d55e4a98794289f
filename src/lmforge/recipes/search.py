"""`lmforge search`: the chunks of an index that best match a query.

  lmforge search --index idx "who founded the city?"
  lmforge search --index idx --mode hybrid --fusion sum --alpha 0.7 -k 5 --json "who founded the city?"
  lmforge search --index idx --ann "who founded the city?"

Modes: dense (cosine similarity of the query's embedding to every chunk's, exact; `--ann`: through the
index's HNSW graph, whose recall@10 against exact search the build measured, printed first), bm25, hybrid (reciprocal
rank fusion, k=60, of both modes' 100 best; `--fusion sum`: alpha · dense + (1 - alpha) · bm25 of min-max
normalised scores). Each result: rank, score, document id, title, the chunk's character offsets in its
document, and its text. `--json`: {"object": "list", "data": [{"rank", "score", "doc_id", "chunk_id",
"title", "text", "start", "end"}]}. The library behind it is `lmforge.search`.
"""

from __future__ import annotations

import argparse
import json

from lmforge.recipes import Command, retrieval_options


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help="what to search for")
    retrieval_options(parser, k=10)
    parser.add_argument("--json", action="store_true", help="one JSON object with the results")


def run(args: argparse.Namespace) -> int:
    from lmforge.search import Index, search
    from lmforge.search.retrieval import check_query

    check_query(args.query, args.mode, args.fusion, args.alpha)
    index = Index.open(args.index, embedder=args.embedder)
    hits = search(
        index, args.query, mode=args.mode, k=args.k, fusion=args.fusion, alpha=args.alpha, ann=args.ann
    )
    if args.json:
        print(json.dumps({"object": "list", "data": [hit.to_dict() for hit in hits]}, ensure_ascii=False))
        return 0
    if args.ann:  # the approximation's price, measured when the index was built
        ann = index.manifest["ann"]
        print(
            f"dense through {ann['kind'].upper()}: recall@10 against exact search {ann['recall@10']:.3f} "
            f"(measured at build time on {ann['probes']:,} probes)"
        )
    for hit in hits:
        title = f" ({hit.title})" if hit.title else ""
        print(f"{hit.rank:>3}. {hit.score:.4f}  {hit.doc_id}{title} [{hit.start}:{hit.end}]")
        print(f"     {' '.join(hit.text.split())[:300]}")
    return 0


COMMANDS = [
    Command(
        name="search",
        help="search an index: dense, BM25 or hybrid retrieval of the best chunks for a query",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
