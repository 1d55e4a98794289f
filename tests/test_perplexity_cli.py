"""`lmforge perplexity` on saved model directories: the numbers equal a direct computation."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"


@pytest.fixture(scope="module")
def char_tokenizer_file(tmp_path_factory):
    from lmforge.tokenizers import CharTokenizer

    tokenizer = CharTokenizer.train(
        [TEXT], vocab_size=64, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    )
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tokenizer.save(path)
    return path, tokenizer


def save_model(preset_name, tokenizer_file, tokenizer, directory):
    from lmforge.model import build_model, preset

    torch.manual_seed(0)
    config = preset(
        preset_name,
        vocab_size=tokenizer.vocab_size,
        max_positions=128,
        d_model=32,
        n_layers=2,
        n_heads=2,
        d_ff=64,
    )
    model = build_model(config)
    model.save(directory, tokenizer=tokenizer_file)
    return model.eval()


def test_causal_perplexity_equals_the_full_forward(tmp_path, cli, char_tokenizer_file):
    tokenizer_file, tokenizer = char_tokenizer_file
    model = save_model("gpt-tiny", tokenizer_file, tokenizer, tmp_path / "gpt")
    text_file = tmp_path / "t.txt"
    text_file.write_text(TEXT)
    code, out, err = cli("perplexity", "--model", tmp_path / "gpt", text_file, "--json")
    assert code == 0, err
    result = json.loads(out)
    ids = torch.tensor(tokenizer.encode(TEXT, add_special_tokens=False).ids)
    with torch.no_grad():
        logits = model(ids[None]).logits[0]
    nll = F.cross_entropy(logits[:-1], ids[1:], reduction="sum").item()
    assert result["tokens"] == len(ids) - 1 and result["windows"] == 1
    assert result["perplexity"] == pytest.approx(math.exp(nll / (len(ids) - 1)), rel=1e-5)
    assert result["bits_per_byte"] == pytest.approx(nll / math.log(2) / len(TEXT.encode()), rel=1e-5)
    assert "CharTokenizer" in result["tokenizer"] and result["context"] == 128


def test_masked_model_gives_pseudo_perplexity(tmp_path, cli, char_tokenizer_file):
    tokenizer_file, tokenizer = char_tokenizer_file
    model = save_model("bert-tiny", tokenizer_file, tokenizer, tmp_path / "bert")
    text_file = tmp_path / "t.txt"
    text_file.write_text(TEXT)
    code, out, err = cli(
        "perplexity", "--model", tmp_path / "bert", text_file, "--json", "--max-tokens", "20"
    )
    assert code == 0, err
    result = json.loads(out)
    ids = tokenizer.encode(TEXT, add_special_tokens=False).ids[:20]
    cls, sep, mask = (tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[MASK]"))
    nll = 0.0
    with torch.no_grad():
        for i in range(len(ids)):  # the definition, one masked copy at a time
            row = [cls] + ids + [sep]
            row[i + 1] = mask
            logits = model(torch.tensor([row])).logits[0, i + 1]
            nll -= torch.log_softmax(logits.float(), -1)[ids[i]].item()
    assert result["metric"] == "pseudo-perplexity" and result["tokens"] == 20
    assert result["pseudo_perplexity"] == pytest.approx(math.exp(nll / 20), rel=1e-4)


def test_bad_arguments(tmp_path, cli, char_tokenizer_file):
    tokenizer_file, tokenizer = char_tokenizer_file
    save_model("gpt-tiny", tokenizer_file, tokenizer, tmp_path / "gpt")
    text_file = tmp_path / "t.txt"
    text_file.write_text(TEXT)
    code, _, err = cli("perplexity", "--model", tmp_path / "gpt", text_file, "--context", "4096")
    assert code == 2 and "--context" in err
    code, _, err = cli("perplexity", "--model", tmp_path / "nope", text_file)
    assert code == 2 and "nope: no such directory" in err
    (tmp_path / "notamodel").mkdir()
    code, out, err = cli("perplexity", "--model", tmp_path / "notamodel", text_file)
    assert code == 2 and out == "" and "notamodel: no config.json" in err and "generat" not in err
    save_model("transformer-tiny", tokenizer_file, tokenizer, tmp_path / "seq2seq")
    code, out, err = cli("perplexity", "--model", tmp_path / "seq2seq", text_file)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "an encoder-decoder model (head 'lm') cannot score text" in err
    assert "it needs a decoder or an encoder with head 'mlm'" in err


def _hf_dir(model, tokenizer_file, directory):
    model.save_pretrained(directory, safe_serialization=True)
    (directory / "tokenizer.json").write_bytes(tokenizer_file.read_bytes())
    return directory


@pytest.mark.parametrize(("context", "stride"), [(32, 32), (32, 8)])
def test_causal_perplexity_equals_transformers_on_converted_weights(
    tmp_path, cli, char_tokenizer_file, context, stride
):
    """`lmforge convert --from-hf` a GPT2LMHeadModel, then `lmforge perplexity` = the HF guide's loop on it."""
    transformers = pytest.importorskip("transformers")
    from test_metrics_perplexity import _guide_loop

    tokenizer_file, tokenizer = char_tokenizer_file
    torch.manual_seed(0)
    hf_config = transformers.GPT2Config(
        vocab_size=tokenizer.vocab_size, n_positions=64, n_embd=32, n_layer=2, n_head=2
    )
    hf_model = transformers.GPT2LMHeadModel(hf_config).eval()
    hf = _hf_dir(hf_model, tokenizer_file, tmp_path / "hf")
    code, _, err = cli("convert", "--from-hf", hf, "--out", tmp_path / "lm")
    assert code == 0, err
    text_file = tmp_path / "t.txt"
    text_file.write_text(TEXT)
    code, out, err = cli(
        "perplexity",
        "--model",
        tmp_path / "lm",
        text_file,
        "--context",
        context,
        "--stride",
        stride,
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    ids = torch.tensor([tokenizer.encode(TEXT, add_special_tokens=False).ids])
    nll_sum, tokens = _guide_loop(hf_model, ids, context, stride)
    assert result["tokens"] == tokens
    assert result["perplexity"] == pytest.approx(math.exp(nll_sum / tokens), rel=1e-5)


def test_pseudo_perplexity_equals_transformers_on_converted_weights(tmp_path, cli, char_tokenizer_file):
    """A converted BertForMaskedLM: pseudo-perplexity = one masked copy per token scored by transformers."""
    transformers = pytest.importorskip("transformers")
    tokenizer_file, tokenizer = char_tokenizer_file
    torch.manual_seed(0)
    hf_config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.token_to_id("[PAD]"),
    )
    hf_model = transformers.BertForMaskedLM(hf_config).eval()
    hf = _hf_dir(hf_model, tokenizer_file, tmp_path / "hf")
    code, _, err = cli("convert", "--from-hf", hf, "--out", tmp_path / "lm")
    assert code == 0, err
    text_file = tmp_path / "t.txt"
    text_file.write_text(TEXT)
    code, out, err = cli("perplexity", "--model", tmp_path / "lm", text_file, "--json", "--max-tokens", "16")
    assert code == 0, err
    result = json.loads(out)
    ids = tokenizer.encode(TEXT, add_special_tokens=False).ids[:16]
    cls, sep, mask = (tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[MASK]"))
    rows = []
    for i in range(len(ids)):
        row = [cls] + ids + [sep]
        row[i + 1] = mask
        rows.append(row)
    with torch.no_grad():
        logits = hf_model(torch.tensor(rows)).logits  # (16, 18, vocab)
    log_probs = torch.log_softmax(logits.double(), -1)
    nll = -sum(log_probs[i, i + 1, ids[i]].item() for i in range(len(ids)))
    assert result["tokens"] == 16
    assert result["pseudo_perplexity"] == pytest.approx(math.exp(nll / 16), rel=1e-4)
