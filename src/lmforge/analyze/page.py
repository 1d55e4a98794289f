"""report.html: the analysis as one self-contained page — plots inlined as PNG, no script, works offline.

    from lmforge.analyze.page import render_page
    html = render_page(analysis.report)

What it shows, from report.json's numbers alone: the sentiment shares with their 95% intervals and the
unsure texts apart; the topics (size, sentiment split, keywords, extractive summary, the three quotes
nearest the centre with how many texts each stands for); topic shares and sentiment per period and per
group, with the biggest changes; how the number of topics was chosen and what was cut. Every text from the
data (quotes, summaries, keywords, labels, file and column names) goes through `lmforge.html.escape`, and
the page's policy (`lmforge.html.page`) runs no script at all, so a `<script>` in a review is shown, never
run.
"""

from __future__ import annotations

import numpy as np

from lmforge.html import escape, image, page

SENTIMENT_COLOURS = {"negative": "#c0392b", "neutral": "#95a5a6", "positive": "#27ae60", "unsure": "#d5d8dc"}
OTHER_COLOURS = ["#2980b9", "#8e44ad", "#d35400", "#16a085", "#f39c12", "#7f8c8d", "#2c3e50", "#e84393"]
MOST_LINES = 8  # topics drawn as lines over time; the rest are in the table

STYLE = """body { font: 15px/1.45 system-ui, sans-serif; max-width: 62rem; margin: 1.5rem auto; padding: 0 1rem;
       color: #222; }
h1 { margin-bottom: .2rem; } .meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: .5rem 0 1rem; } td, th { border: 1px solid #ccc;
       padding: .2rem .5rem; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; } .note { background: #fff8e1; border-left: 4px solid #f1c40f; padding: .4rem .8rem; }
section.topic { border-top: 1px solid #ddd; padding-top: .3rem; }
.keywords { color: #444; } blockquote { margin: .3rem 0 .3rem 1rem; padding-left: .6rem;
       border-left: 3px solid #bbb; white-space: pre-wrap; } .count { color: #777; font-size: 90%; }"""


def render_page(report: dict, *, title: str = "") -> str:
    """The whole HTML document of `report` (a report.json dict)."""
    labels = _labels(report)
    title = title or f"Analysis of {report['n_texts']:,} texts"
    parts = [f"<h1>{escape(title)}</h1>", _meta(report)]
    if report.get("note"):
        parts.append(f'<p class="note" id="note">{escape(report["note"])}</p>')
    parts += [_sentiment(report, labels), _topics(report, labels)]
    if "periods" in report:
        parts.append(_breakdown(report, "periods", labels))
    if "groups" in report:
        parts.append(_breakdown(report, "groups", labels))
    parts.append(_method(report))
    return page(title, "\n".join(parts), style=STYLE)


# --- sections -----------------------------------------------------------------------------------------------


def _meta(report: dict) -> str:
    files = ", ".join(report.get("files", [])) or "texts given in Python"
    bits = [f"{report['n_texts']:,} texts ({report['n_distinct']:,} distinct) from {files}"]
    if report.get("classifier"):
        bits.append(f"sentiment by {report['classifier']}")
    if report.get("embedder"):
        bits.append(f"topics from the sentence embeddings of {report['embedder']}")
    return '<p class="meta">' + escape("; ".join(bits) + ".") + "</p>"


def _sentiment(report: dict, labels: list[str]) -> str:
    rows = [
        [
            label,
            f"{v['count']:,}",
            _percent(v["share"]),
            f"{_percent(v['ci_low'])} – {_percent(v['ci_high'])}",
        ]
        for label, v in report["sentiment"].items()
    ]
    unsure = report["unsure"]
    text = (
        f"Shares of the texts the classifier is sure of (top probability at least {unsure['threshold']}), with "
        f"Wilson 95% intervals. {unsure['count']:,} texts ({_percent(unsure['share'])} of all) fall below and "
        "are counted apart as unsure."
    )
    figure = image(_sentiment_figure(report, labels), "sentiment shares with 95% intervals", class_="plot")
    return (
        '<section id="sentiment"><h2>Sentiment</h2>'
        f"<p>{escape(text)}</p>{_table(['label', 'texts', 'share', '95% interval'], rows, numeric=(1, 2))}"
        f"<p>{figure}</p></section>"
    )


def _topics(report: dict, labels: list[str]) -> str:
    choice = report["topic_choice"]
    how = (
        f"{choice['topics']} topics, chosen by the silhouette on a sample (k from 2 to 10)"
        if choice.get("asked") == "auto"
        else f"{choice['topics']} topics, as asked"
    )
    intro = (
        f"{how}: {choice.get('algorithm', 'KMeans')} on the sentence embeddings; each topic is named by its most "
        "distinctive words (class-based TF-IDF) and quoted by the texts nearest its centre, each quote with the "
        "number of texts it stands for (its copies and near-copies)."
    )
    figure = image(_topics_figure(report, labels), "topic sizes by sentiment", class_="plot")
    header = ["topic", "words", "texts", "share", *labels, "unsure"]
    rows = [
        [str(t["id"]), ", ".join(t["keywords"][:5]), f"{t['size']:,}", _percent(t.get("share", 0))]
        + [_percent(t["sentiment"].get(label, 0)) for label in labels]
        + [_percent(t.get("unsure", 0))]
        for t in report["topics"]
    ]
    overview = _table(header, rows, numeric=tuple(range(2, len(header))))
    sections = [_topic(topic, labels) for topic in report["topics"]]
    return (
        f'<section id="topics"><h2>Topics</h2><p>{escape(intro)}</p><p>{figure}</p>{overview}'
        + "".join(sections)
        + "</section>"
    )


def _topic(topic: dict, labels: list[str]) -> str:
    split = ", ".join(f"{label} {_percent(topic['sentiment'].get(label, 0))}" for label in labels)
    quotes = "".join(
        f"<blockquote>{escape(quote['text'])}"
        + (f' <span class="count">×{quote["count"]:,}</span>' if quote["count"] > 1 else "")
        + "</blockquote>"
        for quote in topic["quotes"]
    )
    return (
        f'<section class="topic" id="topic-{topic["id"]}"><h3>Topic {topic["id"]}: {escape(topic["label"])}</h3>'
        f'<p class="keywords">Words: {escape(", ".join(topic["keywords"]))}</p>'
        f"<p>{topic['size']:,} texts ({_percent(topic.get('share', 0))}); sentiment of the sure ones: "
        f"{escape(split)}; unsure {_percent(topic.get('unsure', 0))}.</p>"
        f'<p class="summary"><b>Summary.</b> {escape(topic["summary"])}</p>'
        f'<div class="quotes">{quotes}</div></section>'
    )


def _breakdown(report: dict, key: str, labels: list[str]) -> str:
    """The periods or the groups: a figure, a table and the biggest changes."""
    entries = report[key]
    names = [f"{t['id']}: {t['label']}" for t in report["topics"]]
    if key == "periods":
        heading = f"Over time (by {report.get('period_unit', 'period')})"
        changes, what = report.get("period_changes", []), "from the first period to the last"
        column = report.get("date_column") or "date"
    else:
        heading = "By group"
        changes, what = (
            report.get("group_differences", []),
            "between the group where it is smallest and largest",
        )
        column = report.get("group_column") or "group"
    header = [column, "texts", *[f"topic {t['id']}" for t in report["topics"]], *labels]
    rows = [
        [entry["key"], f"{entry['n']:,}"]
        + [_percent(entry["topics"][str(t["id"])]) for t in report["topics"]]
        + [_percent(entry["sentiment"].get(label, 0)) for label in labels]
        for entry in entries
    ]
    called = "".join(
        f"<li>{escape(c['label'])}: {_percent(c['share_from'])} in {escape(c['from'])} → "
        f"{_percent(c['share_to'])} in {escape(c['to'])} ({c['change'] * 100:+.1f} points)</li>"
        for c in changes
    )
    figure = image(_breakdown_figure(entries, names, labels, key), f"topic shares and sentiment by {key}",
                   class_="plot")  # fmt: skip
    return (
        f'<section id="{key}"><h2>{escape(heading)}</h2>'
        f"<p>Biggest changes in topic share, {escape(what)}:</p><ul>{called}</ul><p>{figure}</p>"
        f"<p>Topic shares of each row's texts; sentiment shares of its sure texts.</p>"
        f"{_table(header, rows, numeric=tuple(range(1, len(header))))}</section>"
    )


def _method(report: dict) -> str:
    choice = report["topic_choice"]
    lines = []
    if "silhouette" in choice:
        scores = ", ".join(f"k={k}: {v:.3f}" for k, v in choice["silhouette"].items())
        lines.append(f"Silhouette (cosine) by number of topics: {scores}.")
    demo = report.get("demo")
    if demo:
        lines.append(
            f"Classifier: {demo['classifier']}. Its accuracy against the gold labels of these texts: "
            f"{_percent(demo['accuracy_against_gold_labels'])} (unsure texts included, by their top label)."
        )
    truncated = report.get("truncated")
    if truncated:
        lines.append(
            f"Texts longer than the model reads, cut: {truncated['classifier']:,} for the classifier "
            f"({truncated['classifier_tokens']} tokens), {truncated['embedder']:,} for the embedder "
            f"({truncated['embedder_tokens']} tokens)."
        )
    lines.append(
        f"{report['n_texts'] - report['n_distinct']:,} texts repeat another one (case, punctuation and spacing "
        "ignored) and count with their multiplicity. Every number of this page is in report.json; each text's "
        "sentiment and topic in texts.csv."
    )
    return (
        '<section id="method"><h2>How this was made</h2>'
        + "".join(f"<p>{escape(x)}</p>" for x in lines)
        + "</section>"
    )


# --- figures ------------------------------------------------------------------------------------------------


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _colour(label: str, index: int) -> str:
    return SENTIMENT_COLOURS.get(label.lower(), OTHER_COLOURS[index % len(OTHER_COLOURS)])


def _sentiment_figure(report: dict, labels: list[str]):
    figure = _figure(6.5, 0.6 + 0.45 * max(len(labels), 1))
    axes = figure.add_subplot()
    shares = [report["sentiment"][label]["share"] * 100 for label in labels]
    low = [s - report["sentiment"][label]["ci_low"] * 100 for s, label in zip(shares, labels, strict=True)]
    high = [report["sentiment"][label]["ci_high"] * 100 - s for s, label in zip(shares, labels, strict=True)]
    axes.barh(labels, shares, xerr=[low, high], capsize=4,
              color=[_colour(label, i) for i, label in enumerate(labels)])  # fmt: skip
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of the sure texts (95% interval)")
    return figure


def _topics_figure(report: dict, labels: list[str]):
    topics = report["topics"]
    figure = _figure(7.5, 0.7 + 0.38 * len(topics))
    axes = figure.add_subplot()
    names = [_short(f"{t['id']}: {t['label']}") for t in topics]
    left = np.zeros(len(topics))
    for i, label in enumerate([*labels, "unsure"]):
        if label == "unsure":
            widths = np.array([t["size"] * t.get("unsure", 0) for t in topics])
        else:
            widths = np.array(
                [t["size"] * (1 - t.get("unsure", 0)) * t["sentiment"].get(label, 0) for t in topics]
            )
        axes.barh(names, widths, left=left, color=_colour(label, i), label=label)
        left += widths
    axes.invert_yaxis()
    axes.set_xlabel("texts")
    axes.legend(loc="lower right", fontsize="small")
    return figure


def _breakdown_figure(entries: list[dict], names: list[str], labels: list[str], key: str):
    figure = _figure(8, 5.2)
    top, bottom = figure.subplots(2, 1, sharex=True)
    keys = [entry["key"] for entry in entries]
    x = np.arange(len(keys))
    shown = sorted(range(len(names)), key=lambda t: -max(e["topics"][str(t)] for e in entries))[:MOST_LINES]
    for n, topic in enumerate(sorted(shown)):
        shares = [e["topics"][str(topic)] * 100 for e in entries]
        if key == "periods":
            top.plot(
                x, shares, marker="o", label=_short(names[topic]), color=OTHER_COLOURS[n % len(OTHER_COLOURS)]
            )
        else:
            width = 0.8 / len(shown)
            top.bar(x + n * width - 0.4 + width / 2, shares, width, label=_short(names[topic]),
                    color=OTHER_COLOURS[n % len(OTHER_COLOURS)])  # fmt: skip
    top.set_ylabel("topic share (%)")
    top.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for i, label in enumerate(labels):
        bottom.plot(x, [e["sentiment"].get(label, 0) * 100 for e in entries], marker="o", label=label,
                    color=_colour(label, i))  # fmt: skip
    bottom.set_ylabel("sentiment of sure texts (%)")
    bottom.set_ylim(0, 100)
    bottom.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    bottom.set_xticks(
        x,
        [_short(k, 14) for k in keys],
        rotation=45 if len(keys) > 6 else 0,
        ha="right" if len(keys) > 6 else "center",
    )
    return figure


# --- helpers ------------------------------------------------------------------------------------------------


def _labels(report: dict) -> list[str]:
    return list(report.get("labels") or report["sentiment"])


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def _short(text: str, most: int = 40) -> str:
    """A plot label: at most `most` characters (matplotlib would otherwise widen the figure without end);
    dollar signs escaped, since matplotlib reads $...$ as mathematics."""
    text = text if len(text) <= most else text[: most - 1] + "…"
    return text.replace("$", r"\$")


def _table(header: list[str], rows: list[list[str]], numeric: tuple[int, ...] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    cell = ('<td class="n">', "<td>")
    body = "".join(
        "<tr>" + "".join(f"{cell[i not in numeric]}{escape(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
