"""`lmforge summarize`: extractive summaries — lead-k, TextRank, embedding centroid + MMR — and their ROUGE.

    lmforge summarize --method textrank --sentences 2 articles.txt
    lmforge summarize --method centroid --words 60 news.jsonl --document-field text
    lmforge summarize eval --method lead-1 --method textrank --data ../shared/data/xsum/validation-1000.jsonl

A FILE holds one document per line, or is JSONL with the document in a field (--document-field, default
document). Summaries are printed one per line, their sentences joined by a space. `eval` summarises the
documents of a JSONL file that also holds reference summaries and prints ROUGE-1/2/L/Lsum F1 ×100 (Porter
stemming on, lmforge's ROUGE, identical to rouge-score) with bootstrap 95% intervals, the compression
ratio, and the share of the references' n-grams that are in no document; --json prints
{METHOD: {"rouge1": F, "rouge2": F, "rougeL": F, "rougeLsum": F, ...}}, --out-dir writes METHOD.txt per method.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lmforge.recipes import Command, count, positive_number

FIXED_LENGTH = ("lead-1", "lead-3")  # their names say how many sentences


def _common(sub: argparse.ArgumentParser) -> None:
    from lmforge.analyze.summarize import DEFAULT_EMBEDDER, SPLITS

    sub.add_argument("--sentences", type=count, metavar="K",
                     help="sentences per summary (lead, textrank, centroid; default 3 unless --words)")  # fmt: skip
    sub.add_argument("--words", type=count, metavar="N",
                     help="at most N words per summary (whole sentences; the first is always kept)")  # fmt: skip
    sub.add_argument("--embedder", metavar="DIR",
                     help="sentence vectors for textrank / centroid: a model directory, py:PACKAGE/DIR, or "
                     f"'tfidf' (default: tfidf for textrank, {DEFAULT_EMBEDDER} for centroid)")  # fmt: skip
    sub.add_argument("--split", choices=SPLITS, default="auto",
                     help="a document's sentences: its lines if it has line breaks, else the splitter's (auto)")  # fmt: skip
    sub.add_argument("--mmr-lambda", type=positive_number, default=0.7, metavar="L",
                     help="centroid: relevance vs. novelty in MMR, up to 1 = relevance only (default 0.7)")  # fmt: skip
    sub.add_argument(
        "--document-field", default="document", help="JSONL field of the documents (default document)"
    )


def configure(parser: argparse.ArgumentParser) -> None:
    from lmforge.analyze.summarize import METHODS

    subverbs = parser.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=type(parser)
    )
    sub = subverbs.add_parser(
        "documents",
        help="summarise FILE (the default: `lmforge summarize --method M FILE`)",
        description="Print an extractive summary of each document of FILE, one per line.",
    )
    sub.add_argument("file", metavar="FILE", help="one document per line, or .jsonl (see --document-field)")
    sub.add_argument("--method", choices=METHODS, required=True, help="how to choose the sentences")
    _common(sub)
    sub.set_defaults(_run=run_documents)

    sub = subverbs.add_parser(
        "eval",
        help="ROUGE of methods on documents with reference summaries (JSONL)",
        description="ROUGE-1/2/L/Lsum (F1 ×100, stemmed) of each method, with bootstrap 95%% intervals.",
    )
    sub.add_argument("--method", choices=METHODS, action="append", required=True,
                     help="a method to evaluate; repeat for several")  # fmt: skip
    sub.add_argument("--data", required=True, metavar="FILE", help="JSONL with documents and summaries")
    sub.add_argument(
        "--summary-field", default="summary", help="JSONL field of the references (default summary)"
    )
    sub.add_argument(
        "--json", action="store_true", help="print {METHOD: {rouge1, rouge2, rougeL, rougeLsum, ...}}"
    )
    sub.add_argument(
        "--out-dir", metavar="OUT", help="write OUT/METHOD.txt: each method's summaries, one per line"
    )
    sub.add_argument("--limit", type=count, metavar="N", help="only the first N documents")
    sub.add_argument("--resamples", type=count, default=1000, metavar="N",
                     help="bootstrap resamples for the 95%% intervals (default 1000)")  # fmt: skip
    _common(sub)
    sub.set_defaults(_run=run_eval)


def run(args: argparse.Namespace) -> int:
    return args._run(args)


def _summarizer(method: str, args: argparse.Namespace, embedders: dict):
    """The method's `Summarizer`; one embedder per source, shared by the methods (it remembers vectors)."""
    from lmforge.analyze.summarize import DEFAULT_EMBEDDER, Summarizer, embedder
    from lmforge.errors import ConfigError

    if args.mmr_lambda > 1:
        raise ConfigError(f"--mmr-lambda must be at most 1 (1 = relevance only), got {args.mmr_lambda}")
    source = args.embedder or {"centroid": DEFAULT_EMBEDDER}.get(method, "tfidf")
    embed = None
    if method in ("textrank", "centroid") and source != "tfidf":
        if source not in embedders:
            embedders[source] = embedder(source, progress=True)
        embed = embedders[source]
    sentences = args.sentences
    if getattr(args, "data", None) and method in FIXED_LENGTH:  # eval: --sentences is for the others
        sentences = None
    summarizer = Summarizer(method, sentences=sentences, words=args.words, embed=embed,
                            trade_off=args.mmr_lambda, split=args.split)  # fmt: skip
    return summarizer, source if embed is not None or method in ("textrank", "centroid") else None


def run_documents(args: argparse.Namespace) -> int:
    from lmforge.analyze.summarize import read_documents

    documents, _ = read_documents(args.file, args.document_field)
    summarizer, _ = _summarizer(args.method, args, {})
    for summary in summarizer(documents):
        print(summary.text)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from lmforge.analyze.summarize import evaluate_summaries, novel_ngram_shares, read_documents
    from lmforge.errors import CorpusError
    from lmforge.io import write_text

    if Path(args.data).suffix.lower() not in (".jsonl", ".ndjson"):
        raise CorpusError(
            f"--data {args.data}: expected a .jsonl file with documents and reference summaries"
        )
    documents, references = read_documents(
        args.data, args.document_field, also=(args.summary_field, "--summary-field")
    )
    assert references is not None
    if args.limit:
        documents, references = documents[: args.limit], references[: args.limit]
    novel = novel_ngram_shares(references, documents)
    methods = list(dict.fromkeys(args.method))
    results, outputs, embedders = {}, {}, {}
    for method in methods:
        summarizer, vectors = _summarizer(method, args, embedders)
        summaries = summarizer(documents)
        scores = evaluate_summaries(summaries, references, documents, resamples=args.resamples)
        settings = {"sentences": summarizer.sentences, "words": summarizer.words, "vectors": vectors}
        results[method] = {**scores, **settings, "reference_novel_ngrams": novel}
        outputs[method] = "".join(summary.text + "\n" for summary in summaries)
    if args.out_dir:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for method, text in outputs.items():
            write_text(out / f"{method}.txt", text)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print(_table(results, args.data, len(documents), novel))
    return 0


def _table(results: dict, data: str, n: int, novel: dict) -> str:
    lines = [f"{n} documents of {data}: ROUGE F1 ×100 (Porter stemming), [bootstrap 95% interval]", ""]
    header = f"{'method':<10}" + "".join(
        f"{name:>20}" for name in ("ROUGE-1", "ROUGE-2", "ROUGE-L", "ROUGE-Lsum")
    )
    lines.append(header + f"{'words':>8}{'compr.':>8}  vectors")
    for method, r in results.items():
        cells = "".join(f"{r[t]:>7.2f} [{r['ci95'][t][0]:5.2f},{r['ci95'][t][1]:6.2f}]" for t in
                        ("rouge1", "rouge2", "rougeL", "rougeLsum"))  # fmt: skip
        compression = f"{r['compression']:.1f}" if r["compression"] else "-"
        lines.append(f"{method:<10}{cells}{r['summary_words']:>8.1f}{compression:>8}  {r['vectors'] or ''}")
    shares = ", ".join(f"{k}-grams {v:.1f}%" for k, v in novel.items())
    lines += ["", f"references' n-grams in no document (out of reach of any extract): {shares}"]
    return "\n".join(lines)


COMMANDS = [
    Command(
        name="summarize",
        help="extractive summaries (lead-k, TextRank, centroid + MMR) and their ROUGE",
        configure=configure,
        run=run,
        description=__doc__,
        default_subverb="documents",
    )
]
