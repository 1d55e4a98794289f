"""The market-research report: sentiment, topics with their words, quotes and summaries, periods and groups.

    from lmforge.analyze.report import analyze_texts, write_report
    analysis = analyze_texts(texts, embed=embed, sentiments=[("positive", 0.93), ...], dates=dates)
    write_report(analysis, "runs/report")            # report.html, report.json (every number), texts.csv

`analyze_texts` takes each text's sentiment (its classifier's top label and probability) and a function that
embeds texts; it merges duplicates, finds the topics (`lmforge.analyze.topics`), aggregates sentiment overall
and per topic (`lmforge.analyze.sentiment`), summarises each topic (centroid + MMR over its texts,
`lmforge.analyze.summarize`), and, given dates or groups, the topic shares and sentiment per period or group
with the biggest changes called out. Every number lands in `report`; `rows` is one row per input text.

Periods are months when the dates span at most 24 of them, else quarters when at most 24, else years
(`period="month"|"quarter"|"year"` forces one). Dates are ISO: 2024-03-05, 2024-03, 2024, or a timestamp.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np

from lmforge.analyze.sentiment import sentiment_summary
from lmforge.analyze.summarize import Summarizer
from lmforge.analyze.topics import (
    MINIBATCH_ABOVE,
    check_topic_count,
    choose_topic_count,
    cluster,
    merge_duplicates,
    near_duplicates,
    representative,
    topic_keywords,
)
from lmforge.errors import ConfigError, CorpusError

PERIODS = ("auto", "month", "quarter", "year")
SUMMARY_CANDIDATES = 200  # a topic's summary is chosen among its texts nearest the centre
TEXT_COLUMNS = ("text", "sentiment", "sentiment_probability", "topic", "topic_label")


@dataclass
class Analysis:
    report: dict  # everything report.json holds
    rows: list[dict]  # per input text, in input order: the columns of texts.csv


def analyze_texts(
    texts: Sequence[str],
    *,
    embed: Callable[[list[str]], np.ndarray],
    sentiments: Sequence[tuple[str, float]],
    labels: Sequence[str] = (),
    dates: Sequence[str | None] | None = None,
    groups: Sequence[str | None] | None = None,
    topics: int | str = "auto",
    unsure: float = 0.6,
    period: str = "auto",
    quotes: int = 3,
    summary_words: int = 60,
    seed: int = 0,
    progress: bool = False,
) -> Analysis:
    """The report of `texts` (see the module's docstring); `labels` are the classifier's, in its order."""
    if not texts:
        raise CorpusError("no texts to analyse")
    if len(sentiments) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(sentiments)} sentiments")
    kept, counts, member_of = merge_duplicates(texts)
    distinct = [texts[i] for i in kept]
    check_topic_count(len(distinct), topics)
    vectors = np.asarray(embed(distinct), dtype=np.float64)
    choice: dict = {"asked": topics}
    if topics == "auto":
        k, silhouettes = choose_topic_count(vectors, seed=seed, progress=progress)
        choice["silhouette"] = {str(c): round(s, 4) for c, s in silhouettes.items()}
    else:
        k = int(topics)
    choice["topics"] = k
    choice["algorithm"] = "MiniBatchKMeans" if len(distinct) > MINIBATCH_ABOVE else "KMeans"
    distinct_topic, centres = cluster(vectors, k, weights=counts, seed=seed)
    topic_of = [int(distinct_topic[member_of[i]]) for i in range(len(texts))]
    keywords = topic_keywords(distinct, distinct_topic, k, weights=counts)
    names = [", ".join(words[:3]) for words in keywords]
    leader = near_duplicates(vectors, distinct_topic)
    merged = np.bincount(leader, weights=counts, minlength=len(distinct))  # texts each kept text stands for

    overall = sentiment_summary(
        [s[0] for s in sentiments], [s[1] for s in sentiments], unsure=unsure, order=labels
    )
    topic_entries = []
    for topic in range(k):
        inside = [i for i in range(len(texts)) if topic_of[i] == topic]
        heads = np.flatnonzero((distinct_topic == topic) & (leader == np.arange(len(distinct))))
        nearest = representative(vectors[heads], np.zeros(len(heads), dtype=np.int64), centres[[topic]], 0,
                                 max(quotes, SUMMARY_CANDIDATES))  # fmt: skip
        picked = nearest[:quotes]
        # MMR compares every candidate with every other: the texts nearest the centre are candidates enough
        candidates = np.sort(heads[nearest])
        summarizer = Summarizer("centroid", sentences=None, words=summary_words, split="lines")
        summary = summarizer.summarize_units([distinct[i] for i in candidates], vectors[candidates])
        topic_sentiment = sentiment_summary([sentiments[i][0] for i in inside], [sentiments[i][1] for i in inside],
                                            unsure=unsure, order=labels)  # fmt: skip
        topic_entries.append({
            "id": topic,
            "label": names[topic],
            "keywords": keywords[topic],
            "size": len(inside),
            "share": round(len(inside) / len(texts), 4),
            "sentiment": {label: v["share"] for label, v in topic_sentiment["sentiment"].items()},
            "unsure": topic_sentiment["unsure"]["share"],
            "quotes": [{"text": distinct[heads[i]], "count": int(merged[heads[i]])} for i in picked],
            "summary": summary.text,
        })  # fmt: skip
    report = {
        "n_texts": len(texts),
        "n_distinct": len(distinct),
        "sentiment": overall["sentiment"],
        "unsure": overall["unsure"],
        "topic_choice": choice,
        "topics": topic_entries,
    }
    sure_labels = [s[0] if s[1] >= unsure else None for s in sentiments]
    if dates is not None:
        keys, unit = period_keys(dates, period)
        report["periods"] = breakdown(keys, topic_of, sure_labels, k, labels)
        report["period_unit"] = unit
        report["period_changes"] = biggest_changes(report["periods"], names)
    if groups is not None:
        report["groups"] = breakdown(list(groups), topic_of, sure_labels, k, labels)
        report["group_differences"] = biggest_changes(report["groups"], names, across=True)
    rows = [
        {
            "text": text,
            "sentiment": sentiments[i][0],
            "sentiment_probability": round(float(sentiments[i][1]), 4),
            "topic": topic_of[i],
            "topic_label": names[topic_of[i]],
        }
        for i, text in enumerate(texts)
    ]
    return Analysis(report, rows)


# --- periods and groups -----------------------------------------------------------------------------------


def parse_date(value: str, where: str = "") -> date:
    """An ISO date, year-month, year or timestamp.

    >>> parse_date("2024-03"), parse_date("2024-03-05T10:00:00Z")
    (datetime.date(2024, 3, 1), datetime.date(2024, 3, 5))
    """
    text = value.strip()
    try:
        if len(text) == 4 and text.isdigit():
            return date(int(text), 1, 1)
        if len(text) == 7 and text[4] == "-":
            return date(int(text[:4]), int(text[5:]), 1)
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        raise CorpusError(
            f"{where + ': ' if where else ''}{value!r} is not a date; use ISO dates such as 2024-03-05, 2024-03 or 2024"
        ) from None


def period_keys(dates: Sequence[str | None], unit: str = "auto") -> tuple[list[str | None], str]:
    """(each text's period label, e.g. '2024-03' / '2024-Q1' / '2024', or None when it has no date; the unit)."""
    if unit not in PERIODS:
        raise ConfigError(f"period {unit!r}: choose one of {', '.join(PERIODS)}")
    parsed = [parse_date(d, f"row {i + 1}") if d and d.strip() else None for i, d in enumerate(dates)]
    labels = {
        "month": lambda d: f"{d.year}-{d.month:02d}",
        "quarter": lambda d: f"{d.year}-Q{(d.month - 1) // 3 + 1}",
        "year": lambda d: str(d.year),
    }
    if unit == "auto":
        present = [d for d in parsed if d is not None]
        months = (
            (max(present).year - min(present).year) * 12 + max(present).month - min(present).month + 1
            if present
            else 1
        )
        unit = "month" if months <= 24 else "quarter" if months <= 72 else "year"  # at most 24 periods
    return [labels[unit](d) if d is not None else None for d in parsed], unit


def breakdown(keys: Sequence[str | None], topic_of: Sequence[int], sure_labels: Sequence[str | None], k: int,
              labels: Sequence[str] = ()) -> list[dict]:  # fmt: skip
    """Per key (period or group, sorted): its number of texts, each topic's share of them, and the share of each
    sentiment label among its sure texts. Texts without a key are left out."""
    entries = []
    for key in sorted({key for key in keys if key is not None}):
        rows = [i for i, other in enumerate(keys) if other == key]
        topic_counts = np.bincount([topic_of[i] for i in rows], minlength=k)
        sure = [sure_labels[i] for i in rows if sure_labels[i] is not None]
        names = list(dict.fromkeys([*labels, *sure]))
        entries.append({
            "key": key,
            "n": len(rows),
            "topics": {str(t): round(topic_counts[t] / len(rows), 4) for t in range(k)},
            "sentiment": {name: round(sure.count(name) / len(sure), 4) if sure else 0.0 for name in names},
        })  # fmt: skip
    return entries


def biggest_changes(
    entries: list[dict], names: Sequence[str], top: int = 3, across: bool = False
) -> list[dict]:
    """The topics whose share moved most: from the first period to the last, or (`across`, for groups)
    between the group where it is smallest and the one where it is largest. Biggest first."""
    if len(entries) < 2:
        return []
    changes = []
    for topic, name in enumerate(names):
        shares = [(entry["key"], entry["topics"][str(topic)]) for entry in entries]
        if across:
            (low_key, low), (high_key, high) = (
                min(shares, key=lambda s: s[1]),
                max(shares, key=lambda s: s[1]),
            )
            start, end = (low_key, low), (high_key, high)
        else:
            start, end = shares[0], shares[-1]
        changes.append({"topic": topic, "label": name, "from": start[0], "to": end[0],
                        "share_from": start[1], "share_to": end[1], "change": round(end[1] - start[1], 4)})  # fmt: skip
    return sorted(changes, key=lambda c: -abs(c["change"]))[:top]


# --- writing ----------------------------------------------------------------------------------------------


def texts_csv(rows: Sequence[dict]) -> str:
    """texts.csv's content: the columns text, sentiment, sentiment_probability, topic, topic_label."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TEXT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_report(analysis: Analysis, out: str | os.PathLike, *, html: bool = True, title: str = "") -> Path:
    """OUT/report.html (unless not `html`), OUT/report.json and OUT/texts.csv: all of them or none. They are
    written into a temporary folder beside OUT first; a new OUT is that folder renamed, an existing one
    gets each file renamed into it, so no reader ever sees a half-written file or a report of two runs."""
    import shutil
    import tempfile

    from lmforge.io import write_json, write_text

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: a file is in the way; give a directory for the report")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        if html:
            from lmforge.analyze.page import render_page

            write_text(staging / "report.html", render_page(analysis.report, title=title))
        write_json(staging / "report.json", analysis.report, newline=True)
        write_text(staging / "texts.csv", texts_csv(analysis.rows))
        if out.is_dir():
            for path in sorted(staging.iterdir()):
                os.replace(path, out / path.name)
        else:
            staging.chmod(0o755)  # mkdtemp makes it private
            os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
