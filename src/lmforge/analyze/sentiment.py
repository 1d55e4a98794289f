"""Sentiment over many texts: the share of each label with a 95% interval, and the texts the model is unsure of.

A text counts under its top label when the classifier gives that label at least `unsure` (0.6) of its
probability; below, it is *unsure* and counted apart, so a model that hesitates does not blur the shares.
A text that stands for several identical ones (near-duplicates merged) counts `weight` times. The interval
of a share is Wilson's score interval (Wilson, 1927), which stays inside [0, 1] and is honest for small
counts and shares near 0 or 1, where the textbook p ± 1.96·√(p(1−p)/n) is not.

    >>> summary = sentiment_summary(["positive", "positive", "negative", "positive"], [0.9, 0.55, 0.8, 0.7])
    >>> summary["sentiment"]["positive"]["count"], summary["unsure"]["count"]
    (2, 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson_interval(count: float, total: float, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for a proportion count/total.

    >>> [round(v, 4) for v in wilson_interval(8, 10)]
    [0.4902, 0.9433]
    """
    if total <= 0:
        return 0.0, 0.0
    share = count / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z / (1 + z * z / total) * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total))
    return max(0.0, centre - half), min(1.0, centre + half)


def sentiment_summary(labels: Sequence[str], probabilities: Sequence[float], *, unsure: float = 0.6,
                      weights: Sequence[float] | None = None, order: Sequence[str] = ()) -> dict:  # fmt: skip
    """{"sentiment": {label: {count, share, ci_low, ci_high}}, "unsure": {count, share, threshold}}.

    labels / probabilities: each text's top label and its probability. Shares are of the sure texts; the
    unsure share is of all texts. `order` lists labels to show even when no text has them (the classifier's
    labels), others follow in order of appearance.
    """
    if len(labels) != len(probabilities):
        raise ValueError(f"{len(labels)} labels but {len(probabilities)} probabilities")
    weights = [1.0] * len(labels) if weights is None else list(weights)
    counts = dict.fromkeys(order, 0.0)
    unsure_count = 0.0
    for label, probability, weight in zip(labels, probabilities, weights, strict=True):
        if probability < unsure:
            unsure_count += weight
        else:
            counts[label] = counts.get(label, 0.0) + weight
    sure = sum(counts.values())
    total = sure + unsure_count
    sentiment = {}
    for label, count in counts.items():
        low, high = wilson_interval(count, sure)
        sentiment[label] = {
            "count": _number(count),
            "share": round(count / sure, 4) if sure else 0.0,
            "ci_low": round(low, 4),
            "ci_high": round(high, 4),
        }
    return {
        "sentiment": sentiment,
        "unsure": {
            "count": _number(unsure_count),
            "share": round(unsure_count / total, 4) if total else 0.0,
            "threshold": unsure,
        },
    }


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 4)
