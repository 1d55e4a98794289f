"""lmforge.model on its own: presets, masks, the KV cache, the two attention paths, the model directory."""

from __future__ import annotations

import json

import pytest
import torch

from lmforge.model import PRESETS, CheckpointError, KVCache, build_model, load, mean_pool, preset, save_model
from lmforge.model.config import ModelConfig
from lmforge.model.decoder import greedy_continue
from lmforge.model.layers import SinusoidalPositions, attention_bias

VOCAB = 97


def tiny(name: str, **changes) -> ModelConfig:
    """A small-vocabulary, 2-layer version of a preset (fast on CPU); dropout stays 0."""
    base = dict(vocab_size=VOCAB, n_layers=2, d_model=64, n_heads=4, d_ff=128, max_positions=64)
    if PRESETS[name]().architecture == "encoder-decoder":
        base["n_decoder_layers"] = 2
    return preset(name, **{**base, **changes})


LLAMA_TINY = dict(n_kv_heads=2)  # grouped-query: 4 query heads share 2 key/value heads


def random_model(config: ModelConfig, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(config).eval()
    with torch.no_grad():  # non-trivial norms and biases, so that a wrong wiring shows
        for parameter in model.parameters():
            if parameter.dim() == 1:
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def run(model, ids, mask=None, **kwargs):
    if model.config.architecture == "encoder-decoder":
        return model(ids, attention_mask=mask, decoder_input_ids=ids[:, : max(1, ids.shape[1] - 2)], **kwargs)
    return model(ids, attention_mask=mask, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# presets, sizes, shapes


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_with_its_counted_size_and_right_shapes(name):
    config = preset(name)
    with torch.device("meta"):  # the big presets cost no memory and no time on the meta device
        model = build_model(config)
        ids = torch.zeros(2, 16, dtype=torch.long)
        out = run(model, ids)
    assert model.num_parameters() == config.num_parameters()
    T = 14 if config.architecture == "encoder-decoder" else 16
    assert out.hidden_states.shape == (2, T, config.d_model)
    assert out.logits.shape == (2, T, config.vocab_size)
    assert config.flops_per_token(256) > 6 * config.num_parameters(include_positions=False)


def test_gpt2_preset_has_the_published_size():
    assert preset("gpt2").num_parameters() == 124_439_808  # GPT-2 small as released


def test_tiny_presets_run_for_real():
    for name in ("gpt-tiny", "bert-tiny", "transformer-tiny"):
        model = build_model(preset(name)).eval()
        ids = torch.randint(0, 100, (2, 12))
        out = run(model, ids)
        assert torch.isfinite(out.logits).all()


@pytest.mark.parametrize(
    "head, shape",
    [
        ("sequence-classification", (2, 3)),
        ("token-classification", (2, 9, 3)),
        ("question-answering", (2, 9, 2)),
        (None, None),
    ],
)
def test_encoder_heads(head, shape):
    model = random_model(tiny("bert-tiny", head=head, num_labels=3, pooler=True))
    out = model(torch.randint(0, VOCAB, (2, 9)))
    assert out.pooled.shape == (2, 64) and out.hidden_states.shape == (2, 9, 64)
    assert (out.logits is None) if shape is None else (out.logits.shape == shape)


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="n_heads"):
        preset("gpt-tiny", n_heads=5)
    with pytest.raises(ValueError, match="unknown model preset"):
        preset("gpt-5")


# ---------------------------------------------------------------------------------------------------------
# masks


@pytest.mark.parametrize("name, extra", [("gpt-tiny", {}), ("llama-small", LLAMA_TINY)])
def test_causal_mask_a_later_token_never_changes_an_earlier_output(name, extra):
    model = random_model(tiny(name, **extra))
    ids = torch.randint(0, VOCAB, (1, 12))
    changed = ids.clone()
    changed[0, 7:] = (changed[0, 7:] + 1) % VOCAB
    with torch.no_grad():
        a, b = model(ids).logits, model(changed).logits
    torch.testing.assert_close(a[:, :7], b[:, :7], rtol=0, atol=1e-6)
    assert (a[:, 7:] - b[:, 7:]).abs().max() > 1e-3  # and the later ones do change


def test_encoder_is_bidirectional():
    model = random_model(tiny("bert-tiny"))
    ids = torch.randint(0, VOCAB, (1, 10))
    changed = ids.clone()
    changed[0, 9] = (changed[0, 9] + 1) % VOCAB
    with torch.no_grad():
        assert (model(ids).hidden_states[:, 0] - model(changed).hidden_states[:, 0]).abs().max() > 1e-4


@pytest.mark.parametrize(
    "name, extra",
    [("gpt-tiny", {}), ("llama-small", LLAMA_TINY), ("bert-tiny", {}), ("transformer-tiny", {})],
)
@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_never_changes_the_unpadded_outputs(name, extra, side):
    model = random_model(tiny(name, **extra))
    ids = torch.randint(1, VOCAB, (1, 8))
    pad = torch.randint(1, VOCAB, (1, 5))  # padding ids with arbitrary values: the mask must hide them
    padded = torch.cat([ids, pad], 1) if side == "right" else torch.cat([pad, ids], 1)
    ones, zeros = torch.ones(1, 8, dtype=torch.long), torch.zeros(1, 5, dtype=torch.long)
    mask = torch.cat([ones, zeros], 1) if side == "right" else torch.cat([zeros, ones], 1)
    real = slice(0, 8) if side == "right" else slice(5, 13)
    with torch.no_grad():
        if model.config.architecture == "encoder-decoder":  # padding on the source side
            target = torch.randint(1, VOCAB, (1, 6))
            alone = model(ids, decoder_input_ids=target).logits
            with_padding = model(padded, attention_mask=mask, decoder_input_ids=target).logits
            torch.testing.assert_close(alone, with_padding, rtol=0, atol=1e-5)
            return
        alone = model(ids).hidden_states
        with_padding = model(padded, attention_mask=mask).hidden_states
    torch.testing.assert_close(alone, with_padding[:, real], rtol=0, atol=1e-5)


def test_attention_bias_worked_example():
    bias, is_causal = attention_bias(torch.tensor([[0, 1, 1]]), 3, causal=True)
    allowed = (bias[0, 0] == 0).int().tolist()
    assert allowed == [[1, 0, 0], [0, 1, 0], [0, 1, 1]] and not is_causal
    assert attention_bias(None, 5, causal=True) == (None, True)  # no padding: SDPA's own causal path
    assert attention_bias(torch.ones(2, 5), 1, causal=True, past_length=4) == (None, False)


def test_sinusoidal_positions_follow_the_formula():
    table = SinusoidalPositions(50, 8).table
    position, i = 37, 2
    assert table[position, i].item() == pytest.approx(
        torch.sin(torch.tensor(position / 10000 ** (2 * i / 8))).item()
    )
    assert table[position, 4 + i].item() == pytest.approx(
        torch.cos(torch.tensor(position / 10000 ** (2 * i / 8))).item()
    )


# ---------------------------------------------------------------------------------------------------------
# the two attention paths


@pytest.mark.parametrize(
    "name, extra",
    [("gpt-tiny", {}), ("llama-small", LLAMA_TINY), ("bert-tiny", {}), ("transformer-tiny", {})],
)
def test_sdpa_path_equals_explicit_path(name, extra):
    model = random_model(tiny(name, **extra))
    ids = torch.randint(0, VOCAB, (2, 11))
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[1, 8:] = 0
    with torch.no_grad():
        for m in (None, mask):
            fast = run(model, ids, m)
            explicit = run(model, ids, m, return_attentions=True)
            torch.testing.assert_close(fast.logits, explicit.logits, rtol=0, atol=1e-5)
    weights = explicit.attentions[0]  # (B, H, T, S)
    torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)))
    if name == "bert-tiny":
        assert weights[1, :, :, 8:].max() == 0  # padding keys get no attention
    if name in ("gpt-tiny", "llama-small"):
        assert weights[0, :, 3, 4:].max() == 0  # no query sees the future


def test_bf16_on_cpu_takes_the_explicit_path_with_the_fused_kernels_result():
    from lmforge.model.layers import MultiHeadAttention, _explicit_is_faster

    torch.manual_seed(0)
    attention = MultiHeadAttention(32, 4)
    x = torch.randn(3, 9, 32)
    bias = torch.zeros(3, 1, 1, 9)
    bias[2, ..., 6:] = -torch.inf  # padding of the third row
    q = torch.zeros(3, 4, 9, 8, dtype=torch.bfloat16)
    assert _explicit_is_faster(q, q) and not _explicit_is_faster(q.float(), q.float())
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for causal in (False, True):
            explicit, _ = attention(x, bias=bias, is_causal=causal)  # bf16: the explicit path
            qkv = attention.qkv(x).view(3, 9, 3, 4, 8).permute(2, 0, 3, 1, 4)  # (3, B, H, T, hd)
            fused = torch.nn.functional.scaled_dot_product_attention(
                *qkv, attn_mask=bias.to(torch.bfloat16), is_causal=causal
            )
            expected = attention.out(fused.transpose(1, 2).reshape(3, 9, 32))
            torch.testing.assert_close(explicit.float(), expected.float(), rtol=0, atol=2e-2)


# ---------------------------------------------------------------------------------------------------------
# KV cache


@pytest.mark.parametrize("name, extra", [("gpt-tiny", {}), ("llama-small", LLAMA_TINY)])
def test_kv_cache_decoding_equals_the_full_forward(name, extra):
    model = random_model(tiny(name, **extra))
    ids = torch.randint(0, VOCAB, (2, 14))
    with torch.no_grad():
        full = model(ids).logits
        cache = model.new_cache()
        prefill = model(ids[:, :6], cache=cache).logits  # a prompt, then one token at a time
        steps = [model(ids[:, t : t + 1], cache=cache).logits for t in range(6, 14)]
    assert cache.length == 14
    torch.testing.assert_close(torch.cat([prefill, *steps], 1), full, rtol=0, atol=1e-5)
    # and greedy decoding with the cache picks what the uncached argmax picks
    sequence = greedy_continue(model, ids[:, :5], 6)
    with torch.no_grad():
        uncached = model(sequence[:, :-1]).logits[:, 4:].argmax(-1)
    assert torch.equal(uncached, sequence[:, 5:])


def test_kv_cache_writes_in_place_and_grows_past_its_capacity():
    """Decoding steps write into reserved room (no copy of the whole cache); running out of room regrows it."""
    model = random_model(tiny("gpt-tiny"))
    ids = torch.randint(0, VOCAB, (2, 12))
    with torch.no_grad():
        full = model(ids).logits
        for capacity in (0, 8, 12, 40):
            cache = model.new_cache(capacity=capacity)
            outs = [model(ids[:, :5], cache=cache).logits]
            buffer = cache.layers[0].key_buffer
            outs += [model(ids[:, t : t + 1], cache=cache).logits for t in range(5, 12)]
            torch.testing.assert_close(torch.cat(outs, 1), full, rtol=0, atol=1e-5)
            assert cache.length == 12 and cache.layers[0].key.shape == (2, 4, 12, 16)
            room = cache.layers[0].key_buffer.shape[2]
            assert room >= 12 and (capacity < 12 or room == capacity)
            if capacity >= 12:  # the reserved buffer was used all along
                assert cache.layers[0].key_buffer is buffer


def test_kv_cache_with_left_padding_matches_each_prompt_alone():
    """What batched generation needs: left-padded prompts + the growing mask give each row's own logits."""
    model = random_model(tiny("llama-small", **LLAMA_TINY))
    short, long = torch.randint(1, VOCAB, (1, 4)), torch.randint(1, VOCAB, (1, 7))
    batch = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), short], 1), long])
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [1] * 7])
    following = torch.randint(1, VOCAB, (2, 3))
    with torch.no_grad():
        cache = model.new_cache()
        model(batch, attention_mask=mask, cache=cache)
        for t in range(3):
            mask = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], 1)
            step = model(following[:, t : t + 1], attention_mask=mask, cache=cache).logits[:, -1]
        alone_short = model(torch.cat([short, following[:1]], 1)).logits[:, -1]
        alone_long = model(torch.cat([long, following[1:]], 1)).logits[:, -1]
    torch.testing.assert_close(step, torch.cat([alone_short, alone_long]), rtol=0, atol=1e-5)


def test_kv_cache_reorder_for_beams():
    model = random_model(tiny("gpt-tiny"))
    ids = torch.randint(0, VOCAB, (2, 5))
    with torch.no_grad():
        cache = model.new_cache()
        model(ids, cache=cache)
        cache.reorder(torch.tensor([1, 1, 0]))  # beams: row 1 twice, then row 0
        step = model(torch.tensor([[3], [4], [5]]), cache=cache).logits[:, -1]
        expected = model(torch.cat([ids[[1, 1, 0]], torch.tensor([[3], [4], [5]])], 1)).logits[:, -1]
    torch.testing.assert_close(step, expected, rtol=0, atol=1e-5)


def test_encoder_decoder_kv_cache_equals_the_full_forward():
    model = random_model(tiny("transformer-tiny"))
    source = torch.randint(1, VOCAB, (2, 9))
    source_mask = torch.ones(2, 9, dtype=torch.long)
    source_mask[0, 6:] = 0
    target = torch.randint(1, VOCAB, (2, 7))
    with torch.no_grad():
        full = model(source, attention_mask=source_mask, decoder_input_ids=target).logits
        memory, _ = model.encode(source, source_mask)  # once per source
        cache: KVCache = model.new_cache()
        steps = [
            model.decode(target[:, t : t + 1], memory, source_mask, cache=cache).logits
            for t in range(target.shape[1])
        ]
    cross_key = cache.layers[0].cross_key
    assert cross_key.shape == (2, 4, 9, 16)  # computed once from the 9 source tokens, never grown
    assert cache.layers[0].key.shape[2] == 7
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=0, atol=1e-5)


def right_padded(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of different lengths padded at the right with 0, and where each row's last real token is."""
    ids = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
    last = torch.zeros(ids.shape, dtype=torch.bool)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        last[i, len(row) - 1] = True
    return ids, last


@pytest.mark.parametrize("name, extra", [("gpt-tiny", {}), ("llama-small", LLAMA_TINY)])
def test_slot_cache_each_slot_decodes_as_its_sequence_alone(name, extra):
    """Sequences of different lengths share one forward pass, each at its own positions of its own slot;
    one joins while the others run, one leaves and its successor is moved down: every row's logits are the
    ones the whole sequence gives alone, and the buffers are the ones reserved at the start."""
    model = random_model(tiny(name, **extra))
    prompts = [torch.randint(0, VOCAB, (n,)) for n in (5, 11, 2)]
    more = torch.randint(0, VOCAB, (3, 4))  # the tokens fed after the prompts, one per step
    cache = model.new_slot_cache(slots=4, capacity=32)
    buffer = cache.keys[0]
    assert buffer.shape == (4, model.config.kv_heads, 32, model.config.head_dim)

    def alone(tokens: torch.Tensor) -> torch.Tensor:
        return model(tokens[None]).logits[0, -1]

    with torch.no_grad():
        ids, last = right_padded(prompts[:2])  # two prompts prefilled together
        logits = model(ids, cache=cache.batch(0, 2, [5, 11]), logits_where=last).logits
        for row in range(2):
            torch.testing.assert_close(logits[row], alone(prompts[row]), rtol=0, atol=1e-5)
        sequences = [prompts[0], prompts[1]]
        for t in range(2):  # two steps of both
            step = model(more[:2, t : t + 1], cache=cache.batch(0, 2, [1, 1])).logits[:, -1]
            for row in range(2):
                sequences[row] = torch.cat([sequences[row], more[row, t : t + 1]])
                torch.testing.assert_close(step[row], alone(sequences[row]), rtol=0, atol=1e-5)
        model(prompts[2][None], cache=cache.batch(2, 3, [2]))  # a third joins in slot 2 ...
        sequences.append(prompts[2])
        step = model(more[:, 2:3], cache=cache.batch(0, 3, [1, 1, 1])).logits[:, -1]  # ... and runs with them
        for row in range(3):
            sequences[row] = torch.cat([sequences[row], more[row, 2:3]])
            torch.testing.assert_close(step[row], alone(sequences[row]), rtol=0, atol=1e-5)
        assert cache.lengths[:3] == [8, 14, 3]
        cache.release(0)  # the first leaves; the third moves into its slot
        cache.move(2, 0)
        assert cache.lengths == [3, 14, 0, 0]
        step = model(more[1:, 3:4].flip(0), cache=cache.batch(0, 2, [1, 1])).logits[:, -1]
        for slot, row in enumerate((2, 1)):
            sequences[row] = torch.cat([sequences[row], more[row, 3:4]])
            torch.testing.assert_close(step[slot], alone(sequences[row]), rtol=0, atol=1e-5)
    assert cache.keys[0] is buffer  # written in place all along
    with pytest.raises(ValueError, match="room for 32"):
        cache.batch(0, 1, [30])


def test_slot_cache_encoder_decoder_keeps_each_sources_cross_attention():
    model = random_model(tiny("transformer-tiny"))
    sources = [torch.randint(1, VOCAB, (n,)) for n in (9, 4)]
    target = torch.randint(1, VOCAB, (2, 5))
    cache = model.new_slot_cache(slots=2)
    with torch.no_grad():
        source_ids, _ = right_padded(sources)
        source_mask = (torch.arange(9)[None] < torch.tensor([[9], [4]])).long()
        memory, _ = model.encode(source_ids, source_mask)
        view = cache.batch(0, 2, [1, 1], source_lengths=[9, 4])
        steps = [model.decode(target[:, :1], memory, source_mask, cache=view).logits]
        for t in range(1, 5):
            view = cache.batch(0, 2, [1, 1])
            steps.append(model.decode(target[:, t : t + 1], None, view.source_mask, cache=view).logits)
        for row, source in enumerate(sources):
            full = model(source[None], decoder_input_ids=target[row : row + 1]).logits[0]
            torch.testing.assert_close(torch.cat(steps, 1)[row], full, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# the model directory


@pytest.mark.parametrize("name", ["gpt-tiny", "bert-tiny", "transformer-tiny"])
def test_save_load_round_trip(tmp_path, name):
    model = random_model(tiny(name))
    tokenizer = tmp_path / "tok.json"
    tokenizer.write_text('{"model": {}}')
    model.save(tmp_path / "m", tokenizer=tokenizer)
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["README.md", "config.json", "model.safetensors", "tokenizer.json"]
    document = json.loads((tmp_path / "m" / "config.json").read_text())
    assert document["format_version"] == 1 and document["model"]["architecture"] == model.config.architecture
    assert "parameters:" in (tmp_path / "m" / "README.md").read_text()
    again = load(tmp_path / "m")
    ids = torch.randint(0, VOCAB, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(run(again, ids).logits, run(model, ids).logits, rtol=0, atol=0)
    tokens = again.decoder_embeddings.tokens if name == "transformer-tiny" else again.embeddings.tokens
    assert again.head.proj.weight is tokens.weight  # still tied after loading


def test_saved_weights_have_no_prefixes_and_tied_weights_once(tmp_path):
    from safetensors import safe_open

    model = random_model(tiny("gpt-tiny"))
    compiled_like = torch.nn.Module()
    compiled_like._orig_mod = model  # what torch.compile wraps a model in
    compiled_like.config = model.config
    save_model(compiled_like, tmp_path / "m")
    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "embeddings.tokens.weight" in keys and "head.proj.weight" not in keys
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in keys)


def test_load_lists_missing_unexpected_and_misshaped_tensors(tmp_path):
    from safetensors.torch import load_file, save_file

    model = random_model(tiny("gpt-tiny"))
    model.save(tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    state = load_file(str(path))
    del state["layers.0.attention.out.weight"]
    state["layers.9.extra"] = torch.zeros(3)
    state["final_norm.weight"] = torch.zeros(7)
    save_file(state, str(path))
    with pytest.raises(CheckpointError) as error:
        load(tmp_path / "m")
    message = str(error.value)
    assert "missing ['layers.0.attention.out.weight']" in message
    assert "unexpected ['layers.9.extra']" in message
    assert "final_norm.weight (7,) (expected (64,))" in message


def test_load_refuses_other_directories(tmp_path):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(CheckpointError, match="convert --from-hf"):
        load(tmp_path / "hf")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nowhere")


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


def test_kv_cache_chunked_prefill_without_mask():
    model = random_model(tiny("gpt-tiny"))
    ids = torch.randint(0, VOCAB, (2, 12))
    with torch.no_grad():
        full = model(ids).logits
        cache = model.new_cache()
        chunks = [model(ids[:, a:b], cache=cache).logits for a, b in ((0, 5), (5, 9), (9, 10), (10, 12))]
    torch.testing.assert_close(torch.cat(chunks, 1), full, rtol=0, atol=1e-5)


def test_encoder_decoder_cache_reorder_expands_sources_to_beams():
    model = random_model(tiny("transformer-tiny"))
    source = torch.randint(1, VOCAB, (2, 6))
    target = torch.randint(1, VOCAB, (2, 3))
    beams = torch.tensor([0, 0, 0, 1, 1, 1])  # 3 beams per source
    with torch.no_grad():
        memory, _ = model.encode(source)
        cache = model.new_cache()
        model.decode(target[:, :1], memory, cache=cache)
        cache.reorder(beams)
        memory = memory.index_select(0, beams)
        step = model.decode(target[beams, 1:3], memory, cache=cache).logits
        expected = model(source[beams], decoder_input_ids=target[beams]).logits[:, 1:3]
    assert cache.layers[0].cross_key.shape[0] == 6
    torch.testing.assert_close(step, expected, rtol=0, atol=1e-5)


def test_separate_encoder_decoder_embeddings():
    config = tiny("transformer-tiny", share_encoder_decoder_embeddings=False)
    model = random_model(config)
    assert model.encoder_embeddings.tokens is not model.decoder_embeddings.tokens
    assert (
        model.head.proj.weight is model.decoder_embeddings.tokens.weight
    )  # the output stays tied to the target side
    assert (
        model.num_parameters()
        == config.num_parameters()
        == tiny("transformer-tiny").num_parameters() + VOCAB * 64
    )
    out = model(torch.randint(0, VOCAB, (2, 5)), decoder_input_ids=torch.randint(0, VOCAB, (2, 3)))
    assert out.logits.shape == (2, 3, VOCAB)


def test_mlm_head_at_masked_positions_only_gives_the_same_loss():
    model = random_model(tiny("bert-tiny"))
    ids = torch.randint(5, VOCAB, (3, 16))
    masked = torch.rand(3, 16, generator=torch.Generator().manual_seed(0)) < 0.15
    masked[0, 0] = True
    labels = ids.masked_fill(~masked, -100)
    with torch.no_grad():
        everywhere = model(ids).logits  # (B, T, V)
        only_masked = model(ids, logits_where=masked).logits  # (N, V)
    full_loss = torch.nn.functional.cross_entropy(everywhere.view(-1, VOCAB), labels.view(-1))
    masked_loss = torch.nn.functional.cross_entropy(only_masked, ids[masked])
    assert only_masked.shape == (int(masked.sum()), VOCAB)
    torch.testing.assert_close(masked_loss, full_loss)


def test_dropout_acts_in_training_only():
    model = build_model(tiny("gpt-tiny", dropout=0.1, attention_dropout=0.1))
    ids = torch.randint(0, VOCAB, (2, 8))
    model.train()
    assert not torch.equal(model(ids).logits, model(ids).logits)
    model.eval()
    assert torch.equal(model(ids).logits, model(ids).logits)


def test_bf16_autocast_with_padding_stays_finite_and_close():
    model = random_model(tiny("bert-tiny"))
    ids = torch.randint(0, VOCAB, (2, 10))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 4:] = 0
    with torch.no_grad():
        exact = model(ids, attention_mask=mask).hidden_states
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(ids, attention_mask=mask).hidden_states
    assert torch.isfinite(low).all()
    assert (low.float() - exact)[mask.bool()].abs().max() < 0.1


def test_classifier_mean_pooling_reads_the_mean_of_the_real_tokens():
    from lmforge.model import mean_pool

    config = tiny("bert-tiny").replace(head="sequence-classification", classifier_pooling="mean")
    model = random_model(config)
    ids = torch.randint(1, VOCAB, (2, 7))
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    with torch.no_grad():
        out = model(ids, attention_mask=mask)
        expected = model.head(mean_pool(out.hidden_states, mask))
        short = model(ids[1:, :4]).logits  # padding never changes the pooled vector
    torch.testing.assert_close(out.logits, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.logits[1:], short, rtol=0, atol=1e-5)
    with pytest.raises(Exception, match="classifier_pooling"):
        tiny("bert-tiny").replace(classifier_pooling="max").validate()
