"""`lmforge ask`: answer a question from the documents of an index, with its source, or say "I don't know".

  lmforge ask --index idx --reader runs/squad-minilm/model "Which team won Super Bowl 50?"
  lmforge ask --index idx --reader runs/squad-minilm/model -k 10 --threshold 0.5 --json "Who?"

The k best chunks (hybrid retrieval by default) are read by the extractive QA model; the span with the
best start + end logit over them is the answer. Its confidence is calibrated across passages: the margin
of that logit over the reader's no-answer ([CLS]) logit, mapped to an estimate of the answer's F1
(`lmforge.search.assistant`). Below `--threshold` (default 0.3, chosen on held-out SQuAD questions by
benchmarks/search_qa.py) the assistant abstains. `--json`: {"answer", "score", "abstained", "doc_id", "title", "start",
"end", "passage"}, where start/end are the answer's character offsets in its document and passage is the
chunk it was read from; when it abstains, answer and the source fields are null. The library behind it is
`lmforge.search.Assistant`.
"""

from __future__ import annotations

import argparse
import json

from lmforge.recipes import Command, retrieval_options


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", help="the question")
    parser.add_argument(
        "--reader", required=True, metavar="DIR", help="an extractive QA model (`finetune` task qa)"
    )
    retrieval_options(parser, k=5, mode="hybrid")
    parser.add_argument(
        "--threshold",
        type=float,
        help="abstain below this confidence, 0 to 1 (default 0.3, chosen on held-out SQuAD questions: "
        "it answered half of the answerable ones and abstained on 9 in 10 of those the index cannot answer)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object: answer, score, source, passage")


def run(args: argparse.Namespace) -> int:
    from lmforge.search import DEFAULT_THRESHOLD, Assistant
    from lmforge.search.retrieval import check_query

    check_query(args.question, args.mode, args.fusion, args.alpha)
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    assistant = Assistant(
        args.index,
        args.reader,
        k=args.k,
        threshold=threshold,
        mode=args.mode,
        fusion=args.fusion,
        alpha=args.alpha,
        ann=args.ann,
        embedder=args.embedder,
    )
    reply = assistant.ask(args.question)
    if args.json:
        print(json.dumps(reply.to_dict(), ensure_ascii=False))
    elif reply.abstained:
        print(f"I don't know (best confidence {reply.score:.3f} < threshold {threshold}).")
    else:
        title = f" ({reply.title})" if reply.title else ""
        print(reply.answer)
        print(f"  source: {reply.doc_id}{title} [{reply.start}:{reply.end}], confidence {reply.score:.3f}")
    return 0


COMMANDS = [
    Command(
        name="ask",
        help="answer a question from an index's documents with an extractive QA model, or abstain",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
