"""`QuestionAnswering`: the span of a context that answers a question, from an extractive QA model.

    from lmforge.pipelines import QuestionAnswering
    qa = QuestionAnswering.load("runs/squad-minilm/model")
    best = qa("Who founded the city?", context=text)
    best.answer == text[best.start : best.end]
    # True

The context is cut into overlapping windows exactly as in training (the settings are in the model's
config); the best span over all windows wins. `score` is p(start) · p(end) in its window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lmforge.errors import ConfigError
from lmforge.pipelines.base import Pipeline, one_or_many

DEFAULT_SETTINGS = {"max_length": 384, "doc_stride": 128, "max_question_length": 64, "max_answer_length": 30}


@dataclass
class QuestionAnsweringResult:
    answer: str  # context[start:end]; "" when no window holds a valid span
    score: float  # p(start) · p(end), each a softmax over the context tokens of its window
    start: int | None  # character offsets in the context, end exclusive
    end: int | None
    prompt_tokens: int  # tokens the model read: every window of the question, question and specials included
    candidates: list[QuestionAnsweringResult] = field(default_factory=list)  # with top_k > 1: the k best
    # Raw scores, comparable across contexts (the assistant ranks passages with them; see data/qa.py):
    logit: float = float("-inf")  # start logit + end logit of the span
    null_logit: float = float("inf")  # start + end logit of [CLS] (no answer here), smallest over windows
    log_normalizer: float = float("-inf")  # log Σ exp(start + end) over the context's spans, all windows


class QuestionAnswering(Pipeline):
    task = "question-answering"
    kinds = {"encoder": ("question-answering",)}
    purpose = "answer questions"
    hint = "fine-tune one with `lmforge finetune` (task qa, e.g. configs/squad-minilm.yaml)"

    def __init__(self, model, tokenizer, settings=None, *, source: str = ""):
        super().__init__(model, tokenizer, source=source)
        self.settings = {**DEFAULT_SETTINGS, **(settings or model.config.extra.get("qa", {}))}
        self.settings["max_length"] = min(self.settings["max_length"], model.config.max_positions)

    def __call__(self, question, context, *, top_k: int = 1, batch_size: int = 16):
        """Answer a question (→ one `QuestionAnsweringResult`) or a list of questions (→ a list) from
        `context`: one str for all of them, or a list with one context per question."""
        import torch

        from lmforge.data.qa import (
            QAExample,
            best_spans,
            build_features,
            pad_windows,
            span_logits,
            window_scores,
        )

        questions, single = one_or_many(question, "question")
        contexts, shared = one_or_many(context, "context")
        if shared:
            contexts = contexts * len(questions)
        elif len(contexts) != len(questions):
            raise ConfigError(
                f"{len(contexts)} contexts for {len(questions)} questions; give one per question"
            )
        if top_k < 1 or batch_size < 1:
            raise ConfigError(f"top_k and batch_size must be at least 1, got {top_k} and {batch_size}")
        settings = self.settings
        examples = [
            QAExample(str(i), q, c, (), (), 0)
            for i, (q, c) in enumerate(zip(questions, contexts, strict=True))
        ]
        with self.tokenizer_lock:  # build_features sets the tokenizer's windowing
            features = build_features(
                self.tokenizer,
                examples,
                max_length=settings["max_length"],
                doc_stride=settings["doc_stride"],
                max_question_length=settings["max_question_length"],
                labelled=False,
            )
        pad_id = self.model.config.pad_id()
        starts, ends = [], []  # per window, (T,) logits
        with torch.no_grad():
            for first in range(0, len(features), batch_size):
                rows = list(range(first, min(first + batch_size, len(features))))
                batch = {k: v.to(self.device) for k, v in pad_windows(features, rows, pad_id).items()}
                start, end = span_logits(self.model, batch)
                for i, row in enumerate(rows):
                    n = int(features.lengths[row])
                    starts.append(start[i, :n].cpu().numpy())
                    ends.append(end[i, :n].cpu().numpy())
        results = []
        for windows, example in zip(features.windows_of, examples, strict=True):
            spans = best_spans(
                [starts[w] for w in windows],
                [ends[w] for w in windows],
                [features.offsets[w] for w in windows],
                example.context,
                max_answer_length=settings["max_answer_length"],
                top_k=top_k,
            )
            tokens = int(sum(features.lengths[w] for w in windows))
            null, normalizer = window_scores(
                [starts[w] for w in windows],
                [ends[w] for w in windows],
                [features.offsets[w] for w in windows],
            )
            found = [
                QuestionAnsweringResult(
                    s.text,
                    s.score,
                    s.start,
                    s.end,
                    tokens,
                    logit=s.logit,
                    null_logit=null,
                    log_normalizer=normalizer,
                )
                for s in spans
            ]
            best = (
                found[0]
                if found
                else QuestionAnsweringResult(
                    "", 0.0, None, None, tokens, null_logit=null, log_normalizer=normalizer
                )
            )
            if top_k > 1:
                best.candidates = found
            results.append(best)
        return results[0] if single else results
