"""`lmforge summarize` and `lmforge.analyze.summarize`: the sentence splitter on hard cases, lead-k on XSum,
TextRank against networkx's PageRank, MMR on a worked example, ROUGE against rouge-score, the errors.

The XSum file is a sample of XSum's *validation* split (../shared/data/xsum/README.md), not its test split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lmforge.analyze.sentences import split_sentences
from lmforge.analyze.summarize import (
    Summarizer,
    centroid_relevance,
    cosine_matrix,
    mmr_order,
    novel_ngram_shares,
    similarity_graph,
    textrank_scores,
    tfidf_vectors,
)


def xsum_rows(shared_data: Path, limit: int | None = None) -> list[dict]:
    """The XSum validation sample of ../shared/data (the `shared_data` fixture: skips without it, fails under
    CI=true)."""
    path = shared_data / "xsum" / "validation-1000.jsonl"
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for _, line in zip(range(limit or 10**9), handle, strict=False)]


# --- the sentence splitter -----------------------------------------------------------------------------------

GOLDEN = [
    ("Mr. Smith went to Washington. He arrived at 5 p.m. on Friday.",
     ["Mr. Smith went to Washington.", "He arrived at 5 p.m. on Friday."]),
    ("The price rose 3.5% to $12.40. Analysts were surprised.",
     ["The price rose 3.5% to $12.40.", "Analysts were surprised."]),
    ('"We will win," he said. "Nobody can stop us."', ['"We will win," he said.', '"Nobody can stop us."']),
    ('"Stop!" she shouted. Everyone froze.', ['"Stop!" she shouted.', "Everyone froze."]),
    ('He asked: "Is it over?" Nobody answered.', ['He asked: "Is it over?"', "Nobody answered."]),
    ('He called it "a disaster." Then he left.', ['He called it "a disaster."', "Then he left."]),
    ("J. K. Rowling wrote the books. They sold well.", ["J. K. Rowling wrote the books.", "They sold well."]),
    ("George W. Bush met Gen. Petraeus in Iraq.", ["George W. Bush met Gen. Petraeus in Iraq."]),
    ("Bring apples, pears, etc. to the party.", ["Bring apples, pears, etc. to the party."]),
    ("We sold apples, pears, etc. The rest went to waste.",
     ["We sold apples, pears, etc.", "The rest went to waste."]),
    ("She moved to the U.S. in 2010.", ["She moved to the U.S. in 2010."]),
    ("He works in the U.S. The job pays well.", ["He works in the U.S.", "The job pays well."]),
    ("It won No. 1 spot in Fig. 3 of the report.", ["It won No. 1 spot in Fig. 3 of the report."]),
    ("The answer was no. Then we argued.", ["The answer was no.", "Then we argued."]),
    ("Wait... what happened? I don't know!", ["Wait... what happened?", "I don't know!"]),
    ("It ended in 2019. 2020 was worse.", ["It ended in 2019.", "2020 was worse."]),
    ("Visit www.example.com for details. Thanks.", ["Visit www.example.com for details.", "Thanks."]),
    ("The ruling (see p. 4) was final. Appeals failed.", ["The ruling (see p. 4) was final.", "Appeals failed."]),
    ("It was cheap (about £5.) Many bought it.", ["It was cheap (about £5.)", "Many bought it."]),
    ("e.g. this is one sentence, i.e. not two.", ["e.g. this is one sentence, i.e. not two."]),
    ("Dr. No is a film. St. Andrews is a town.", ["Dr. No is a film.", "St. Andrews is a town."]),
    ("First line without a stop\nSecond line.", ["First line without a stop", "Second line."]),
    ("", []),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), GOLDEN, ids=[t[:30] or "empty" for t, _ in GOLDEN])
def test_the_splitter_on_hard_cases(text, expected):
    assert split_sentences(text) == expected


# --- the methods ----------------------------------------------------------------------------------------------


def test_lead_k_is_the_first_k_lines_of_each_xsum_document(shared_data):
    """XSum (validation sample) puts a document's sentences on their own lines: lead-k is its first k lines."""
    documents = [row["document"] for row in xsum_rows(shared_data)]
    for method, k in [("lead-1", 1), ("lead-3", 3), ("lead", 5)]:
        summaries = Summarizer(method, sentences=5 if method == "lead" else None)(documents)
        expected = [[line.strip() for line in d.split("\n") if line.strip()][:k] for d in documents]
        assert [s.sentences for s in summaries] == expected
        assert [s.text for s in summaries] == [" ".join(lines) for lines in expected]


def test_textrank_scores_are_networkx_pagerank_on_the_same_graph(shared_data):
    networkx = pytest.importorskip("networkx")
    documents = [row["document"] for row in xsum_rows(shared_data, 12)]
    rng = np.random.default_rng(0)
    graphs = [tfidf_vectors([s for s in d.split("\n") if s.strip()]) for d in documents if d.strip()]
    graphs.append(rng.normal(size=(9, 5)))  # embedding-like: some similarities negative (dropped)
    graphs.append(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))  # a sentence like no other: dangling
    for vectors in graphs:
        weights = similarity_graph(vectors)
        graph = networkx.Graph()
        graph.add_nodes_from(range(len(weights)))
        graph.add_weighted_edges_from(
            (i, j, weights[i, j])
            for i in range(len(weights))
            for j in range(i + 1, len(weights))
            if weights[i, j] > 0
        )
        expected = networkx.pagerank(graph, alpha=0.85, weight="weight", tol=1e-13, max_iter=10_000)
        ours = textrank_scores(vectors)
        np.testing.assert_allclose(ours, [expected[i] for i in range(len(weights))], rtol=0, atol=1e-9)


def test_mmr_worked_example():
    """Four sentences; 0 and 1 say the same, 2 is less relevant but new, 3 is off topic.

    relevance (cosine with the centroid) = [0.90, 0.88, 0.60, 0.10]; similarities below. trade-off 0.5:
    step 1: 0.5·0.90 = 0.45 (0) beats 0.44, 0.30, 0.05 → 0.
    step 2: 1 → 0.44 − 0.5·0.95 = −0.035; 2 → 0.30 − 0.5·0.20 = 0.20; 3 → 0.05 − 0.5·0.05 = 0.025 → 2.
    step 3: 1 → 0.44 − 0.5·max(0.95, 0.25) = −0.035; 3 → 0.05 − 0.5·max(0.05, 0.30) = −0.10 → 1.
    With trade-off 1 (relevance only) the order is 0, 1, 2, 3: the near-copy comes second.
    """
    relevance = np.array([0.90, 0.88, 0.60, 0.10])
    similarity = np.array(
        [
            [1.00, 0.95, 0.20, 0.05],
            [0.95, 1.00, 0.25, 0.00],
            [0.20, 0.25, 1.00, 0.30],
            [0.05, 0.00, 0.30, 1.00],
        ]
    )
    assert list(mmr_order(relevance, similarity, 0.5)) == [0, 2, 1, 3]
    assert list(mmr_order(relevance, similarity, 1.0)) == [0, 1, 2, 3]


def test_centroid_passes_over_a_repeated_sentence():
    sentences = [
        "The council approved the new budget for schools on Monday.",
        "The council approved the new budget for schools on Monday.",
        "Teachers welcomed the budget for schools.",
        "Parents said the schools budget was late.",
    ]
    document = " ".join(sentences)
    vectors = tfidf_vectors(sentences)
    relevance = centroid_relevance(vectors)
    assert relevance[0] == relevance[1] == relevance.max()  # by relevance alone both copies come first
    plain = Summarizer("centroid", sentences=2, trade_off=1.0)([document])[0]
    assert plain.indices == [0, 1]
    mmr = Summarizer("centroid", sentences=2, trade_off=0.7)([document])[0]
    assert mmr.indices[0] == 0 and mmr.indices[1] in (2, 3)
    np.testing.assert_allclose(np.diag(cosine_matrix(vectors)), 1.0)


def test_word_budget_keeps_whole_sentences_in_document_order():
    document = "One two three four. Five six. Seven eight nine ten eleven. Twelve."
    assert Summarizer("lead", words=6)([document])[0].sentences == ["One two three four.", "Five six."]
    assert Summarizer("lead", words=2)([document])[0].sentences == ["One two three four."]  # first always
    summary = Summarizer("textrank", words=7, sentences=None)([document])[0]
    assert summary.words <= 7 and summary.indices == sorted(summary.indices)


def test_novel_ngrams_by_hand():
    # reference unigrams the, cat, sat, down: "sat" and "down" are new (50%); bigrams: 2 of 3 new
    shares = novel_ngram_shares(["The cat sat down", "A dog"], ["the cat was sitting", "a big dog"], (1, 2))
    assert shares == {"1": round(100 * 2 / 6, 2), "2": round(100 * 3 / 4, 2)}


# --- the command ------------------------------------------------------------------------------------------------


def test_eval_json_matches_rouge_score_and_writes_summaries(cli, tmp_path, shared_data):
    """`summarize eval --json --out-dir` on 40 XSum documents with the four methods: each method's summaries
    written one per line in input order (sentences joined by a space) are the summariser's, and its ROUGE-1/2/L/
    Lsum (a summary's sentences one per line for Lsum) = rouge-score's mean F1 ×100 with stemming."""
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    rows = xsum_rows(shared_data, 40)
    data = tmp_path / "xsum-40.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    methods = ["lead-1", "lead-3", "textrank", "centroid"]
    code, out, err = cli("summarize", "eval", *[a for m in methods for a in ("--method", m)], "--embedder", "tfidf",
                         "--data", str(data), "--json", "--out-dir", str(tmp_path / "out"), "--resamples", "200")  # fmt: skip
    assert code == 0, err
    results = json.loads(out)
    assert list(results) == methods
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    documents = [row["document"] for row in rows]
    for method in methods:
        if method.startswith("lead-"):  # lead-k: the first k lines of the document, as it stands in the file
            k = int(method[-1])
            chosen = [[s.strip() for s in d.split("\n") if s.strip()][:k] for d in documents]
        else:
            chosen = [summary.sentences for summary in Summarizer(method)(documents)]
        written = (tmp_path / "out" / f"{method}.txt").read_text().splitlines()
        assert written == [" ".join(lines) for lines in chosen], method
        for rouge_type in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
            expected = np.mean(
                [
                    scorer.score(row["summary"], "\n".join(lines))[rouge_type].fmeasure
                    for row, lines in zip(rows, chosen, strict=True)
                ]
            )
            assert results[method][rouge_type] == pytest.approx(100 * expected, abs=0.006), (
                method,
                rouge_type,
            )
            low, high = results[method]["ci95"][rouge_type]
            assert low <= results[method][rouge_type] <= high
        words = sum(len(" ".join(lines).split()) for lines in chosen)
        assert results[method]["summary_words"] == round(words / 40, 1)
        assert results[method]["compression"] == round(sum(len(d.split()) for d in documents) / words, 2)
    assert results["textrank"]["sentences"] == 3 and results["textrank"]["vectors"] == "tfidf"
    assert results["centroid"]["vectors"] == "tfidf" and results["lead-1"]["vectors"] is None
    assert results["lead-1"]["reference_novel_ngrams"]["1"] > 20  # XSum's references are abstractive
    assert results["lead-1"]["reference_novel_ngrams"] == novel_ngram_shares(
        [row["summary"] for row in rows], documents
    )


def test_textrank_and_centroid_on_sentence_embeddings():
    """With an embedder, TextRank ranks by PageRank over the embeddings' cosine graph and the centroid by
    MMR over them: the same choice as computing the scores from those vectors directly."""
    sentences = [
        "The council approved the schools budget on Monday.",
        "Teachers will get a pay rise.",
        "The schools budget passed after a long debate.",
        "It rained in the afternoon.",
        "Parents welcomed the budget for schools.",
    ]
    rng = np.random.default_rng(1)
    table = {s: rng.normal(size=8) for s in sentences}
    table[sentences[2]] = table[sentences[0]] + 0.1 * rng.normal(size=8)  # a near-copy of the first

    def embed(batch: list[str]) -> np.ndarray:
        vectors = np.array([table[s] for s in batch])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    document = " ".join(sentences)
    vectors = embed(sentences)
    scores = textrank_scores(vectors)
    best = sorted(sorted(range(5), key=lambda i: (-scores[i], i))[:2])
    assert Summarizer("textrank", sentences=2, embed=embed)([document])[0].indices == best
    order = list(mmr_order(centroid_relevance(vectors), cosine_matrix(vectors), 0.7))
    summary = Summarizer("centroid", sentences=2, embed=embed)([document])[0]
    assert summary.indices == sorted(order[:2]) and not {0, 2} <= set(summary.indices)  # not both copies


def test_summarize_reads_jsonl_documents(cli, tmp_path):
    docs = tmp_path / "news.jsonl"
    rows = [{"id": 1, "text": "Mr. Lee won. He was happy. Fans cheered."}, {"id": 2, "text": "One line."}]
    docs.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code, out, err = cli(
        "summarize", "--method", "lead", "--sentences", "2", "--document-field", "text", str(docs)
    )
    assert code == 0, err
    assert out.splitlines() == ["Mr. Lee won. He was happy.", "One line."]


def test_summarize_prints_one_summary_per_line(cli, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("Mr. Lee won. He was happy. Fans cheered.\n\nA short one.\n")
    code, out, err = cli("summarize", "--method", "lead", "--sentences", "2", str(docs))
    assert code == 0, err
    assert out.splitlines() == ["Mr. Lee won. He was happy.", "", "A short one."]


@pytest.mark.parametrize(
    ("content", "arguments", "expected"),
    [
        ("", ["--method", "lead-1", "{file}.txt"], "no text (empty file)"),
        ('{"text": "a", "title": "b"}\n', ["--method", "lead-1", "{file}.jsonl"],
         "{file}.jsonl:1: no field 'document' (fields: text, title); choose one with --document-field"),
        ('{"document": "a", "headline": "b"}\n', ["eval", "--method", "lead-1", "--data", "{file}.jsonl"],
         "{file}.jsonl:1: no field 'summary' (fields: document, headline); choose one with --summary-field"),
        ("", ["eval", "--method", "lead-1", "--data", "{file}.jsonl"], "no text (empty file)"),
        ("a b c\n", ["eval", "--method", "lead-1", "--data", "{file}.txt"], "expected a .jsonl file"),
        ("a b c\n", ["--method", "lead-3", "--sentences", "2", "{file}.txt"], "use the method lead with --sentences 2"),
        ("a b c\n", ["--method", "centroid", "--mmr-lambda", "2", "{file}.txt"], "--mmr-lambda must be at most 1"),
    ],
)  # fmt: skip
def test_errors_are_one_line(cli, tmp_path, content, arguments, expected):
    file = tmp_path / "input"
    suffix = next(a for a in arguments if "{file}" in a).split("}")[1]
    Path(f"{file}{suffix}").write_text(content)
    code, out, err = cli("summarize", *[a.format(file=file) for a in arguments])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("lmforge summarize: error:") and expected.format(file=file) in err, err
