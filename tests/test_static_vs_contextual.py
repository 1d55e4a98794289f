"""`lmforge experiment static-vs-contextual`: the word-in-context set and the experiment's pieces.

- the shipped word-in-context set: at least 600 pairs of at least 30 words, balanced overall and per word,
  split by word, every span on its word, every sense in the inventory;
- `load_wic` refuses a label that disagrees with the senses, a word in both splits, a span off its word;
- the probe finds scikit-learn's logistic regression; the cosine threshold is the best one on train
  (brute force), the target's own static vector scores
  exactly 50% on the shipped test split, a representation that knows the senses scores 100%;
- the ±5-word window leaves the target out and stops at the sentence's ends;
- the embedder's several-layers-at-once paths equal one layer at a time, and its batches equal each
  sentence read alone;
- a tiny experiment end to end through the CLI: results.json, table.md and the plot.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from lmforge.embeddings import WordVectors
from lmforge.embeddings.common import torch_threads
from lmforge.errors import CorpusError
from lmforge.experiments.static_vs_contextual import (
    DATA_DIRECTORY,
    fit_threshold,
    load_wic,
    nearest_in_context,
    span_vector,
    static_window,
    wic_result,
)
from train_helpers import one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- the shipped set ----------------------------------------------------------------------------------


def test_the_word_in_context_set_is_big_balanced_and_split_by_word():
    pairs = load_wic()  # checks spans, labels against senses, one split per word
    assert len(pairs) >= 600
    words = {p.word for p in pairs}
    assert len(words) >= 30
    assert Counter(p.label for p in pairs) == {0: len(pairs) // 2, 1: len(pairs) // 2}
    for word in words:  # each word balanced on its own: a per-word prior cannot score
        assert Counter(p.label for p in pairs if p.word == word)[1] * 2 == sum(p.word == word for p in pairs)
    train = {p.word for p in pairs if p.split == "train"}
    test = {p.word for p in pairs if p.split == "test"}
    assert train and test and not train & test and train | test == words
    assert len({(p.sentence1, p.sentence2) for p in pairs}) == len(pairs)  # no pair twice
    senses = {
        (word, sense)
        for word, sense, *_ in (
            line.split("\t") for line in (DATA_DIRECTORY / "wic-senses.tsv").read_text().splitlines()[1:]
        )
    }
    assert {(p.word, s) for p in pairs for s in (p.sense1, p.sense2)} <= senses
    sources = {s for p in pairs for s in (p.source1, p.source2)}
    assert sources <= {"tatoeba", "squad-dev", "wikitext-2-valid", "wikitext-2-test"}  # nothing from train
    readme = (DATA_DIRECTORY / "README.md").read_text()
    assert f"{len(pairs)} pairs" in readme and f"{len(words)} target words" in readme


def test_the_set_comes_from_sentences_no_model_trained_on(shared_data):
    """Every WikiText sentence of the set is absent from WikiText-2 train (the static vectors', ELMo's and
    the tiny BERT's corpus)."""
    train_text = " ".join((shared_data / "wikitext-2" / "train.txt").read_text(encoding="utf-8").split())
    pairs = load_wic()
    wikitext = {
        s
        for p in pairs
        for s, source in ((p.sentence1, p.source1), (p.sentence2, p.source2))
        if source.startswith("wikitext")
    }
    assert wikitext
    for sentence in wikitext:  # WikiText's tokenisation: "word , word" — compare the first words only
        words = sentence.replace(",", " ,").split()[:8]
        assert " ".join(words) not in train_text, sentence


def write_pairs(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def pair(word="cat", split="train", label=1, sense2="A", sentence1="the cat sat", start1=4, end1=7):
    return {"word": word, "split": split, "label": label, "sentence1": sentence1, "start1": start1, "end1": end1,
            "sense1": "A", "source1": "t", "sentence2": f"a {word} ran", "start2": 2, "end2": 2 + len(word),
            "sense2": sense2, "source2": "t"}  # fmt: skip


def test_load_wic_refuses_inconsistent_pairs(tmp_path):
    good = [pair(), pair(word="dog", split="test", sentence1="the dog sat")]
    assert len(load_wic(write_pairs(tmp_path / "ok.jsonl", good))) == 2
    with pytest.raises(CorpusError, match="disagrees with the senses"):
        load_wic(write_pairs(tmp_path / "a.jsonl", [pair(label=0), *good]))
    with pytest.raises(CorpusError, match="words in both train and test: cat"):
        load_wic(write_pairs(tmp_path / "b.jsonl", [*good, pair(split="test")]))
    with pytest.raises(CorpusError, match="is not 'cat'"):
        load_wic(write_pairs(tmp_path / "c.jsonl", [pair(start1=0, end1=3), *good]))
    with pytest.raises(CorpusError, match="needs train and test"):
        load_wic(write_pairs(tmp_path / "d.jsonl", good[:1]))


# --- scoring ------------------------------------------------------------------------------------------


def test_the_probe_finds_scikit_learns_logistic_regression():
    """LinearProbe = StandardScaler + LogisticRegression(C) of scikit-learn on dense features: the same
    weights (the same objective, minimised) and the same predictions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from lmforge.experiments.static_vs_contextual import LinearProbe

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 12)) * rng.uniform(0.1, 5, size=12) + rng.normal(size=12)
    y = (X[:, 0] - 0.5 * X[:, 3] + rng.normal(size=300) > 0).astype(int)
    ours = LinearProbe(C=0.5).fit(X, y)
    scaler = StandardScaler().fit(X)
    theirs = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(scaler.transform(X), y)
    np.testing.assert_allclose(ours.model.coef[:, 0], theirs.coef_[0], rtol=1e-3, atol=1e-4)
    test = rng.normal(size=(100, 12)) * 3
    np.testing.assert_array_equal(ours.predict(test), theirs.predict(scaler.transform(test)))


def test_threshold_is_the_best_on_train():
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.normal(size=30).round(1)  # ties included
        labels = (scores + rng.normal(size=30) > 0).astype(int)
        t = fit_threshold(scores, labels)
        best = max(((scores >= c).astype(int) == labels).mean() for c in np.append(scores, np.inf))
        assert ((scores >= t).astype(int) == labels).mean() == best


def test_the_words_own_vector_scores_one_half_and_the_senses_score_all():
    pairs = load_wic()
    train = [p for p in pairs if p.split == "train"]
    test = [p for p in pairs if p.split == "test"]
    rng = np.random.default_rng(0)
    rows = {w: rng.normal(size=8) for w in {p.word for p in pairs}}
    own = wic_result(lambda text, a, b: rows[text[a:b].lower()], train, test, C=1.0)
    assert own["cosine"] == 0.5 and own["logreg"] == 0.5  # identical sides: one answer per word
    sense_of = {
        (s, a): sense for p in pairs for (s, a, _), sense in zip(p.sides(), (p.sense1, p.sense2), strict=True)
    }
    codes = sorted({c for c in sense_of.values()})
    oracle = wic_result(
        lambda text, a, b: np.eye(len(codes))[codes.index(sense_of[text, a])], train, test, 1.0
    )
    # one-hot sense codes are shared across words (sense "A" of bank = "A" of cell): cosine 1 or 0 is exact
    assert oracle["cosine"] == 1.0


def test_the_window_leaves_the_target_out_and_stops_at_the_ends():
    words = ["a", "b", "c", "d", "e", "f", "g"]
    toy = WordVectors(words, np.eye(7, dtype=np.float32))
    text = "a b c d e f g"
    np.testing.assert_allclose(static_window(toy, text, 6, 7, window=2), np.eye(7)[[1, 2, 4, 5]].mean(0))
    np.testing.assert_allclose(static_window(toy, text, 0, 1, window=2), np.eye(7)[[1, 2]].mean(0))
    np.testing.assert_allclose(
        static_window(toy, "A, x b!", 0, 1, window=5), np.eye(7)[1]
    )  # unknown x skipped


def test_nearest_in_context_skips_the_word_and_repeats():
    pool = np.array([[1.0, 0.0], [0.99, 0.01], [0.98, 0.02], [0.0, 1.0]])
    found = nearest_in_context(np.array([[1.0, 0.0]]), pool, ["Bank", "river", "RIVER", "money"], ["bank"], 2)
    assert found == [["river", "money"]]


# --- the embedder's several layers at once --------------------------------------------------------------


@pytest.fixture(scope="module")
def elmo_dir(tmp_path_factory):
    from lmforge.model.elmo import ELMoConfig, ELMoModel
    from lmforge.tokenizers import WordTokenizer

    torch.manual_seed(0)
    text = ["I sat on the bank of the river .", "I paid money into the bank .", "the river was wide"]
    tokenizer = WordTokenizer.train(text, vocab_size=60)
    config = ELMoConfig(vocab_size=tokenizer.vocab_size, max_characters=8, char_embed_dim=8,
                        filters=[[1, 8], [2, 8]], highway_layers=1, projection_dim=16, hidden_size=24,
                        num_layers=2, dropout=0.0, cutoffs=[])  # fmt: skip
    return ELMoModel(config).eval().save(tmp_path_factory.mktemp("elmo") / "model", tokenizer=tokenizer)


def test_several_layers_at_once_equal_one_at_a_time(elmo_dir):
    from lmforge.embeddings import load_embedder

    embedder = load_embedder(elmo_dir)
    texts = ["I paid money into the bank.", "The zebra sat by the river bank today", "river"]
    layers = [0, -1, "mix"]
    many = embedder.tokens_by_layer(texts, layers, batch_size=2)
    sentences = embedder.sentences_by_layer(texts, layers, batch_size=2, normalize=True)
    for k, layer in enumerate(layers):
        one = embedder.tokens(texts, layer=layer, batch_size=3)
        for a, b in zip(many[k], one, strict=True):
            assert a.words == b.words
            np.testing.assert_allclose(a.word_vectors, b.word_vectors, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            sentences[k], embedder.sentences(texts, layer=layer, normalize=True), rtol=1e-5, atol=1e-6
        )
    bank = many[1][1]
    start = texts[1].index("bank")
    np.testing.assert_array_equal(
        span_vector(bank, start, start + 4), bank.word_vectors[bank.find("bank")[0]]
    )


def test_batched_vectors_equal_each_sentence_alone(elmo_dir):
    """The fast path (length-sorted batches, each distinct word spelled once, pooling a batch at a time)
    gives each sentence the vectors the model gives it read alone: the mean of its words' states; a text
    without words gets zeros."""
    from lmforge.embeddings import load_embedder
    from lmforge.model import load

    embedder, model = load_embedder(elmo_dir), load(elmo_dir).eval()
    texts = ["the river bank", "", "I paid money into the bank of the zebra river, twice over and again",
             "bank", "the the the river", "quokka zebra . bank", "I sat on the bank of the river ."]  # fmt: skip
    layers = [0, 1, -1, "mix"]
    pooled = embedder.sentences_by_layer(texts, layers, batch_size=3)
    tokens = embedder.tokens_by_layer(texts, layers, batch_size=2)
    for i, text in enumerate(texts):
        words = [text[a:b] for a, b in embedder.tokenizer.encode(text).offsets]
        if not words:
            assert all(not array[i].any() for array in pooled)
            continue
        states = model.words([words]).hidden_states
        alone = [states[0], states[1], states[2], torch.stack(states).mean(dim=0)]
        for k, expected in enumerate(alone):
            np.testing.assert_allclose(pooled[k][i], expected[0].mean(dim=0).numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(tokens[k][i].token_vectors, expected[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(embedder.sentences(texts, layer="mix", batch_size=3), pooled[3])


def test_torch_threads_sets_and_restores_the_count():
    before = torch.get_num_threads()
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    with torch_threads(None):
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before


# --- end to end ---------------------------------------------------------------------------------------


def test_a_tiny_experiment_end_to_end(cli, elmo_dir, shared_data, tmp_path):
    data = tmp_path / "data"
    (data / "wikitext-2").mkdir(parents=True)
    lines = (shared_data / "wikitext-2" / "train.txt").read_text(encoding="utf-8").splitlines()[:600]
    (data / "wikitext-2" / "train.txt").write_text("\n".join(lines) + "\n")
    (data / "sst2").mkdir()
    for split, count in (("train", 200), ("dev", 60)):
        rows = (shared_data / "sst2" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[: count + 1]
        (data / "sst2" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    code, stdout, err = cli(
        "experiment", "static-vs-contextual", "--elmo", elmo_dir, "--data", data, "--out", out,
        "--static-epochs", "1", "--quiet", "--set", "topn=3",
    )  # fmt: skip
    assert code == 0, err
    document = json.loads((out / "results.json").read_text())
    wic = document["wic"]["accuracy"]
    for name in ("Word2Vec skip-gram", "GloVe", "FastText"):
        assert wic[f"{name}: the word's own vector"] == {"cosine": 0.5, "threshold": wic[f"{name}: the word's own vector"]["threshold"], "logreg": 0.5}  # fmt: skip
        assert f"{name}: ±5-word window mean" in wic
    for row in ("ELMo layer 0", "ELMo top layer", "ELMo scalar mix"):
        assert 0 <= wic[f"{row}: the word's vector in context"]["logreg"] <= 1
        assert set(document["sst2"]["accuracy"][row]) == {"small", "full"}
    assert document["sst2"]["small_train"] == 20 and document["sst2"]["dev"] == 60
    assert document["elmo_threads"] == 1
    layer0 = document["neighbours"]["ELMo layer 0"]
    assert layer0[0]["word"] == layer0[1]["word"] == "bank" and layer0[0]["sense"] != layer0[1]["sense"]
    assert layer0[0]["nearest"] == layer0[1]["nearest"] and len(layer0[0]["nearest"]) == 3  # no context
    assert (out / "static-vs-contextual.png").stat().st_size > 10_000
    table = (out / "table.md").read_text()
    assert "| TF-IDF + LR |" in table and "ELMo scalar mix" in table and "**total**" in table
    assert table in stdout
    assert sorted(p.name for p in (out / "static").iterdir())  # cached: a second run reuses them
    code, _, err = cli(
        "experiment", "static-vs-contextual", "--elmo", elmo_dir, "--data", data, "--out", out, "--quiet",
        "--static-epochs", "1",
    )  # fmt: skip
    assert code == 0, err
    costs = json.loads((out / "results.json").read_text())["costs_seconds"]
    assert "static word2vec (cached)" in costs and "static word2vec training" not in costs
