"""`WordVectors` answers gensim's `KeyedVectors` queries as gensim does, on the same vectors: most_similar with
positive/negative/weights/topn=None, 3CosMul, distances, rank, closer_than, most_similar_to_given, relative
cosine similarity, mean vectors, adding vectors, and load(limit=, unicode_errors=)."""

from __future__ import annotations

import numpy as np
import pytest

from lmforge.embeddings import WordVectors
from lmforge.embeddings.vectors import MissingWordError, VectorsError
from lmforge.errors import LmforgeError

gensim_models = pytest.importorskip("gensim.models")
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated:DeprecationWarning")

WORDS = [f"w{i}" for i in range(200)]


@pytest.fixture(scope="module")
def both():
    rng = np.random.default_rng(7)
    matrix = rng.normal(size=(len(WORDS), 16)).astype(np.float32)
    theirs = gensim_models.KeyedVectors(16)
    theirs.add_vectors(WORDS, matrix)
    return WordVectors(WORDS, matrix), theirs


def same_ranking(mine, reference) -> None:
    assert [w for w, _ in mine] == [w for w, _ in reference]
    np.testing.assert_allclose([s for _, s in mine], [s for _, s in reference], rtol=1e-5, atol=1e-6)


def test_most_similar_positive_negative_weights_and_topn_none(both):
    mine, theirs = both
    vector = mine["w3"] * 2 - mine["w4"]
    cases = [
        dict(positive=["w1"]),
        dict(positive=["w1", "w2"], negative=["w3"], topn=7),
        dict(positive="w5", negative="w6"),
        dict(positive=[("w1", 0.5), ("w9", 2.0)], negative=[("w2", -0.3)]),
        dict(positive=[vector, "w8"], topn=4),
        dict(negative=["w10"], topn=3),
        dict(positive=["w11"], restrict_vocab=50),
        dict(positive=["w12"], clip_start=20, clip_end=80, topn=5),
        dict(positive=[5, "w6"], topn=5),  # a row index is a key too
    ]
    for case in cases:
        same_ranking(mine.most_similar(**case), theirs.most_similar(**case))
    np.testing.assert_allclose(
        mine.most_similar(positive=["w1"], negative=["w2"], topn=None),
        theirs.most_similar(positive=["w1"], negative=["w2"], topn=None),
        rtol=1e-5,
        atol=1e-6,
    )
    assert mine.most_similar("w1", topn=0) == theirs.most_similar("w1", topn=0) == []
    same_ranking(mine.similar_by_word("w1", topn=3), theirs.similar_by_word("w1", topn=3))
    same_ranking(mine.similar_by_vector(vector, topn=3), theirs.similar_by_vector(vector, topn=3))


def test_most_similar_cosmul(both):
    mine, theirs = both
    for case in [
        dict(positive=["w1", "w2"], negative=["w3"]),
        dict(positive="w4", topn=5),
        dict(positive=["w5"], negative=["w6", "w7"], topn=12),
        dict(positive=[mine["w9"], "w10"], topn=4),
    ]:
        same_ranking(mine.most_similar_cosmul(**case), theirs.most_similar_cosmul(**case))
    np.testing.assert_allclose(
        mine.most_similar_cosmul(["w1"], ["w2"], topn=None),
        theirs.most_similar_cosmul(["w1"], ["w2"], topn=None),
        rtol=1e-5,
    )
    with pytest.raises(ValueError):
        theirs.most_similar_cosmul(negative=["w1"])
    with pytest.raises(VectorsError):
        mine.most_similar_cosmul(negative=["w1"])


def test_distances_rank_closer_than_and_friends(both):
    mine, theirs = both
    assert mine.distance("w1", "w2") == pytest.approx(float(theirs.distance("w1", "w2")), abs=1e-6)
    np.testing.assert_allclose(mine.distances("w1"), theirs.distances("w1"), atol=1e-6)
    np.testing.assert_allclose(
        mine.distances("w1", ["w2", "w3", "w1"]), theirs.distances("w1", ["w2", "w3", "w1"]), atol=1e-6
    )
    vector = mine["w7"] + 0.5
    np.testing.assert_allclose(mine.distances(vector, ["w2"]), theirs.distances(vector, ["w2"]), atol=1e-6)
    for a, b in [("w1", "w2"), ("w3", "w150"), ("w10", "w11")]:
        assert mine.closer_than(a, b) == theirs.closer_than(a, b)
        assert mine.rank(a, b) == theirs.rank(a, b)
        assert mine.relative_cosine_similarity(a, b) == pytest.approx(
            theirs.relative_cosine_similarity(a, b), rel=1e-5
        )
    candidates = ["w5", "w6", "w7", "w8"]
    assert mine.most_similar_to_given("w1", candidates) == theirs.most_similar_to_given("w1", candidates)
    with pytest.raises(KeyError):
        theirs.rank("w1", "nope")
    with pytest.raises(MissingWordError):
        mine.rank("w1", "nope")


def test_get_mean_vector(both):
    mine, theirs = both
    vector = np.linspace(-1, 1, 16, dtype=np.float32)
    for keys, kwargs in [
        (["w1", "w2"], {}),
        (["w1", "w2", vector], dict(weights=[1.0, -2.0, 0.5])),
        (["w1", "nope"], dict(pre_normalize=False, post_normalize=True)),
        ([3, "w4"], dict(weights=np.array([0.2, 0.8]))),
    ]:
        np.testing.assert_allclose(
            mine.get_mean_vector(keys, **kwargs), theirs.get_mean_vector(keys, **kwargs), rtol=1e-5, atol=1e-6
        )
    for bad in (lambda kv: kv.get_mean_vector([]), lambda kv: kv.get_mean_vector(["w1"], weights=[1, 2])):
        with pytest.raises(ValueError):
            bad(theirs)
        with pytest.raises(ValueError):
            bad(mine)
    with pytest.raises(KeyError):
        mine.get_mean_vector(["w1", "nope"], ignore_missing=False)


def test_add_vectors_and_item_assignment():
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(20, 8)).astype(np.float32)
    words = [f"v{i}" for i in range(20)]
    theirs = gensim_models.KeyedVectors(8)
    theirs.add_vectors(words, matrix)
    mine = WordVectors(words, matrix)
    new = rng.normal(size=(3, 8)).astype(np.float32)
    more = rng.normal(size=(2, 8)).astype(np.float32)
    for kv in (mine, theirs):
        kv.most_similar("v0")  # fills the caches first: they must be refreshed
        kv.add_vectors(["v1", "new1", "new2"], new)  # v1 kept (replace=False)
        kv["v2"] = new[0]
        kv[["new1", "new3"]] = more
    theirs.fill_norms(force=True)  # gensim keeps stale norms after additions; lmforge refreshes its own
    assert mine.index_to_key == theirs.index_to_key
    np.testing.assert_array_equal(mine.vectors, theirs.vectors)
    same_ranking(mine.most_similar("v2"), theirs.most_similar("v2"))
    with pytest.raises(LmforgeError):
        mine.add_vectors(["x"], np.zeros((1, 3), dtype=np.float32))


def test_load_limit_and_unicode_errors(tmp_path, both):
    mine, theirs = both
    for name, binary in (("v.txt", False), ("v.bin", True)):
        path = tmp_path / name
        theirs.save_word2vec_format(str(path), binary=binary)
        loaded = WordVectors.load(path, limit=30)
        reference = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary, limit=30)
        assert loaded.words == reference.index_to_key
        np.testing.assert_allclose(loaded.vectors, reference.vectors, rtol=1e-6)
    # A word that is not UTF-8 (a Latin-1 'é'): strict refuses with one line; replace and ignore read it.
    for name, binary in (("bad.txt", False), ("bad.bin", True)):
        path = tmp_path / name
        rows = [(b"caf\xe9", np.ones(4, np.float32)), (b"ok", np.zeros(4, np.float32))]
        with open(path, "wb") as out:
            out.write(b"2 4\n")
            for word, row in rows:
                if binary:
                    out.write(word + b" " + row.tobytes() + b"\n")
                else:
                    out.write(word + b" " + " ".join(f"{x:g}" for x in row).encode() + b"\n")
        with pytest.raises(LmforgeError, match="unicode_errors"):
            WordVectors.load(path)
        for errors in ("replace", "ignore"):
            loaded = WordVectors.load(path, unicode_errors=errors)
            reference = gensim_models.KeyedVectors.load_word2vec_format(
                str(path), binary=binary, unicode_errors=errors
            )
            assert loaded.words == reference.index_to_key
