"""A question-answering assistant: retrieve the k best passages, read each with an extractive QA model,
answer with the best span and its source, or say it does not know.

    from lmforge.search import Assistant
    assistant = Assistant("idx/", reader="runs/squad-minilm/model")
    reply = assistant.ask("Which team won Super Bowl 50?")
    reply.answer, reply.doc_id, reply.score, reply.abstained

Which span, and how sure. The reader's own score, p(start) · p(end), is a softmax within one passage: a
vague span in a passage with nothing better scores as high as the answer in the right passage, so it
can neither pick between passages nor say "none of these". The assistant uses raw logits instead, which
the passages share:

- the answer is the span with the highest start + end logit over all the passages read (the span a
  softmax shared by all the passages would pick; BERTserini and Clark & Gardner 2018 rank so);
- its *margin* is that logit minus the smallest no-answer logit ([CLS] start + end) over the passages
  read — Hugging Face's SQuAD v2 "null score difference", with the passages as the windows of one
  document. A reader fine-tuned as lmforge's (windows without the answer point at [CLS]) raises [CLS]
  where a passage lacks the answer;
- `score` = sigmoid(scale · margin + shift), Platt scaling fitted so that the score estimates the F1 of
  the answer (0 for a question the index cannot answer). `CALIBRATION` holds the fit for the
  `squad-minilm` reader; another reader ranks the same with it, but its scores are not calibrated.

Below `threshold` the assistant abstains: `answer` is None and nothing is cited. `CALIBRATION` and
`DEFAULT_THRESHOLD` were chosen by `benchmarks/search_qa.py` on held-out SQuAD questions (half of them;
the other half reports, RESULTS.md "Open-domain QA and abstention"); `--threshold` overrides.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from lmforge.errors import ConfigError
from lmforge.search.index import Index
from lmforge.search.retrieval import Hit, check_query, search

DEFAULT_K = 5


@dataclass(frozen=True)
class Calibration:
    """score = sigmoid(scale · margin + shift)."""

    scale: float
    shift: float

    def __call__(self, margin: float) -> float:
        z = self.scale * margin + self.shift
        return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


# Fitted by benchmarks/search_qa.py for the squad-minilm reader (k 5, hybrid retrieval) on the even-position
# half of 666 held-out questions; 0.30 there is a margin of 9.9 logits. RESULTS.md has the other half.
CALIBRATION = Calibration(scale=0.6024, shift=-6.8000)
DEFAULT_THRESHOLD = 0.3  # by balanced utility: (F1 on answerable questions + abstentions on the rest) / 2


@dataclass(frozen=True)
class Answer:
    answer: str | None  # None when the assistant abstains
    score: float  # the calibrated confidence in the answer (≈ its expected F1), see the module's doc
    abstained: bool
    doc_id: str | None  # the answer's document, its title, and the answer's offsets in that document
    title: str | None
    start: int | None
    end: int | None
    passage: str | None  # the chunk the answer was read from
    sources: tuple[Hit, ...] = ()  # the passages read, best retrieved first
    source: Hit | None = None  # the one of them the answer was read from (None when abstaining)
    tokens_read: int = 0  # the tokens the reader read: the question with each passage, every window
    margin: float = -math.inf  # best span logit - smallest no-answer logit over the passages read
    readings: tuple = ()  # the reader's `QuestionAnsweringResult` for each passage, as `sources`

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
        calibration: Calibration = CALIBRATION,
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
        self.calibration = calibration
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
        best_hit, best = max(zip(hits, readings, strict=True), key=lambda pair: pair[1].logit)
        if best.start is None:  # no passage holds a valid span
            return Answer(None, 0.0, True, None, None, None, None, None, tuple(hits), None, tokens)
        margin = best.logit - min(reading.null_logit for reading in readings)
        score = self.calibration(margin)
        if score < threshold:
            return Answer(
                None,
                score,
                True,
                None,
                None,
                None,
                None,
                None,
                tuple(hits),
                None,
                tokens,
                margin,
                tuple(readings),
            )
        return Answer(
            best.answer,
            score,
            False,
            best_hit.doc_id,
            best_hit.title,
            best_hit.start + best.start,
            best_hit.start + best.end,
            best_hit.text,
            tuple(hits),
            best_hit,
            tokens,
            margin,
            tuple(readings),
        )

    def __repr__(self) -> str:
        return (
            f"Assistant({self.index!r}, reader {self.reader.source}, k={self.k}, threshold={self.threshold})"
        )
