"""SQuAD v1.1 exact match and F1, as the official evaluation script defines them.

Both compare *normalized* answers: lower-cased, ASCII punctuation removed, the articles a / an / the
removed, whitespace collapsed. Exact match is 1 when the normalized strings are equal; F1 is the
harmonic mean of precision and recall of their words (as multisets). A question may have several
reference answers: its score is the best over them. Corpus scores are the mean over questions, in
percent.

    >>> normalize_answer("The  Eiffel Tower!")
    'eiffel tower'
    >>> squad_em_f1(["Eiffel Tower", "in 1889"], [["the Eiffel Tower"], ["1889", "1887"]])
    SquadScore(exact_match=50.0, f1=83.33333333333333)
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


class SquadScore(NamedTuple):
    exact_match: float  # percent of questions whose prediction equals a reference after normalization
    f1: float  # mean word-overlap F1 in percent


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, drop the articles a/an/the, collapse whitespace (in that order)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def f1(prediction: str, reference: str) -> float:
    """Word-overlap F1 of the normalized answers; 0 when either is empty after normalization."""
    prediction_words = normalize_answer(prediction).split()
    reference_words = normalize_answer(reference).split()
    common = sum((Counter(prediction_words) & Counter(reference_words)).values())
    if common == 0:
        return 0.0
    precision = common / len(prediction_words)
    recall = common / len(reference_words)
    return (2 * precision * recall) / (precision + recall)


def squad_em_f1(
    predictions: str | Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]
) -> SquadScore:
    """Exact match and F1 in percent, each the best over a question's reference answers, averaged.

    predictions: one answer per question; references: per question, a list of acceptable answers (or one
    string). A single prediction string with a list of its answers scores one question.
    """
    if isinstance(predictions, str):
        predictions, references = [predictions], [references]  # type: ignore[list-item]
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} questions with references")
    if not predictions:
        raise ValueError("no questions to score")
    total_em = total_f1 = 0.0
    for i, (prediction, answers) in enumerate(zip(predictions, references, strict=True)):
        if isinstance(answers, str):
            answers = [answers]
        if not answers:
            raise ValueError(f"question {i + 1} has no reference answer")
        total_em += max(exact_match(prediction, a) for a in answers)
        total_f1 += max(f1(prediction, a) for a in answers)
    return SquadScore(100.0 * total_em / len(predictions), 100.0 * total_f1 / len(predictions))
