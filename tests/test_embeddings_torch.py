"""The PyTorch training path of lmforge.embeddings (torch_train.py), on CPU here and on CUDA when present.

- skip-gram, CBOW and FastText trained by torch learn the planted gender × rank relation of
  test_embeddings.py; FastText's torch path gives unknown words vectors and uses the numba path's buckets;
- GloVe's torch AdaGrad lowers its cost and recovers the relation;
- what the torch path saves loads in gensim's KeyedVectors;
- device selection: numba stays the CPU default, a missing GPU is a one-line error (API and CLI);
- on a real slice of WikiText-2 the torch skip-gram scores WordSim-353 like the numba one (slow);
- on a CUDA GPU (`-m cuda`) the same planted relation is learned.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmforge.embeddings import (
    FastTextConfig,
    GloVeConfig,
    Word2VecConfig,
    WordVectors,
    encode_corpus,
    train_fasttext,
    train_glove,
    train_word2vec,
)
from lmforge.embeddings.common import select_device
from lmforge.errors import ConfigError
from test_embeddings import planted_accuracy, planted_corpus

SMALL = dict(dim=24, window=3, min_count=1, workers=1, progress=False, seed=3)
TORCH_CPU = dict(backend="torch", device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py


@pytest.fixture(scope="module")
def planted():
    return encode_corpus(planted_corpus(), min_count=1)


def check_planted(vectors: WordVectors, threshold: float = 0.8) -> None:
    assert planted_accuracy(vectors) >= threshold
    assert vectors.similarity("king", "queen") > vectors.similarity("king", "nun")
    assert vectors.analogy("man", "king", "woman", topn=1)[0][0] == "queen"


@pytest.mark.parametrize("method", ["skipgram", "cbow"])
def test_torch_word2vec_learns_planted_relation(planted, method, tmp_path):
    trained = train_word2vec(
        planted, Word2VecConfig(method=method, epochs=15, sample=0, **SMALL, **TORCH_CPU)
    )
    assert trained.stats.backend == "torch" and trained.stats.device == "cpu"
    assert trained.stats.effective_words == trained.stats.raw_words > 0  # sample=0: every word trained
    check_planted(trained.vectors)

    from gensim.models import KeyedVectors

    path = trained.vectors.save(tmp_path / f"{method}.bin")
    theirs = KeyedVectors.load_word2vec_format(str(path), binary=True)
    assert theirs.index_to_key == trained.vectors.words
    np.testing.assert_array_equal(theirs.vectors, trained.vectors.vectors)
    assert theirs.most_similar(positive=["king", "woman"], negative=["man"], topn=1)[0][0] == "queen"


def test_torch_subsampling_thins_frequent_words(planted):
    config = Word2VecConfig(epochs=2, sample=1e-3, **SMALL, **TORCH_CPU)
    stats = train_word2vec(planted, config).stats
    # every word here is "frequent" (≥ 1e-3 of the corpus): the numba path keeps about as many
    numba_stats = train_word2vec(planted, Word2VecConfig(epochs=2, sample=1e-3, **SMALL, device="cpu")).stats
    assert 0.2 * stats.raw_words < stats.effective_words < 0.8 * stats.raw_words
    assert stats.effective_words == pytest.approx(numba_stats.effective_words, rel=0.05)


def test_torch_fasttext_relation_unknown_words_and_buckets(planted, tmp_path):
    config = dict(epochs=15, sample=0, bucket=50_000, **SMALL)
    trained = train_fasttext(planted, FastTextConfig(**config, **TORCH_CPU))
    assert trained.stats.backend == "torch"
    vectors = trained.vectors
    check_planted(vectors, threshold=0.6)
    assert "mermaids" not in vectors
    unseen = vectors["mermaids"]  # from the n-gram rows torch trained
    assert unseen.shape == (24,) and np.all(np.isfinite(unseen))
    assert vectors.most_similar(unseen, topn=1)[0][0] == "mermaid"
    # the same buckets as the numba path (hence as fastText's and gensim's): same rows, same model layout
    numba_model = train_fasttext(planted, FastTextConfig(**{**config, "epochs": 1}, device="cpu")).model
    np.testing.assert_array_equal(trained.model.bucket_ids, numba_model.bucket_ids)
    assert trained.model.bucket_rows.shape == numba_model.bucket_rows.shape
    trained.model.save(tmp_path / "ft.txt")
    np.testing.assert_allclose(
        WordVectors.load(tmp_path / "ft.txt")["mermaids"], unseen, rtol=1e-5, atol=1e-6
    )


def test_torch_fasttext_cbow_learns(planted):
    trained = train_fasttext(planted, FastTextConfig(method="cbow", epochs=15, sample=0, bucket=50_000,
                                                     **SMALL, **TORCH_CPU))  # fmt: skip
    check_planted(trained.vectors, threshold=0.6)


def test_torch_glove_cost_decreases_and_relation(planted):
    trained = train_glove(planted, GloVeConfig(epochs=60, x_max=100, **SMALL, **TORCH_CPU))
    assert trained.stats.backend == "torch"
    assert trained.costs[-1] < 0.5 * trained.costs[0]
    assert all(np.isfinite(trained.costs))
    assert planted_accuracy(trained.vectors) >= 0.5


def test_device_selection():
    assert select_device("cpu") is None  # numba: the fast path on CPU
    assert select_device("cpu", "numba") is None
    assert select_device("cpu", "torch") == "cpu"
    expected_auto = "cuda" if torch.cuda.is_available() else None
    assert select_device("auto") == expected_auto
    with pytest.raises(ConfigError, match="device must be"):
        select_device("gpu")
    with pytest.raises(ConfigError, match="backend 'numba' trains on CPU threads"):
        select_device("cuda", "numba")
    with pytest.raises(ConfigError, match="backend must be"):
        Word2VecConfig(backend="jax").check()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error given without a GPU")
def test_cuda_without_gpu_is_a_clear_error(cli, tmp_path):
    with pytest.raises(ConfigError, match="sees no CUDA GPU"):
        train_word2vec([["a", "b"]], Word2VecConfig(min_count=1, device="cuda"))
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c\n" * 10)
    code, _, stderr = cli("embed", "train", "--device", "cuda:1", "--out", tmp_path / "v.txt", corpus)
    assert code == 2 and "--device cuda:1" in stderr and "sees no CUDA GPU" in stderr
    assert len(stderr.strip().splitlines()) == 1 and not (tmp_path / "v.txt").exists()


def test_cli_train_with_torch_backend(cli, tmp_path):
    corpus = tmp_path / "planted.txt"
    corpus.write_text("\n".join(" ".join(s) for s in planted_corpus(60)) + "\n")
    out = tmp_path / "v.txt"
    code, stdout, stderr = cli(
        "embed", "train", "--method", "cbow", "--dim", "16", "--epochs", "3", "--min-count", "2",
        "--backend", "torch", "--device", "cpu", "--workers", "1", "--quiet", "--out", out, corpus,
    )  # fmt: skip
    assert code == 0, stderr
    assert "on cpu (torch, 1 thread)" in stdout and "words/s" in stdout
    assert WordVectors.load(out).dim == 16


@pytest.mark.slow
def test_torch_skipgram_wordsim_on_wikitext_slice(shared_data):
    """The first ~200k words of WikiText-2 train, 10 epochs: WordSim-353 ρ of the torch path within 0.1
    of the numba path's, within 0.06 (one seed varies by ±0.02 at this size), mean of 2 seeds each."""
    from lmforge.embeddings.vectors import WORDSIM_FILE, evaluate_pairs, gensim_test_file

    sentences, words = [], 0
    with open(shared_data / "wikitext-2" / "train.txt", encoding="utf-8") as f:
        for line in f:
            if words >= 200_000:
                break
            if line.split():
                sentences.append(line.lower().split())
                words += len(sentences[-1])
    corpus = encode_corpus(sentences, min_count=5)
    wordsim = gensim_test_file(WORDSIM_FILE)
    scores = {}
    for backend in ("numba", "torch"):
        scores[backend] = np.mean([
            evaluate_pairs(
                train_word2vec(corpus, Word2VecConfig(epochs=10, workers=1, progress=False, seed=seed,
                                                      backend=backend, device="cpu")).vectors,
                wordsim,
            ).spearman
            for seed in (1, 2)
        ])  # fmt: skip
    assert scores["numba"] > 0.08  # the slice is large enough to learn something
    assert scores["torch"] > scores["numba"] - 0.06, scores


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("method", ["skipgram", "cbow", "fasttext", "glove"])
def test_cuda_learns_planted_relation(planted, method):
    if method == "glove":
        trained = train_glove(planted, GloVeConfig(epochs=60, x_max=100, **SMALL, device="cuda"))
        assert trained.costs[-1] < 0.5 * trained.costs[0]
        assert planted_accuracy(trained.vectors) >= 0.5
    elif method == "fasttext":
        trained = train_fasttext(planted, FastTextConfig(epochs=15, sample=0, bucket=50_000, **SMALL,
                                                         device="cuda"))  # fmt: skip
        check_planted(trained.vectors, threshold=0.6)
        assert trained.vectors.most_similar(trained.vectors["mermaids"], topn=1)[0][0] == "mermaid"
    else:
        trained = train_word2vec(planted, Word2VecConfig(method=method, epochs=15, sample=0, **SMALL,
                                                         device="cuda"))  # fmt: skip
        check_planted(trained.vectors)
    assert trained.stats.backend == "torch" and trained.stats.device.startswith("cuda:")
