"""A question-answering assistant: retrieve the k best passages, read each with an extractive QA model,
answer with the best span and its source, or say it does not know.

    from lmforge.search import Assistant
    assistant = Assistant("idx/", reader="runs/squad-minilm/model")
    reply = assistant.ask("Which team won Super Bowl 50?")
    reply.answer, reply.doc_id, reply.score, reply.abstained

The confidence is the reader's p(start) · p(end) of its best span (the `QuestionAnswering` pipeline's
score). Below `threshold` the assistant abstains: `answer` is None and nothing is cited, because an
extractive reader always finds *some* span, and on passages that do not hold the answer that span is a
guess. `DEFAULT_THRESHOLD` is 0.3 — a first setting, to be chosen on held-out SQuAD questions by
`benchmarks/search.py` with the squad-minilm reader; `--threshold` overrides it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lmforge.errors import ConfigError
from lmforge.search.index import Index
from lmforge.search.retrieval import Hit, check_query, search

DEFAULT_THRESHOLD = 0.3
DEFAULT_K = 5


@dataclass(frozen=True)
class Answer:
    answer: str | None  # None when the assistant abstains
    score: float  # the reader's confidence in its best span, over all the passages read
    abstained: bool
    doc_id: str | None  # the answer's document, its title, and the answer's offsets in that document
    title: str | None
    start: int | None
    end: int | None
    passage: str | None  # the chunk the answer was read from
    sources: tuple[Hit, ...] = ()  # the passages read, best retrieved first
    source: Hit | None = None  # the one of them the answer was read from (None when abstaining)
    tokens_read: int = 0  # the tokens the reader read: the question with each passage, every window

    def to_dict(self) -> dict:
        """What `lmforge ask --json` prints."""
        return {
            "answer": self.answer,
            "score": round(self.score, 6),
            "abstained": self.abstained,
            "doc_id": self.doc_id,
            "title": self.title,
            "start": self.start,
            "end": self.end,
            "passage": self.passage,
        }


class Assistant:
    """Retrieval (an `Index`) + reading (a `QuestionAnswering` pipeline). `index` and `reader` may be
    paths (an index directory, a QA model source) or loaded objects."""

    def __init__(
        self,
        index,
        reader,
        *,
        k: int = DEFAULT_K,
        threshold: float = DEFAULT_THRESHOLD,
        mode: str = "hybrid",
        fusion: str = "rrf",
        alpha: float = 0.5,
        ann: bool = False,
        embedder=None,
    ):
        from lmforge.pipelines import QuestionAnswering

        if not 0 <= threshold <= 1:
            raise ConfigError(f"--threshold must be between 0 and 1, got {threshold}")
        self.index = index if isinstance(index, Index) else Index.open(index, embedder=embedder)
        if isinstance(reader, str | os.PathLike):
            reader = QuestionAnswering.load(reader, name="--reader")
        self.reader = reader
        self.k = k
        self.threshold = threshold
        self.mode = mode
        self.retrieval = {"fusion": fusion, "alpha": alpha, "ann": ann}

    def ask(self, question: str, *, k: int | None = None, threshold: float | None = None) -> Answer:
        check_query(question, self.mode, self.retrieval["fusion"], self.retrieval["alpha"])
        k = min(k or self.k, len(self.index))
        threshold = self.threshold if threshold is None else threshold
        hits = search(self.index, question, mode=self.mode, k=k, **self.retrieval)
        if not hits:
            return Answer(None, 0.0, True, None, None, None, None, None)
        readings = self.reader([question] * len(hits), [hit.text for hit in hits])
        tokens = sum(reading.prompt_tokens for reading in readings)
        best_hit, best = max(zip(hits, readings, strict=True), key=lambda pair: pair[1].score)
        if best.start is None or best.score < threshold:
            return Answer(
                None, float(best.score), True, None, None, None, None, None, tuple(hits), None, tokens
            )
        return Answer(
            best.answer,
            float(best.score),
            False,
            best_hit.doc_id,
            best_hit.title,
            best_hit.start + best.start,
            best_hit.start + best.end,
            best_hit.text,
            tuple(hits),
            best_hit,
            tokens,
        )

    def __repr__(self) -> str:
        return (
            f"Assistant({self.index!r}, reader {self.reader.source}, k={self.k}, threshold={self.threshold})"
        )
