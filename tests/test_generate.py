"""lmforge's greedy and beam search produce exactly HF `generate`'s tokens on the same weights."""

from __future__ import annotations

import pytest
import torch

from lmforge.generate import GenerationConfig, GenerationError, IncrementalDecoder, generate, stream

transformers = pytest.importorskip("transformers")
pytest.importorskip("lmforge.model.convert")
from lmforge.model import load  # noqa: E402
from lmforge.model.convert import from_hf  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py

VOCAB = 97
# Random tiny models mostly repeat one token; these settings (wide init, a boosted decoder) give varied
# continuations, and each EOS below is a token they reach after a varying number of steps, so that rows
# finish at different times — the case where padding and beam bookkeeping can go wrong.
EOS = 54  # GPT-2
MARIAN_EOS = 70


@pytest.fixture(scope="module")
def gpt2_pair(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=4,
        eos_token_id=EOS,
        bos_token_id=EOS,
        initializer_range=0.2,
    )
    hf_model = transformers.GPT2LMHeadModel(config).eval()
    source = tmp_path_factory.mktemp("gpt2-hf")
    hf_model.save_pretrained(source)
    out = tmp_path_factory.mktemp("gpt2-lmforge")
    from_hf(source, out)
    return hf_model, load(out)


@pytest.fixture(scope="module")
def marian_pair(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.MarianConfig(
        vocab_size=VOCAB,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        pad_token_id=VOCAB - 1,
        decoder_start_token_id=VOCAB - 1,
        eos_token_id=MARIAN_EOS,
        forced_eos_token_id=None,
        init_std=0.05,
    )
    hf_model = transformers.MarianMTModel(config).eval()
    with torch.no_grad():
        for name, parameter in hf_model.model.decoder.named_parameters():
            if name.endswith(("fc2.weight", "out_proj.weight")):
                parameter.mul_(6)
    source = tmp_path_factory.mktemp("marian-hf")
    hf_model.save_pretrained(source)
    out = tmp_path_factory.mktemp("marian-lmforge")
    from_hf(source, out)
    return hf_model, load(out)


def left_padded(prompts: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


def random_prompts(seed: int, count: int, low: int = 3, high: int = 12) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(low, high, (count,), generator=generator).tolist()
    return [torch.randint(6, VOCAB - 1, (n,), generator=generator).tolist() for n in lengths]


def hf_generate(model, ids, mask, **settings):
    settings.setdefault(
        "pad_token_id", model.config.pad_token_id if model.config.pad_token_id is not None else EOS
    )
    return model.generate(input_ids=ids, attention_mask=mask, do_sample=False, **settings)


@pytest.mark.parametrize("seed", range(3))
def test_greedy_single_prompt_gpt2(gpt2_pair, seed):
    hf_model, model = gpt2_pair
    ids = torch.tensor(random_prompts(seed, 1))
    expected = hf_generate(hf_model, ids, None, max_new_tokens=20, eos_token_id=EOS)
    got = generate(model, ids, GenerationConfig(max_new_tokens=20, temperature=0, eos_token_id=EOS)).sequences
    assert got.tolist() == expected.tolist()


def greedy_batch_matches(pair, seed: int) -> torch.Tensor:
    hf_model, model = pair
    ids, mask = left_padded(random_prompts(seed, 5), EOS)
    expected = hf_generate(hf_model, ids, mask, max_new_tokens=16, eos_token_id=EOS)
    config = GenerationConfig(max_new_tokens=16, temperature=0, eos_token_id=EOS, pad_token_id=EOS)
    assert generate(model, ids, config, attention_mask=mask).sequences.tolist() == expected.tolist()
    return expected[:, ids.shape[1] :]


@pytest.mark.parametrize("seed", range(3))
def test_greedy_batch_of_different_lengths_gpt2(gpt2_pair, seed):
    greedy_batch_matches(gpt2_pair, seed)


def test_batches_exercise_early_finishing_rows(gpt2_pair):
    """Guard against a vacuous parity test: some rows stop at EOS early while others keep going."""
    new = torch.cat([greedy_batch_matches(gpt2_pair, seed) for seed in range(3)])
    stopped = (new == EOS).any(1)
    assert 0 < int(stopped.sum()) < len(new)
    first_eos = [row.index(EOS) for row in new.tolist() if EOS in row]
    assert any(i > 0 for i in first_eos)  # not only at the very first step


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(
    ("beams", "length_penalty", "early"), [(2, 1.0, False), (4, 1.0, True), (3, 0.5, False)]
)
def test_beam_search_gpt2(gpt2_pair, seed, beams, length_penalty, early):
    hf_model, model = gpt2_pair
    ids, mask = left_padded(random_prompts(seed, 3), EOS)
    settings = dict(max_new_tokens=12, num_beams=beams, length_penalty=length_penalty, early_stopping=early)
    expected = hf_generate(hf_model, ids, mask, eos_token_id=EOS, **settings)
    config = GenerationConfig(temperature=0, eos_token_id=EOS, pad_token_id=EOS, **settings)
    assert generate(model, ids, config, attention_mask=mask).sequences.tolist() == expected.tolist()


@pytest.mark.parametrize("seed", range(3))
def test_greedy_and_beams_marian(marian_pair, seed):
    hf_model, model = marian_pair
    pad = VOCAB - 1
    prompts = [p + [MARIAN_EOS] for p in random_prompts(seed, 4)]
    width = max(len(p) for p in prompts)
    ids = torch.tensor([p + [pad] * (width - len(p)) for p in prompts])  # Marian pads sources on the right
    mask = (ids != pad).long()
    for beams in (1, 3):
        settings = dict(max_new_tokens=12, num_beams=beams)
        expected = hf_generate(hf_model, ids, mask, eos_token_id=MARIAN_EOS, **settings)
        config = GenerationConfig(temperature=0, eos_token_id=MARIAN_EOS, **settings)
        got = generate(model, ids, config, attention_mask=mask).sequences
        assert got.tolist() == expected.tolist(), beams
        assert bool((expected[:, 1:] == MARIAN_EOS).any()), "EOS never reached: the test would prove little"


def test_sampling_is_reproducible_with_a_seed(gpt2_pair):
    _, model = gpt2_pair
    ids = torch.tensor(random_prompts(0, 2, 4, 5))
    config = GenerationConfig(max_new_tokens=15, temperature=1.3, top_k=20, top_p=0.95, seed=123)
    first = generate(model, ids, config).sequences
    assert torch.equal(first, generate(model, ids, config).sequences)
    others = [generate(model, ids, config.replace(seed=s)).sequences for s in range(124, 128)]
    assert any(not torch.equal(first, o) for o in others)


def test_eos_outside_the_vocabulary_is_never_produced(gpt2_pair):
    _, model = gpt2_pair
    ids = torch.tensor(random_prompts(1, 1))
    out = generate(model, ids, GenerationConfig(max_new_tokens=9, temperature=0, eos_token_id=50256))
    assert out.new_tokens.shape == (1, 9)


class ByteLevelTokenizer:
    """ids are bytes: decoding a prefix can end inside a multi-byte character."""

    def decode(self, ids, skip_special_tokens=True):
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


def test_stream_yields_the_text_of_generate(gpt2_pair):
    _, model = gpt2_pair
    tokenizer = ByteLevelTokenizer()
    ids = torch.tensor(random_prompts(2, 1))
    for config in [
        GenerationConfig(max_new_tokens=25, temperature=0),
        GenerationConfig(max_new_tokens=25, seed=7),
    ]:
        pieces = list(stream(model, tokenizer, ids, config))
        full = generate(model, ids, config).new_tokens[0].tolist()
        assert "".join(pieces) == tokenizer.decode(full)


def test_stop_strings_end_the_sequence(gpt2_pair):
    _, model = gpt2_pair
    tokenizer = ByteLevelTokenizer()
    ids = torch.tensor(random_prompts(2, 1))
    no_eos = [1000]  # outside the vocabulary: never produced, so only the stop string can end the text
    free = generate(model, ids, GenerationConfig(max_new_tokens=30, temperature=0, eos_token_id=no_eos))
    free = free.new_tokens[0].tolist()
    stop = tokenizer.decode(free[3:5])
    if not stop or "\ufffd" in stop:
        stop = chr(free[3])
    config = GenerationConfig(max_new_tokens=30, temperature=0, eos_token_id=no_eos, stop_strings=[stop])
    out = generate(model, ids, config, tokenizer=tokenizer)
    text = tokenizer.decode(out.new_tokens[0].tolist())
    assert stop in text and len(out.new_tokens[0]) < len(free)


def test_bad_inputs_are_clear_errors(gpt2_pair):
    _, model = gpt2_pair
    with pytest.raises(GenerationError, match="outside the model's vocabulary"):
        generate(model, torch.tensor([[VOCAB + 3]]))
    with pytest.raises(GenerationError, match="empty"):
        generate(model, torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(GenerationError, match="need a tokenizer"):
        generate(model, torch.tensor([[7]]), GenerationConfig(stop_strings=["x"]))
    assert IncrementalDecoder(ByteLevelTokenizer()).flush() == ""
