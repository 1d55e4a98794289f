"""`lmforge answer`: the span of a text that answers a question, from a fine-tuned QA model.

    lmforge answer --model runs/squad-minilm/model --context article.txt "Who founded the city?"
    lmforge answer --model runs/squad-minilm/model --context article.txt --json "Who?" "When?"

The model directory is the `model/` (or, for LoRA runs saved as adapters, `adapters/`) that `lmforge
finetune` (task qa) wrote; the context is cut into windows exactly as in training (the settings are in
the model's config). Plain output: one answer per question, one per line. `--json`: one object per
question with the answer, its score (p(start) · p(end) in its window) and its character offsets in the
context file (`context[start:end] == answer`). `answer_questions` is the library function.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from lmforge.errors import LmforgeError, MissingFileError
from lmforge.recipes import Command, count

DEFAULT_SETTINGS = {"max_length": 384, "doc_stride": 128, "max_question_length": 64, "max_answer_length": 30}


def load_qa_model(directory: str | Path, name: str = "--model"):
    """(model, tokenizer, window settings) of a fine-tuned QA directory (full model or adapters)."""
    from lmforge.model_source import load_model_and_tokenizer

    model, tokenizer, _ = load_model_and_tokenizer(
        str(directory),
        {"encoder": ("question-answering",)},
        purpose="answer questions",
        hint="fine-tune one with `lmforge finetune` (task qa, e.g. configs/squad-minilm.yaml)",
        name=name,
        adapters=True,
    )
    settings = {**DEFAULT_SETTINGS, **model.config.extra.get("qa", {})}
    settings["max_length"] = min(settings["max_length"], model.config.max_positions)
    return model, tokenizer, settings


def answer_questions(
    model,
    tokenizer,
    context: str,
    questions: Sequence[str],
    *,
    settings: dict | None = None,
    batch_size: int = 16,
    top_k: int = 1,
):
    """For each question, its `top_k` best spans of `context` (`lmforge.data.qa.Span`), best first.

    >>> model, tokenizer, settings = load_qa_model("runs/squad-minilm/model")
    >>> answer_questions(model, tokenizer, text, ["Who founded it?"], settings=settings)[0][0].text
    """
    import torch

    from lmforge.data.qa import QAExample, best_spans, build_features, pad_windows, span_logits

    settings = {**DEFAULT_SETTINGS, **(settings or {})}
    examples = [QAExample(str(i), q, context, (), (), 0) for i, q in enumerate(questions)]
    features = build_features(
        tokenizer,
        examples,
        max_length=settings["max_length"],
        doc_stride=settings["doc_stride"],
        max_question_length=settings["max_question_length"],
        labelled=False,
    )
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    device = next(model.parameters()).device
    starts, ends = [], []  # per window, (T,) logits
    model.eval()
    with torch.no_grad():
        for first in range(0, len(features), batch_size):
            rows = list(range(first, min(first + batch_size, len(features))))
            batch = {k: v.to(device) for k, v in pad_windows(features, rows, pad_id).items()}
            start, end = span_logits(model, batch)
            for i, row in enumerate(rows):
                n = int(features.lengths[row])
                starts.append(start[i, :n].cpu().numpy())
                ends.append(end[i, :n].cpu().numpy())
    return [
        best_spans(
            [starts[w] for w in windows],
            [ends[w] for w in windows],
            [features.offsets[w] for w in windows],
            context,
            max_answer_length=settings["max_answer_length"],
            top_k=top_k,
        )
        for windows in features.windows_of
    ]


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
    model, tokenizer, settings = load_qa_model(args.model)
    results = answer_questions(model, tokenizer, context, questions, settings=settings, top_k=args.top_k)
    for question, spans in zip(questions, results, strict=True):
        best = spans[0] if spans else None
        if args.json:
            record = {
                "question": question,
                "answer": best.text if best else "",
                "score": round(best.score, 6) if best else 0.0,
                "start": best.start if best else None,
                "end": best.end if best else None,
            }
            if args.top_k > 1:
                record["candidates"] = [
                    {"answer": s.text, "score": round(s.score, 6), "start": s.start, "end": s.end}
                    for s in spans
                ]
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(best.text if best else "")
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
