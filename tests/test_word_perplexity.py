"""A causal LM re-scored at the word level: its windows add up to one plain forward pass over the text, it
divides by the n-grams' word count, and a tokenizer that loses text is refused."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent

# WikiText's layout: blank lines between paragraphs, a space at each end, `@-@`, `<unk>`, accents
VALID = (
    " \n = Homarus gammarus = \n \n"
    " Homarus gammarus , known as the European lobster , is a species of <unk> lobster . \n"
    " It may grow to a length of 60 cm ( 24 in ) and a mass of 6 @-@ kilograms . \n \n"
    " = = Description = = \n \n"
    " Its café @-@ coloured claws are blue . \n"
)
LINES = [line for line in VALID.splitlines() if line.strip()]
WORDS = sum(len(line.split()) for line in LINES) + len(LINES)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """valid.txt (and train.txt for the n-grams of the benchmark script) in one folder."""
    folder = tmp_path_factory.mktemp("wikitext")
    (folder / "valid.txt").write_text(VALID, encoding="utf-8")
    (folder / "train.txt").write_text(VALID * 3, encoding="utf-8")
    return folder


def tiny_gpt(vocab_size: int):
    from lmforge.model import build_model, preset

    torch.manual_seed(0)
    shape = {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64}
    return build_model(preset("gpt-tiny", vocab_size=vocab_size, max_positions=256, **shape)).eval()


def save_gpt(directory: Path, tokenizer):
    tiny_gpt(tokenizer.vocab_size).save(directory, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def bpe():
    from lmforge.tokenizers import BPETokenizer

    return BPETokenizer.train(LINES, vocab_size=300)  # byte-level: any text, no [UNK]


@pytest.fixture(scope="module")
def gpt_dir(tmp_path_factory, bpe):
    directory = tmp_path_factory.mktemp("gpt") / "model"
    save_gpt(directory, bpe)
    return directory


def test_one_window_equals_a_plain_forward_pass(gpt_dir, files, bpe):
    from lmforge.experiments.word_perplexity import score_causal_lm
    from lmforge.model import load

    score = score_causal_lm(gpt_dir, files / "valid.txt")
    text = "".join(line + "\n" for line in LINES)
    ids = torch.tensor([bpe.token_to_id("<|endoftext|>"), *bpe.encode(text, add_special_tokens=False).ids])
    assert len(ids) <= 256 and score.windows == 1  # the text fits one window
    with torch.no_grad():
        logits = load(gpt_dir)(ids[None]).logits[0]
    nll = F.cross_entropy(logits[:-1], ids[1:], reduction="sum").item()
    assert score.tokens == len(ids) - 1  # every token of the text, the first one given end-of-text
    assert score.nll == pytest.approx(nll, rel=1e-5)
    assert score.words == WORDS and score.bytes == len(text.encode("utf-8"))
    assert score.word_perplexity == pytest.approx(math.exp(nll / WORDS), rel=1e-5)
    assert score.token_perplexity == pytest.approx(math.exp(nll / (len(ids) - 1)), rel=1e-5)


def test_the_word_count_is_the_ngrams(files):
    """The GPT divides by the count `token_stream` gives the n-grams and ELMo."""
    from lmforge.experiments.word_perplexity import text_lines, token_stream, wikitext_words
    from lmforge.tokenizers import WordTokenizer

    words = WordTokenizer.train(LINES, vocab_size=200, special_tokens=["[PAD]", "[UNK]", "<|endoftext|>"])
    _, count = token_stream(files / "valid.txt", words)
    assert (
        count == wikitext_words(text_lines(files / "valid.txt")) == WORDS == 59
    )  # 5 + 17 + 22 + 6 + 9: words + one end per line


def test_strided_windows_score_every_token_once(bpe):
    """With attention and positions switched off the model is context-free, so any windows must add up to
    exactly the single window's total: a token scored twice, or skipped, or against the wrong target shows."""
    from lmforge.errors import ConfigError
    from lmforge.experiments.word_perplexity import causal_lm_nll, causal_stream

    model = tiny_gpt(bpe.vocab_size)
    with torch.no_grad():
        model.embeddings.positions.weight.zero_()
        for layer in model.layers:
            layer.attention.out.weight.zero_()
            layer.attention.out.bias.zero_()
    ids = causal_stream(LINES, bpe)
    whole = causal_lm_nll(model, ids)
    assert whole.windows == 1
    for context, stride in [(8, 3), (16, 15), (2, 1), (50, 7)]:
        part = causal_lm_nll(model, ids, context=context, stride=stride)
        assert part.windows > 1 and part.tokens == whole.tokens == len(ids) - 1
        assert part.nll_sum == pytest.approx(whole.nll_sum, rel=1e-6)
    with pytest.raises(ConfigError, match="so that every token is scored"):
        causal_lm_nll(model, ids, context=16, stride=16)  # disjoint windows: each one's first token unscored


def test_strided_windows_condition_each_token_on_its_window(gpt_dir, bpe):
    """With attention on, window (context 16, stride 4) scores each token given the tokens from its window's
    start: the sum of one plain forward per token equals the windowed total."""
    from lmforge.experiments.word_perplexity import causal_lm_nll, causal_stream
    from lmforge.model import load

    model = load(gpt_dir)
    ids = causal_stream(LINES, bpe)[:60]
    context, stride = 16, 4
    windowed = causal_lm_nll(model, ids, context=context, stride=stride)
    total, begin, scored_until = 0.0, 0, 1
    with torch.no_grad():
        while scored_until < len(ids):
            end = min(begin + context, len(ids))
            for t in range(max(scored_until, begin + 1), end):  # target t given ids[begin:t]
                logits = model(torch.from_numpy(ids[begin:t])[None]).logits[0, -1]
                total += float(F.cross_entropy(logits[None], torch.tensor([ids[t]])))
            scored_until, begin = end, begin + stride
    assert windowed.tokens == len(ids) - 1
    assert windowed.nll_sum == pytest.approx(total, rel=1e-5)


def test_lossy_tokenizers_are_refused(tmp_path, files):
    from lmforge.errors import ConfigError
    from lmforge.experiments.word_perplexity import causal_stream, score_causal_lm
    from lmforge.model.rnn import LSTMConfig, LSTMLanguageModel
    from lmforge.pretrain import save_final_model
    from lmforge.tokenizers import CharTokenizer, WordTokenizer

    # the LSTM preset's case: a model directory as `lmforge pretrain` saves the LSTM baseline, with a
    # character vocabulary from Shakespeare-like text (no digits, '@', '<', '>', '(' or 'é')
    shakespeare = "First Citizen:\nBefore we proceed any further, hear me speak. Jugs = ,.; mx!\n"
    chars = CharTokenizer.train([shakespeare + "Homarus gammarus known lobster Description wklyzGItfcbp"])
    chars.save(tmp_path / "chars.json")
    lstm = LSTMLanguageModel(LSTMConfig(vocab_size=chars.vocab_size, embed_dim=8, hidden_size=8))
    lstm_dir = save_final_model(lstm, None, tmp_path / "lstm-run", tmp_path / "chars.json", "")
    with pytest.raises(ConfigError) as refused:
        score_causal_lm(lstm_dir, files / "valid.txt", name="--gpt lstm")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("--gpt lstm: its tokenizer (CharTokenizer")
    assert "cannot represent the text losslessly" in message and "are [UNK] (for " in message
    assert "'@'" in message and "'6'" in message

    words = WordTokenizer.train(LINES, vocab_size=200, special_tokens=["[PAD]", "[UNK]", "<|endoftext|>"])
    with pytest.raises(ConfigError, match="does not give the text back"):
        causal_stream(LINES, words)  # every word known, but the spaces and line ends are not tokens
    rare = WordTokenizer.train(LINES[:1], vocab_size=200, special_tokens=["[PAD]", "[UNK]", "<|endoftext|>"])
    with pytest.raises(ConfigError, match=r"tokens are \[UNK\] \(for '"):
        causal_stream(LINES, rare)


def test_the_benchmark_script_adds_the_gpt_row(tmp_path, files, gpt_dir):
    from lmforge.tokenizers import WordTokenizer

    words = WordTokenizer.train(
        [VALID], vocab_size=200, special_tokens=["[PAD]", "[UNK]", "<|endoftext|>", "<unk>"]
    )
    words.save(tmp_path / "words.json")
    command = [sys.executable, str(REPO / "benchmarks" / "word_perplexity.py"), "--no-write"]
    command += ["--tokenizer", str(tmp_path / "words.json"), "--data", str(files), "--gpt", str(gpt_dir)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"WikiText-2 validation: {WORDS:,} words" in done.stdout
    row = next(line for line in done.stdout.splitlines() if line.startswith("| GPT (causal LM"))
    assert f"`{gpt_dir}`" in row and "Kneser-Ney 3-gram" in done.stdout

    chars_dir = tmp_path / "char"
    from lmforge.tokenizers import CharTokenizer

    save_gpt(chars_dir, CharTokenizer.train(["abc def\n"]))
    done = subprocess.run(command + ["--gpt", str(chars_dir)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().endswith("so their words would not be scored")
    assert f"--gpt {chars_dir}: its tokenizer (CharTokenizer" in done.stderr
