"""Static word embeddings: Word2Vec (CBOW, skip-gram), GloVe and FastText, trained by numba kernels, and
`WordVectors` to query, save, load, evaluate and draw them; contextual embeddings (token, word and sentence
vectors) from an lmforge encoder. See docs/embeddings.md."""

from lmforge.embeddings.contextual import (
    ContextualEmbedder,
    TextVectors,
    cosine_matrix,
    cosine_similarity,
    load_embedder,
)
from lmforge.embeddings.fasttext import FastTextConfig, FastTextModel, load_fasttext, train_fasttext
from lmforge.embeddings.glove import GloVeConfig, train_glove
from lmforge.embeddings.vectors import AnalogyResult, PairResult, WordVectors, gensim_test_file
from lmforge.embeddings.vocab import (
    EncodedCorpus,
    Vocabulary,
    build_vocabulary,
    encode_corpus,
    tokenize_lines,
)
from lmforge.embeddings.word2vec import Trained, TrainStats, Word2VecConfig, train_word2vec

__all__ = [
    "AnalogyResult",
    "ContextualEmbedder",
    "EncodedCorpus",
    "FastTextConfig",
    "FastTextModel",
    "GloVeConfig",
    "PairResult",
    "TextVectors",
    "TrainStats",
    "Trained",
    "Vocabulary",
    "Word2VecConfig",
    "WordVectors",
    "build_vocabulary",
    "cosine_matrix",
    "cosine_similarity",
    "encode_corpus",
    "gensim_test_file",
    "load_embedder",
    "load_fasttext",
    "tokenize_lines",
    "train_fasttext",
    "train_glove",
    "train_word2vec",
]
