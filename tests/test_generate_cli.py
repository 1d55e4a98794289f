"""`lmforge generate` on a saved model directory: streamed text equals the non-streamed text."""

from __future__ import annotations

import json

import pytest
import torch

CORPUS = [
    "déjà vu — naïve café, 你好世界, smile 🙂 " * 3,
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from lmforge.model import build_model, preset
    from lmforge.tokenizers import BPETokenizer

    directory = tmp_path_factory.mktemp("gen-model")
    tokenizer = BPETokenizer.train(CORPUS, vocab_size=300)
    tokenizer.save(directory / "tok.json")
    torch.manual_seed(0)
    config = preset(
        "gpt-tiny",
        vocab_size=tokenizer.vocab_size,
        d_model=32,
        n_layers=2,
        n_heads=2,
        d_ff=64,
        max_positions=64,
    )
    build_model(config).save(directory / "model", tokenizer=directory / "tok.json")
    return directory / "model"


def test_stream_prints_what_json_reports(model_dir, cli):
    code, out, err = cli(
        "generate",
        "--model",
        model_dir,
        "--prompt",
        "café ",
        "--max-new-tokens",
        "24",
        "--temperature",
        "0",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert len(result["token_ids"]) == 24 and result["prompt"] == "café "
    code, streamed, err = cli(
        "generate",
        "--model",
        model_dir,
        "--prompt",
        "café ",
        "--max-new-tokens",
        "24",
        "--temperature",
        "0",
        "--stream",
    )
    assert code == 0, err
    assert streamed == "café " + result["text"] + "\n"


def test_prompts_file_is_batched_and_matches_single_prompts(model_dir, cli, tmp_path):
    prompts = ["def ", "naïve", "你好"]
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(prompts) + "\n")
    code, out, err = cli(
        "generate",
        "--model",
        model_dir,
        "--prompts",
        path,
        "--max-new-tokens",
        "10",
        "--temperature",
        "0",
        "--json",
    )
    assert code == 0, err
    batched = [json.loads(line) for line in out.splitlines()]
    assert [b["prompt"] for b in batched] == prompts
    for prompt, result in zip(prompts, batched, strict=True):
        code, out, _ = cli(
            "generate",
            "--model",
            model_dir,
            "--prompt",
            prompt,
            "--max-new-tokens",
            "10",
            "--temperature",
            "0",
            "--json",
        )
        assert json.loads(out)["token_ids"] == result["token_ids"]


def test_seeded_sampling_is_reproducible(model_dir, cli):
    args = (
        "generate",
        "--model",
        model_dir,
        "--prompt",
        "def ",
        "--max-new-tokens",
        "12",
        "--temperature",
        "1.0",
        "--top-k",
        "50",
        "--seed",
        "3",
        "--json",
    )
    first = json.loads(cli(*args)[1])
    assert json.loads(cli(*args)[1]) == first


def test_errors_are_one_line(model_dir, cli, tmp_path):
    code, _, err = cli("generate", "--model", tmp_path / "missing", "--prompt", "x")
    assert code == 2 and "missing: no such directory" in err
    code, _, err = cli("generate", "--model", model_dir, "--prompt", "x", "--top-p", "0")
    assert code == 2 and "top_p" in err


def test_an_encoder_is_refused_in_one_line(cli, tmp_path):
    """An encoder used to reach the decoding loop and fail there (`unexpected keyword argument 'cache'`)."""
    from lmforge.model import build_model, preset
    from lmforge.tokenizers import WordPieceTokenizer

    tokenizer = WordPieceTokenizer.train(CORPUS, vocab_size=120)
    config = preset("bert-tiny", vocab_size=tokenizer.vocab_size, d_model=32, n_layers=1, n_heads=2, d_ff=64)
    build_model(config).save(tmp_path / "bert", tokenizer=tokenizer)
    code, out, err = cli("generate", "--model", tmp_path / "bert", "--prompt", "def")
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert f"--model {tmp_path / 'bert'}: an encoder model (head 'mlm') cannot generate text" in err


@pytest.fixture(scope="module")
def draft_dir(model_dir, tmp_path_factory):
    """A smaller model on the same tokenizer: a speculative-decoding draft for `model_dir`."""
    from lmforge.model import build_model, preset

    torch.manual_seed(1)
    config = preset("gpt-tiny", vocab_size=300, d_model=16, n_layers=1, n_heads=2, d_ff=32, max_positions=64)
    directory = tmp_path_factory.mktemp("gen-draft") / "draft"
    build_model(config).save(directory, tokenizer=model_dir / "tokenizer.json")
    return directory


def test_speculative_options_give_the_same_text_and_an_acceptance_rate(model_dir, draft_dir, cli, tmp_path):
    base = ["generate", "--model", model_dir, "--max-new-tokens", "30", "--temperature", "0", "--json"]
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("def fib(n):\n café naïve\n")
    code, out, err = cli(*base, "--prompts", prompts)
    assert code == 0, err
    plain = [json.loads(line) for line in out.splitlines()]
    assert "acceptance_rate" not in plain[0]
    for extra in (["--draft", draft_dir, "--num-speculative-tokens", "3"], ["--prompt-lookup", "5"]):
        code, out, err = cli(*base, "--prompts", prompts, "--batch-size", "2", *extra)
        assert code == 0, err
        records = [json.loads(line) for line in out.splitlines()]
        assert [r["token_ids"] for r in records] == [p["token_ids"] for p in plain], extra
        for record in records:
            assert record["drafted_tokens"] >= record["accepted_tokens"] >= 0
            if record["drafted_tokens"]:
                assert record["acceptance_rate"] == record["accepted_tokens"] / record["drafted_tokens"]
    code, streamed, err = cli(*base[:-1], "--prompt", "def fib(n):", "--stream", "--draft", draft_dir)
    assert code == 0 and streamed.rstrip("\n") == "def fib(n):" + plain[0]["text"]


def test_generation_json_names_a_draft_relative_to_the_model(model_dir, draft_dir, cli, tmp_path):
    import shutil

    from lmforge.generate import GenerationConfig

    target = tmp_path / "target"
    shutil.copytree(model_dir, target)
    shutil.copytree(draft_dir, tmp_path / "draft")
    GenerationConfig(temperature=0, max_new_tokens=12, draft="../draft").save(target)
    code, out, err = cli("generate", "--model", target, "--prompt", "def ", "--json")
    assert code == 0, err
    assert json.loads(out)["drafted_tokens"] > 0
    code, out, err = cli("generate", "--model", target, "--prompt", "def ", "--json", "--prompt-lookup", "3")
    assert code == 0, err  # prompt lookup replaces the default draft rather than clashing with it
    code, out, err = cli("generate", "--model", target, "--prompt", "def ", "--json", "--draft", "none")
    assert code == 0 and "drafted_tokens" not in json.loads(out)


def test_a_draft_on_another_tokenizer_is_refused_in_one_line(model_dir, cli, tmp_path):
    from lmforge.model import build_model, preset
    from lmforge.tokenizers import BPETokenizer

    tokenizer = BPETokenizer.train(CORPUS[::-1], vocab_size=280)
    tokenizer.save(tmp_path / "tok.json")
    config = preset("gpt-tiny", vocab_size=tokenizer.vocab_size, d_model=16, n_layers=1, n_heads=2, d_ff=32)
    build_model(config).save(tmp_path / "other", tokenizer=tmp_path / "tok.json")
    code, _, err = cli(
        "generate",
        "--model",
        model_dir,
        "--prompt",
        "def ",
        "--max-new-tokens",
        "5",
        "--draft",
        tmp_path / "other",
    )
    assert code != 0 and "tokenizer" in err and len(err.strip().splitlines()) == 1
    beams = ["generate", "--model", model_dir, "--prompt", "x", "--num-beams", "2", "--max-new-tokens", "5"]
    code, out, err = cli(*beams, "--draft", model_dir)  # beam search ignores the draft
    assert code == 0 and out == cli(*beams)[1]
