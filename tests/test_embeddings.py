"""lmforge.embeddings against gensim and against a planted structure.

- vectors trained on a synthetic corpus with a planted gender × rank structure solve its analogies;
- word2vec text and binary files round-trip, gensim reads what lmforge writes and lmforge reads gensim's;
- analogy and word-pair evaluation equal gensim's evaluate_word_analogies / evaluate_word_pairs;
- most_similar, analogy, similarity and doesnt_match return what gensim's KeyedVectors returns;
- FastText gives unknown words vectors near the known words that share their n-grams;
- `lmforge embed train|query|eval|plot|compare` and their one-line errors.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from lmforge.embeddings import (
    FastTextConfig,
    GloVeConfig,
    Word2VecConfig,
    WordVectors,
    encode_corpus,
    gensim_test_file,
    load_fasttext,
    train_fasttext,
    train_glove,
    train_word2vec,
)
from lmforge.embeddings.glove import cooccurrence
from lmforge.embeddings.ngrams import ngram_buckets
from lmforge.embeddings.vectors import evaluate_analogies, evaluate_pairs, rank_average, spearman
from lmforge.errors import MissingFileError

# --- a corpus with a planted relation ----------------------------------------------------------------

RANKS = ["royal", "noble", "common", "holy", "army", "sea"]
PAIRS = {  # (male, female) words of each rank; names share no long n-grams, so FastText cannot cheat
    "royal": ("king", "queen"),
    "noble": ("duke", "duchess"),
    "common": ("man", "woman"),
    "holy": ("monk", "nun"),
    "army": ("soldier", "amazon"),
    "sea": ("sailor", "mermaid"),
}


def planted_corpus(sentences_per_word: int = 120, seed: int = 0) -> list[list[str]]:
    """Each word appears beside context words mostly of its gender and of its rank, plus noise words.
    So vector(word) ≈ gender part + rank part, and king − man + woman ≈ queen. The contexts of the other
    gender and ranks appear too, less often: GloVe fits only non-zero counts, so the relation has to be in
    how often, not only in whether, words meet."""
    rng = random.Random(seed)
    gender_context = {g: [f"{g}ctx{i}" for i in range(6)] for g in ("he", "she")}
    rank_context = {r: [f"{r}ctx{i}" for i in range(6)] for r in RANKS}
    noise = [f"noise{i}" for i in range(40)]
    corpus = []
    for rank, (male, female) in PAIRS.items():
        for word, gender in ((male, "he"), (female, "she")):
            other_gender = "she" if gender == "he" else "he"
            for _ in range(sentences_per_word):
                sentence = [word] + rng.sample(noise, 2)
                for _ in range(2):
                    sentence.append(
                        rng.choice(gender_context[gender if rng.random() < 0.8 else other_gender])
                    )
                    sentence.append(
                        rng.choice(rank_context[rank if rng.random() < 0.7 else rng.choice(RANKS)])
                    )
                rng.shuffle(sentence)
                corpus.append(sentence)
    rng.shuffle(corpus)
    return corpus


def planted_accuracy(vectors: WordVectors) -> float:
    questions = [
        (PAIRS[r1][0], PAIRS[r1][1], PAIRS[r2][0], PAIRS[r2][1]) for r1 in RANKS for r2 in RANKS if r1 != r2
    ]
    correct = sum(vectors.analogy(a, b, c, topn=1)[0][0] == d for a, b, c, d in questions)
    return correct / len(questions)


@pytest.fixture(scope="module")
def planted():
    return encode_corpus(planted_corpus(), min_count=1)


SMALL = dict(dim=24, window=3, min_count=1, workers=2, progress=False, seed=3, device="cpu")  # numba


@pytest.mark.parametrize("method", ["skipgram", "cbow"])
def test_word2vec_learns_planted_relation(planted, method):
    trained = train_word2vec(planted, Word2VecConfig(method=method, epochs=15, sample=0, **SMALL))
    vectors = trained.vectors
    assert planted_accuracy(vectors) >= 0.8
    assert vectors.similarity("king", "queen") > vectors.similarity("king", "nun")
    assert vectors.analogy("man", "king", "woman", topn=1)[0][0] == "queen"
    assert vectors.doesnt_match(["king", "duke", "monk", "sailor", "queen"]) == "queen"  # the only woman
    assert trained.stats.effective_words > 0 and trained.stats.words_per_second > 0


def test_glove_learns_planted_relation(planted):
    # the counts here stay far below 100: the paper's x_max weights them smoothly (10 would flatten them)
    trained = train_glove(planted, GloVeConfig(epochs=60, x_max=100, **{**SMALL, "workers": 1}))
    assert trained.costs[-1] < trained.costs[0]
    assert planted_accuracy(trained.vectors) >= 0.5


def test_fasttext_planted_relation_and_unknown_words(planted, tmp_path):
    trained = train_fasttext(planted, FastTextConfig(epochs=15, sample=0, bucket=50_000, **SMALL))
    vectors = trained.vectors
    assert planted_accuracy(vectors) >= 0.6
    assert "mermaids" not in vectors
    unseen = vectors["mermaids"]  # from <me, mer, erm, rma, mai, aid, ids, ds> ...
    assert unseen.shape == (24,) and np.all(np.isfinite(unseen))
    assert vectors.most_similar(unseen, topn=1)[0][0] == "mermaid"
    # saved and loaded, the vectors still answer for unknown words
    trained.model.save(tmp_path / "ft.txt")
    loaded = WordVectors.load(tmp_path / "ft.txt")
    np.testing.assert_allclose(loaded["mermaids"], unseen, rtol=1e-5, atol=1e-6)
    assert load_fasttext(tmp_path / "ft.txt").words == vectors.words


@pytest.mark.parametrize("word", ["guitarist", "banana", "mississippi", "a", "café", "naïve", "日本語"])
def test_fasttext_ngram_buckets_are_gensims(word):
    """Same n-grams, same hash (signed bytes, so non-ASCII words too), repeats kept: the rows a word
    averages are gensim's (and fastText's)."""
    gensim_fasttext = pytest.importorskip("gensim.models.fasttext")
    ours = ngram_buckets(word, 3, 6, 2_000_000)
    assert sorted(ours) == sorted(gensim_fasttext.ft_ngram_hashes(word, 3, 6, 2_000_000))
    if word == "banana":  # "<banana>": "ana" occurs twice and weighs twice
        assert len(ours) == len(set(ours)) + 1


def test_training_is_deterministic_with_one_worker(planted):
    config = Word2VecConfig(epochs=2, **{**SMALL, "workers": 1})
    first = train_word2vec(planted, config).vectors.vectors
    second = train_word2vec(planted, config).vectors.vectors
    np.testing.assert_array_equal(first, second)


def test_cooccurrence_weights_by_inverse_distance():
    rows, cols, counts = cooccurrence(encode_corpus([["a", "b", "a", "c"]], min_count=1), window=2)
    table = {(r, c): x for r, c, x in zip(rows.tolist(), cols.tolist(), counts.tolist(), strict=True)}
    # ids: a=0, b=1, c=2. a-b at distances 1 and 1 -> 2; a-a at distance 2 -> 0.5 (both directions: 1.0)
    assert table[(0, 1)] == table[(1, 0)] == 2.0
    assert table[(0, 0)] == 1.0
    assert table[(0, 2)] == 1.0 and table[(1, 2)] == 0.5


# --- save / load, and gensim interoperability --------------------------------------------------------


def random_vectors(words: list[str], dim: int = 16, seed: int = 0) -> WordVectors:
    return WordVectors(words, np.random.default_rng(seed).normal(size=(len(words), dim)).astype(np.float32))


WORDS = ["the", "king", "queen", "café", "naïve", "東京", "x"]


@pytest.mark.parametrize("suffix", [".txt", ".bin"])
def test_save_load_round_trip(tmp_path, suffix):
    vectors = random_vectors(WORDS)
    path = vectors.save(tmp_path / f"v{suffix}")
    loaded = WordVectors.load(path)
    assert loaded.words == WORDS
    np.testing.assert_array_equal(loaded.vectors, vectors.vectors)


@pytest.mark.parametrize("binary", [False, True])
def test_gensim_reads_what_lmforge_writes_and_back(tmp_path, binary):
    from gensim.models import KeyedVectors

    vectors = random_vectors(WORDS)
    path = vectors.save(tmp_path / ("ours.bin" if binary else "ours.txt"))
    theirs = KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert theirs.index_to_key == WORDS
    np.testing.assert_array_equal(theirs.vectors, vectors.vectors)

    theirs.vectors *= 2  # gensim writes, lmforge reads
    gensim_path = tmp_path / ("gensim.bin" if binary else "gensim.txt")
    theirs.save_word2vec_format(str(gensim_path), binary=binary)
    back = WordVectors.load(gensim_path)
    assert back.words == WORDS
    np.testing.assert_allclose(back.vectors, 2 * vectors.vectors, rtol=1e-6)
    ours_similar, theirs_similar = back.most_similar("king", topn=3), theirs.most_similar("king", topn=3)
    assert [w for w, _ in ours_similar] == [w for w, _ in theirs_similar]
    assert [s for _, s in ours_similar] == pytest.approx([s for _, s in theirs_similar], rel=1e-5)
    assert back.similarity("king", "queen") == pytest.approx(
        float(theirs.similarity("king", "queen")), rel=1e-5
    )
    assert back.doesnt_match(["king", "queen", "café", "x"]) == theirs.doesnt_match(
        ["king", "queen", "café", "x"]
    )


def test_text_without_header_loads_as_gensim_reads_it(tmp_path):
    """GloVe's released vectors are text without the 'WORDS DIMS' line; gensim reads them with no_header."""
    from gensim.models import KeyedVectors

    from lmforge.errors import LmforgeError

    vectors = random_vectors(WORDS)
    path = tmp_path / "glove.txt"
    KeyedVectors.load_word2vec_format(str(vectors.save(tmp_path / "v.txt"))).save_word2vec_format(
        str(path), write_header=False
    )
    assert path.read_text().split("\n", 1)[0].startswith(f"{WORDS[0]} ")  # no header line
    back, theirs = WordVectors.load(path), KeyedVectors.load_word2vec_format(str(path), no_header=True)
    assert back.words == theirs.index_to_key == WORDS
    np.testing.assert_array_equal(back.vectors, theirs.vectors)
    path.write_text(path.read_text() + "extra 1 2\n")
    with pytest.raises(
        LmforgeError, match=rf"glove.txt:{len(WORDS) + 1}: expected a word and {vectors.dim} numbers"
    ):
        WordVectors.load(path)


def test_load_errors(tmp_path):
    from lmforge.errors import LmforgeError

    bad = tmp_path / "bad.txt"
    bad.write_text("2 3\nking 1 2 3\nqueen 1 2\n")
    with pytest.raises(LmforgeError, match=r"bad.txt:3: expected a word and 3 numbers"):
        WordVectors.load(bad)
    bad.write_text("not a header\n")
    with pytest.raises(LmforgeError, match="bad.txt:1: expected the word2vec header"):
        WordVectors.load(bad)
    with pytest.raises(FileNotFoundError):
        WordVectors.load(tmp_path / "missing.txt")
    truncated = tmp_path / "t.bin"
    random_vectors(WORDS).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:-40])
    with pytest.raises(LmforgeError, match="truncated"):
        WordVectors.load(truncated)


# --- evaluation equals gensim's ----------------------------------------------------------------------


def analogy_subset(tmp_path: Path, per_section: int = 25) -> Path:
    """The first questions of every section of gensim's questions-words.txt (gensim is slow on all 19,544)."""
    lines, kept = [], 0
    for line in gensim_test_file("questions-words.txt").read_text().splitlines():
        if line.startswith(": "):
            lines.append(line)
            kept = 0
        elif kept < per_section:
            lines.append(line)
            kept += 1
    path = tmp_path / "questions.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def structured_vectors(analogies: Path, extra_files: list[Path], seed: int = 0) -> WordVectors:
    """Vectors for every evaluation word (lower-cased, a few left out, a few with a rarer upper-case twin),
    with each section's pairs pulled towards a shared offset, so that some analogies are right and
    some wrong."""
    rng = np.random.default_rng(seed)
    words: dict[str, None] = {}
    quads = []
    for line in analogies.read_text().splitlines():
        if line.startswith(": "):
            offset = rng.normal(size=32)
        else:
            quad = line.lower().split()
            quads.append((quad, offset))
            words.update(dict.fromkeys(quad))
    for path in extra_files:
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                words.update(dict.fromkeys(w.lower() for w in line.split("\t")[:2]))
    vocab = [w for i, w in enumerate(words) if i % 13 != 5]  # some words unknown: OOV
    vocab += [w.capitalize() for w in vocab[::17]]  # case variants after their lower-case form
    index = {w: i for i, w in enumerate(vocab)}
    vectors = rng.normal(size=(len(vocab), 32))
    for (a, b, c, d), offset in quads:
        for x, y in ((a, b), (c, d)):
            if x in index and y in index:
                vectors[index[y]] = 0.75 * vectors[index[y]] + 0.25 * (vectors[index[x]] + offset)
    return WordVectors(vocab, vectors.astype(np.float32))


@pytest.mark.parametrize("restrict_vocab", [300_000, 600])
def test_analogy_evaluation_equals_gensim(tmp_path, restrict_vocab):
    from gensim.models import KeyedVectors

    analogies = analogy_subset(tmp_path)
    ours = structured_vectors(analogies, [])
    theirs = KeyedVectors(ours.dim)
    theirs.add_vectors(ours.words, ours.vectors)
    score, sections = theirs.evaluate_word_analogies(str(analogies), restrict_vocab=restrict_vocab)
    result = evaluate_analogies(ours, analogies, restrict_vocab=restrict_vocab)
    assert 0.05 < result.accuracy < 0.95  # a real mix of right and wrong answers
    assert result.accuracy == pytest.approx(score)
    assert [(s.name, s.correct, s.total) for s in result.sections] == [
        (s["section"], len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in sections[:-1]
    ]
    assert result.correct == len(sections[-1]["correct"])


def test_pair_evaluation_equals_gensim(tmp_path):
    from gensim.models import KeyedVectors

    files = [gensim_test_file("wordsim353.tsv"), gensim_test_file("simlex999.txt")]
    ours = structured_vectors(analogy_subset(tmp_path), files)
    theirs = KeyedVectors(ours.dim)
    theirs.add_vectors(ours.words, ours.vectors)
    for path in files:
        pearson, spearman_result, oov = theirs.evaluate_word_pairs(str(path))
        result = evaluate_pairs(ours, path)
        assert result.spearman == pytest.approx(spearman_result.statistic, abs=1e-9)
        assert result.pearson == pytest.approx(pearson.statistic, abs=1e-6)
        assert result.oov_ratio == pytest.approx(oov)
        assert 0 < result.oov_ratio < 50


def test_queries_equal_gensim_keyed_vectors():
    """most_similar (word, vector, restricted vocabulary), analogy, similarity and doesnt_match return what
    gensim's KeyedVectors returns on the same vectors: the same words in the same order, the same scores."""
    from gensim.models import KeyedVectors

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    ours = WordVectors(words, rng.normal(size=(300, 20)).astype(np.float32))
    theirs = KeyedVectors(ours.dim)
    theirs.add_vectors(ours.words, ours.vectors)

    def same(got, expected):
        assert [w for w, _ in got] == [w for w, _ in expected]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-5)

    for _ in range(20):
        a, b, c = (words[i] for i in rng.choice(300, 3, replace=False))
        same(ours.most_similar(a, topn=10), theirs.most_similar(a, topn=10))
        same(
            ours.most_similar(a, topn=5, restrict_vocab=100),
            theirs.most_similar(a, topn=5, restrict_vocab=100),
        )
        same(ours.most_similar(3 * ours[b], topn=5), theirs.most_similar(positive=[3 * ours[b]], topn=5))
        same(ours.analogy(a, b, c, topn=10), theirs.most_similar(positive=[b, c], negative=[a], topn=10))
        assert ours.similarity(a, b) == pytest.approx(float(theirs.similarity(a, b)), abs=1e-6)
        group = [words[i] for i in rng.choice(300, 5, replace=False)]
        assert ours.doesnt_match(group) == theirs.doesnt_match(group)
    # every word but the query, when topn asks for more than there are; an excluded word outside a restricted
    # vocabulary does not shorten the list
    assert len(ours.most_similar("w0", topn=1000)) == 299
    assert len(ours.most_similar("w0", topn=1000, restrict_vocab=10, exclude=["w200"])) == 9


def test_spearman_matches_scipy_with_ties():
    from scipy import stats

    assert rank_average([10, 20, 20, 5]).tolist() == [2, 3.5, 3.5, 1]
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 50), rng.normal(size=50)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_pca_plot_writes_png(tmp_path):
    path = random_vectors(WORDS).plot_pca(["king", "queen", "the", "x"], tmp_path / "pca.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the command line --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("embed") / "planted.txt"
    path.write_text("\n".join(" ".join(s).upper() for s in planted_corpus(60)) + "\n")  # upper: lower-cased
    return path


def test_cli_train_query_eval_plot(cli, planted_file, tmp_path):
    out = tmp_path / "vecs.bin"
    code, stdout, stderr = cli(
        "embed", "train", "--method", "skipgram", "--dim", "16", "--epochs", "5", "--min-count", "2",
        "--sample", "0", "--quiet", "--out", out, planted_file,
    )  # fmt: skip
    assert code == 0, stderr
    assert "words/s" in stdout and "binary" in stdout
    vectors = WordVectors.load(out)
    assert "king" in vectors and "KING" not in vectors and vectors.dim == 16

    code, stdout, _ = cli("embed", "query", out, "king", "-", "man", "+", "woman", "--topn", "3")
    assert code == 0 and stdout.splitlines()[0] == "king - man + woman"
    assert len(stdout.splitlines()) == 4 and "king " not in stdout.split("\n", 1)[1]

    questions = tmp_path / "q.txt"
    questions.write_text(": gender\nman woman king queen\nman woman duke duchess\nking queen zzz yyy\n")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# w1\tw2\tscore\nking\tqueen\t8\nking\tnun\t2\nman\twoman\t7\nzzz\tking\t1\n")
    code, stdout, stderr = cli("embed", "eval", out, "--analogies", questions, "--pairs", pairs)
    assert code == 0, stderr
    assert "gender" in stdout and "pairs.tsv" in stdout and "33.3%" in stdout  # 1 of 3 questions unknown
    assert cli("embed", "eval", out, "--analogies", questions, "--similarity", pairs)[1] == stdout  # old name

    code, stdout, _ = cli("embed", "plot", out, "king", "queen", "man", "woman", "--out", tmp_path / "p.png")
    assert code == 0 and (tmp_path / "p.png").stat().st_size > 1000


def test_the_standard_sets_come_from_gensim_only_when_no_file_is_given():
    """gensim is a fallback for finding its copies of the standard sets; the error says how to do without."""
    assert gensim_test_file("questions-words.txt", "--analogies").is_file()  # gensim is in the dev extra
    with pytest.raises(MissingFileError) as error:
        gensim_test_file("no-such-set.txt", "--pairs")
    message = str(error.value)
    assert message.startswith(
        "no no-such-set.txt to evaluate with: pass the file with --pairs FILE, or install"
    )
    assert "pip install -e '.[dev]'" in message and "used when no file is given" in message


def test_cli_compare(cli, planted_file, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text(": gender\nman woman king queen\nman woman duke duchess\n")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("king\tqueen\t8\nking\tnun\t2\nman\twoman\t7\n")
    code, stdout, stderr = cli(
        "embed", "compare", "--dim", "12", "--epochs", "2", "--min-count", "2", "--quiet",
        "--methods", "cbow,glove,fasttext", "--analogies", questions, "--pairs", pairs, planted_file,
    )  # fmt: skip
    assert code == 0, stderr
    table = [line for line in stdout.splitlines() if line.startswith("|")]
    assert table[0].startswith("| method | epochs | time s | words/s | analogy acc")
    assert [row.split("|")[1].strip() for row in table[2:]] == ["cbow", "glove", "fasttext"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--out", "{tmp}/v.txt", "{tmp}/missing.txt"], "missing.txt: no such file"),
        (
            ["train", "--dim", "0", "--out", "{tmp}/v.txt", "{corpus}"],
            "argument --dim: must be at least 1, got 0",
        ),
        (["train", "--out", "{tmp}/nodir/v.txt", "{corpus}"], "directory"),
        (["train", "--min-count", "1000", "--out", "{tmp}/v.txt", "{corpus}"], "no word occurs 1000 times"),
        (["query", "{tmp}/missing.txt", "king"], "no such vectors file"),
        (["query", "{vecs}", "king", "+"], "expected a word after the last operator"),
        (["query", "{vecs}", "king", "queen"], "put + or - between words"),
        (["query", "{vecs}", "unknownword"], "'unknownword' is not in the vocabulary"),
        (["eval", "{vecs}", "--analogies", "{tmp}/none.txt"], "--analogies"),
        (["plot", "{vecs}", "king", "queen", "--out", "{tmp}/p.jpg"], "ending in .png"),
        (["compare", "--methods", "cbow,elmo", "{corpus}"], "unknown elmo"),
    ],
)
def test_cli_errors_are_one_line(cli, tmp_path, planted_file, args, message):
    vecs = tmp_path / "vecs.txt"
    random_vectors(["king", "queen", "man"]).save(vecs)
    filled = [a.format(tmp=tmp_path, corpus=planted_file, vecs=vecs) for a in args]
    code, stdout, stderr = cli("embed", *filled)
    assert code == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "v.txt").exists()


def test_eval_without_gensim_names_the_files(monkeypatch, cli, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gensim" else real(name, *a)
    )
    vecs = random_vectors(["king", "queen"]).save(tmp_path / "v.txt")
    code, _, stderr = cli("embed", "eval", vecs)
    assert code == 2
    assert "questions-words.txt" in stderr and "wordsim353.tsv" in stderr and "simlex999.txt" in stderr


def test_alias_table_draws_counts_to_the_power():
    from lmforge.embeddings.common import alias_table

    counts = np.array([50, 20, 9, 5, 1, 1])
    probability, alias = alias_table(counts, power=0.75)
    implied = probability.astype(np.float64).copy()  # mass each word gets: own share + aliased shares
    for column, target in enumerate(alias):
        implied[target] += 1.0 - probability[column]
    wanted = counts**0.75 / np.sum(counts**0.75)
    np.testing.assert_allclose(implied / len(counts), wanted, rtol=1e-6)


def test_trainers_leave_torch_thread_count_alone():
    """numba's OpenMP layer shares torch's thread setting (`numba.set_num_threads(2)` sets torch's count to 2):
    every trainer puts torch's count back, so a process run with one torch thread keeps one after training."""
    import torch

    before = torch.get_num_threads()
    sentences = [["the", "cat", "sat", "on", "the", "mat"], ["a", "dog", "sat", "on", "a", "log"]] * 20
    torch.set_num_threads(1)
    try:
        train_word2vec(sentences, Word2VecConfig(epochs=1, **SMALL))
        assert torch.get_num_threads() == 1
        train_glove(
            sentences, GloVeConfig(dim=8, epochs=1, min_count=1, workers=2, progress=False, device="cpu")
        )
        assert torch.get_num_threads() == 1
        train_fasttext(sentences, FastTextConfig(epochs=1, **SMALL))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
