"""`lmforge answer`: the span of a text that answers a question, from a fine-tuned QA model.

    lmforge answer --model runs/squad-minilm/model --context article.txt "Who founded the city?"
    lmforge answer --model runs/squad-minilm/model --context article.txt --json "Who?" "When?"

The model directory is the `model/` (or, for LoRA runs saved as adapters, `adapters/`) that `lmforge
finetune` (task qa) wrote; the context is cut into windows exactly as in training (the settings are in
the model's config). Plain output: one answer per question, one per line. `--json`: one object per
question with the answer, its score (p(start) · p(end) in its window) and its character offsets in the
context file (`context[start:end] == answer`). The library behind it is
`lmforge.pipelines.QuestionAnswering`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmforge.errors import LmforgeError, MissingFileError
from lmforge.recipes import Command, count


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", nargs="*", help="question(s) about the context")
    parser.add_argument(
        "--model", required=True, metavar="DIR", help="a model directory written by `lmforge finetune` (qa)"
    )
    parser.add_argument(
        "--context", required=True, metavar="FILE", help="a UTF-8 text file to answer from ('-' = stdin)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per question (score, offsets)")
    parser.add_argument(
        "--top-k", type=count, default=1, help="with --json: also list the k best distinct spans (default 1)"
    )


def run(args: argparse.Namespace) -> int:
    questions = list(args.question)
    if not questions:
        raise LmforgeError('nothing to answer: give one or more questions, e.g. "Who founded the city?"')
    empty = [i + 1 for i, q in enumerate(questions) if not q.strip()]
    if empty:
        raise LmforgeError(f"question {empty[0]} is empty")
    if args.context == "-":
        context = sys.stdin.read()
    else:
        path = Path(args.context)
        if not path.is_file():
            raise MissingFileError(f"--context: file not found: {path}")
        try:
            context = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise LmforgeError(f"--context {path}: not UTF-8 text (byte {exc.start})") from None
    if not context.strip():
        raise LmforgeError(f"--context {args.context}: the context is empty; give a text to answer from")
    from lmforge.pipelines import QuestionAnswering

    answer = QuestionAnswering.load(args.model, name="--model")
    for question, best in zip(questions, answer(questions, context, top_k=args.top_k), strict=True):
        if args.json:
            record = {
                "question": question,
                "answer": best.answer,
                "score": round(best.score, 6),
                "start": best.start,
                "end": best.end,
            }
            if args.top_k > 1:
                record["candidates"] = [
                    {"answer": c.answer, "score": round(c.score, 6), "start": c.start, "end": c.end}
                    for c in best.candidates
                ]
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(best.answer)
    return 0


COMMANDS = [
    Command(
        name="answer",
        help="answer questions with a span of a context file (extractive QA model from `finetune`)",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
