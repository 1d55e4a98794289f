"""Classification metrics: accuracy, precision / recall / F1 (per class, macro, micro, weighted), the
confusion matrix.

Arguments put the predictions first and the true labels second, like every lmforge metric (scikit-learn's
functions take the true labels first). Labels may be any hashable values: ints, strings.

    >>> predictions = ["pos", "pos", "neg", "neg", "pos"]
    >>> labels      = ["pos", "neg", "neg", "neg", "pos"]
    >>> accuracy(predictions, labels)
    0.8
    >>> precision_recall_f1(predictions, labels, average="macro")
    PRF(precision=0.8333333333333333, recall=0.8333333333333333, f1=0.8)
    >>> print(confusion_matrix(predictions, labels))
    true \\ predicted  neg  pos
    neg                 2    1
    pos                 0    2
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

AVERAGES = ("macro", "micro", "weighted")


class PRF(NamedTuple):
    """Precision, recall and F1, fractions in [0, 1] (unpacks as `precision, recall, f1 = ...`)."""

    precision: float
    recall: float
    f1: float


def _check(predictions: Sequence, labels: Sequence) -> None:
    if isinstance(predictions, str) or isinstance(labels, str):
        raise TypeError("predictions and labels must be sequences of labels, not strings")
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    if not labels:
        raise ValueError("no examples: predictions and labels are empty")


def accuracy(predictions: Sequence[Hashable], labels: Sequence[Hashable]) -> float:
    """The fraction of predictions equal to their label."""
    _check(predictions, labels)
    return sum(p == t for p, t in zip(predictions, labels, strict=True)) / len(labels)


def _divide(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0  # 0 where undefined, as scikit-learn's default


def _f1(precision: float, recall: float) -> float:
    return _divide(2 * precision * recall, precision + recall)


def precision_recall_f1(
    predictions: Sequence[Hashable],
    labels: Sequence[Hashable],
    average: str | None = "macro",
    *,
    classes: Sequence[Hashable] | None = None,
) -> PRF | dict[Hashable, PRF]:
    """Precision, recall and F1.

    average: "macro" — the unweighted mean over classes (every class counts the same, so rare classes
    weigh as much as frequent ones); "micro" — from the pooled true/false positives (equals accuracy when
    each example has one label); "weighted" — the mean over classes weighted by their support;
    None — a dict {class: PRF} per class. A ratio with a zero denominator is 0.
    classes: the classes to average over (default: every class seen in predictions or labels).
    """
    _check(predictions, labels)
    if average not in AVERAGES and average is not None:
        raise ValueError(f"unknown average {average!r}; choose one of {', '.join(AVERAGES)} or None")
    if classes is None:
        classes = sorted(set(labels) | set(predictions), key=_sort_key)
    true_positive: Counter = Counter()
    predicted: Counter = Counter(predictions)
    support: Counter = Counter(labels)
    for p, t in zip(predictions, labels, strict=True):
        if p == t:
            true_positive[t] += 1
    per_class = {}
    for c in classes:
        precision = _divide(true_positive[c], predicted[c])
        recall = _divide(true_positive[c], support[c])
        per_class[c] = PRF(precision, recall, _f1(precision, recall))
    if average is None:
        return per_class
    total_support = sum(support[c] for c in classes)  # examples whose true class is one of `classes`
    if average == "micro":
        tp = sum(true_positive[c] for c in classes)
        precision = _divide(tp, sum(predicted[c] for c in classes))
        recall = _divide(tp, total_support)
        return PRF(precision, recall, _f1(precision, recall))
    if average == "macro":
        weights = [1 / len(classes)] * len(classes)
    else:
        weights = [_divide(support[c], total_support) for c in classes]
    scores = [per_class[c] for c in classes]
    return PRF(
        sum(w * s.precision for w, s in zip(weights, scores, strict=True)),
        sum(w * s.recall for w, s in zip(weights, scores, strict=True)),
        sum(w * s.f1 for w, s in zip(weights, scores, strict=True)),
    )


@dataclass
class ConfusionMatrix:
    """counts[i][j]: how many examples of true class classes[i] were predicted as classes[j].

    Indexes, iterates and compares like its `counts` (a list of rows), so `matrix[i][j]` works.
    """

    classes: list
    counts: list[list[int]]

    def __getitem__(self, index):
        return self.counts[index]

    def __iter__(self):
        return iter(self.counts)

    def __len__(self) -> int:
        return len(self.counts)

    def __eq__(self, other) -> bool:
        if isinstance(other, ConfusionMatrix):
            return self.classes == other.classes and self.counts == other.counts
        return self.counts == [list(row) for row in other]

    def tolist(self) -> list[list[int]]:
        return [list(row) for row in self.counts]

    def __str__(self) -> str:
        names = [str(c) for c in self.classes]
        width = max([len(n) for n in names] + [len(str(v)) for row in self.counts for v in row] + [3])
        corner = "true \\ predicted"
        first = max(len(corner), *(len(n) for n in names))
        lines = [corner.ljust(first) + "".join(f"  {n:>{width}}" for n in names)]
        for name, row in zip(names, self.counts, strict=True):
            lines.append(name.ljust(first) + "".join(f"  {v:>{width}}" for v in row))
        return "\n".join(lines)


def confusion_matrix(
    predictions: Sequence[Hashable], labels: Sequence[Hashable], classes: Sequence[Hashable] | None = None
) -> ConfusionMatrix:
    """Rows are the true classes, columns the predicted ones (scikit-learn's layout)."""
    _check(predictions, labels)
    if classes is None:
        classes = sorted(set(labels) | set(predictions), key=_sort_key)
    index = {c: i for i, c in enumerate(classes)}
    counts = [[0] * len(classes) for _ in classes]
    for p, t in zip(predictions, labels, strict=True):
        if p in index and t in index:
            counts[index[t]][index[p]] += 1
    return ConfusionMatrix(list(classes), counts)


def _sort_key(value):
    """Sort numbers numerically and everything else by its text, without mixing the two."""
    return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value))
