"""`lmforge analyze` as a function: files in, a report directory out.

    from lmforge.analyze.run import analyze_files
    analysis = analyze_files(["reviews.csv"], classifier="runs/sst2-minilm/model", date_column="date")
    write_report(analysis, "runs/report")          # report.html, report.json, texts.csv

1. read: the texts of the files (CSV / TSV / JSONL / text: `lmforge.analyze.inputs`), with the date and
   group columns when named; a missing column, an empty or non-UTF-8 file, too few texts for the topics
   asked for: one-line errors before any model is loaded;
2. load: the classifier (`Classification`: a fine-tuned sequence classifier, any other kind of model
   refused in one line) and the sentence embedder (`SentenceEmbedding`, all-MiniLM-L6-v2 by default);
3. sentiment: each distinct text classified once (in batches of similar length), its top label and that
   label's probability; texts longer than the classifier reads are cut, counted and reported;
4. topics, quotes, summaries, periods and groups: `lmforge.analyze.report.analyze_texts`;
5. the files: `lmforge.analyze.report.write_report` (all three written, or none).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from lmforge.analyze.inputs import read_texts
from lmforge.analyze.report import Analysis, analyze_texts
from lmforge.analyze.summarize import DEFAULT_EMBEDDER
from lmforge.analyze.topics import check_topic_count, merge_duplicates


def analyze_files(
    files: Sequence[str],
    *,
    classifier: str,
    embedder: str = DEFAULT_EMBEDDER,
    text_column: str | None = None,
    date_column: str | None = None,
    group_column: str | None = None,
    topics: int | str = "auto",
    unsure: float = 0.6,
    period: str = "auto",
    max_length: int = 128,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> Analysis:
    """The analysis of the texts of `files` (see the module's docstring); `log` gets a line per step,
    `warn` a line per thing the reader should know (texts cut)."""
    from lmforge.analyze.summarize import embedder as load_embedder
    from lmforge.pipelines import Classification

    inputs = read_texts(files, text_column=text_column, date_column=date_column, group_column=group_column)
    check_topic_count(len(merge_duplicates(inputs.texts)[0]), topics)
    classify = Classification.load(classifier, name="--classifier")
    embed = load_embedder(embedder, progress=progress, progress_from=200)
    log(f"{len(inputs.texts):,} texts from {len(inputs.files)} file(s); sentiment: {classifier}; "
        f"topics: embeddings of {embedder}")  # fmt: skip

    sentiments = classify_texts(classify, inputs.texts, max_length=max_length, batch_size=batch_size,
                                progress=progress)  # fmt: skip
    limits = {
        "classifier": min(max_length, classify.model.config.max_positions),
        "embedder": embed.pipeline.embedder.max_length,
    }
    lengths = {
        "classifier": token_lengths(classify, inputs.texts),
        "embedder": token_lengths(embed.pipeline, inputs.texts),
    }
    truncated = {name: sum(n > limits[name] for n in lengths[name]) for name in limits}
    for name, count in truncated.items():
        if count:
            warn(f"warning: {count:,} of {len(inputs.texts):,} texts are longer than the {name}'s "
                 f"{limits[name]} tokens and were cut to them (report.json: truncated)")  # fmt: skip

    analysis = analyze_texts(inputs.texts, embed=embed, sentiments=sentiments, labels=classify.labels,
                             dates=inputs.dates, groups=inputs.groups, topics=topics, unsure=unsure,
                             period=period, seed=seed, progress=progress)  # fmt: skip
    analysis.report.update({
        "files": inputs.files,
        "text_columns": inputs.text_columns,
        "blank_rows": inputs.blank,
        "date_column": date_column,
        "group_column": group_column,
        "classifier": str(classifier),
        "labels": classify.labels,
        "embedder": str(embedder),
        "truncated": {**truncated, "classifier_tokens": limits["classifier"],
                      "embedder_tokens": limits["embedder"]},
    })  # fmt: skip
    return analysis


def classify_texts(pipeline, texts: Sequence[str], *, max_length: int = 128, batch_size: int = 32,
                   progress: bool = False) -> list[tuple[str, float]]:  # fmt: skip
    """(top label, its probability) of each text: each distinct text classified once, in batches of
    texts of similar length (so little padding), with a progress bar."""
    from tqdm.auto import tqdm

    distinct = list(dict.fromkeys(texts))
    order = sorted(range(len(distinct)), key=lambda i: len(distinct[i]))
    found: dict[str, tuple[str, float]] = {}
    step = 8 * batch_size  # texts per call: a few batches per update of the bar
    with tqdm(total=len(distinct), desc="sentiment", unit="text", leave=False, disable=not progress) as bar:
        for start in range(0, len(order), step):
            chunk = [distinct[i] for i in order[start : start + step]]
            for text, result in zip(chunk, pipeline(chunk, batch_size=batch_size, max_length=max_length),
                                    strict=True):  # fmt: skip
                found[text] = (result.label, result.probabilities[result.label])
            bar.update(len(chunk))
    return [found[text] for text in texts]


def token_lengths(pipeline, texts: Sequence[str]) -> list[int]:
    """How many tokens each text has with nothing cut (special tokens included), by the pipeline's own
    tokenizer; its truncation and padding settings are put back after."""
    tokenizer = pipeline.tokenizer
    with pipeline.tokenizer_lock:
        saved = tokenizer.truncation, tokenizer.padding
        tokenizer.no_truncation()
        tokenizer.no_padding()
        try:
            distinct = list(dict.fromkeys(texts))
            found = {
                text: len(e.ids) for text, e in zip(distinct, tokenizer.encode_batch(distinct), strict=True)
            }
        finally:
            tokenizer.truncation, tokenizer.padding = saved
    return [found[text] for text in texts]


def summary_lines(report: dict) -> list[str]:
    """What the command prints when the report is written: the sentiment shares, then each topic."""
    choice = report["topic_choice"]
    how = "k by silhouette" if choice.get("asked") == "auto" else "k as asked"
    sure = sum(v["count"] for v in report["sentiment"].values())
    shares = ", ".join(
        f"{label} {v['share']:.1%} [{v['ci_low']:.1%}, {v['ci_high']:.1%}]"
        for label, v in report["sentiment"].items()
    )
    lines = [
        f"{report['n_texts']:,} texts ({report['n_distinct']:,} distinct) -> {choice['topics']} topics "
        f"({choice.get('algorithm', 'KMeans')}, {how})",
        f"sentiment of the {sure:,} sure texts: {shares}; unsure {report['unsure']['count']:,} "
        f"({report['unsure']['share']:.1%})",
    ]
    for topic in report["topics"]:
        split = ", ".join(f"{label} {share:.0%}" for label, share in topic["sentiment"].items())
        lines.append(
            f"  topic {topic['id']} ({topic['size']:,} texts; {split}): {', '.join(topic['keywords'][:6])}"
        )
    for key in ("period_changes", "group_differences"):
        for change in report.get(key, [])[:1]:
            lines.append(f"biggest change: topic {change['topic']} ({change['label']}) {change['share_from']:.1%} "
                         f"in {change['from']} -> {change['share_to']:.1%} in {change['to']}")  # fmt: skip
    return lines
