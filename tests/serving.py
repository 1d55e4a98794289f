"""The test harness for lmforge's HTTP applications: a real uvicorn on 127.0.0.1 on a free port, in a thread of
the test process, the check of OpenAI's error envelope, and the tiny models the servers serve (built in the
test, in a second or so). For the server's tests and the later pages (search, human evaluation, analysis);
tests/browser.py drives those pages in Chromium.

    with served({"gpt": model_dir}, api_key="k") as server:
        OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)...
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install lmforge[serve])")

from lmforge.model import build_model, preset  # noqa: E402
from lmforge.model.layers import init_weights  # noqa: E402
from lmforge.serve import BackgroundServer, Settings, build, parse_specs  # noqa: E402

CORPUS = [
    "the cat sat on the mat . the dog sat on the log . a bird sang in the tree .",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "Paris is the capital of France . Madrid is the capital of Spain .",
]
CONTEXT = 64
SIZES = dict(d_model=32, n_layers=2, n_heads=2, d_ff=64, max_positions=CONTEXT)


@contextlib.contextmanager
def served(models: dict[str, str], *, max_batch: int = 16, max_queue: int = 64, **settings) -> Iterator:
    """A server of `models` (name → model directory) with `Settings(**settings)`, loaded before it yields;
    `.url`, `.registry`; stopped (engines closed) on exit."""
    specs = parse_specs([f"{name}={directory}" for name, directory in models.items()])
    app, registry = build(specs, Settings(**settings), max_batch=max_batch, max_queue=max_queue)
    registry.load(background=False)
    assert registry.error is None, registry.error
    server = BackgroundServer(app)
    server.registry = registry
    try:
        yield server
    finally:
        server.stop()
        registry.close()


def wait_until(condition, seconds: float = 10.0) -> bool:
    """Whether `condition()` became true within `seconds` (polled every 20 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def assert_error(response, status: int, code: str | None = None, param: str | None = None) -> dict:
    """`response` (httpx) is OpenAI's error envelope with this status (and code, param when given); returns
    the error object."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


def tiny_models(root: Path) -> dict[str, str]:
    """Four model directories under `root`, each with its tokenizer, by name: `gpt` (a tiny GPT with wide
    random weights, so that greedy continuations vary), `bert` (a bare encoder: embeddings), `sentiment`
    (a classifier) and `qa` (a span model)."""
    from lmforge.tokenizers import BERT_SPECIAL_TOKENS, BPETokenizer, WordPieceTokenizer

    bpe = BPETokenizer.train(CORPUS * 3, vocab_size=300, special_tokens=["<pad>", "<s>", "</s>"])
    wordpiece = WordPieceTokenizer.train(CORPUS * 3, vocab_size=200, special_tokens=list(BERT_SPECIAL_TOKENS))

    def save(name, tokenizer, folder, std=None, **changes):
        torch.manual_seed(0)
        model = build_model(preset(name, vocab_size=tokenizer.vocab_size, **{**SIZES, **changes}))
        if std is not None:
            init_weights(model, 2, std=std)
        return str(model.save(Path(root) / folder / "model", tokenizer=tokenizer))

    pad = wordpiece.token_to_id("[PAD]")
    return {
        "gpt": save("gpt-tiny", bpe, "gpt", std=0.3, eos_token_id=bpe.token_to_id("</s>")),
        "bert": save("bert-tiny", wordpiece, "bert", pad_token_id=pad),
        "sentiment": save(
            "bert-tiny",
            wordpiece,
            "sentiment",
            pad_token_id=pad,
            head="sequence-classification",
            num_labels=2,
            extra={"labels": ["negative", "positive"]},
        ),
        "qa": save(
            "bert-tiny",
            wordpiece,
            "qa",
            pad_token_id=pad,
            head="question-answering",
            pooler=False,
            extra={
                "qa": {"max_length": 24, "doc_stride": 6, "max_question_length": 8, "max_answer_length": 5}
            },
        ),
    }


def scripted_model(directory: Path, text: str) -> str:
    """A GPT saved in `directory` whose greedy continuation of any one-token prompt (`"x"`) is exactly
    `text`, then end of text: to test what a page does with a given model output (`<img onerror=...>`).

    Byte-level tokens; the layers write nothing into the residual stream (zero output projections) and the
    token embeddings are zero, so position p's hidden state is its one-hot position embedding and the
    (untied) LM head maps position p to the (p+1)-th token of `text` + end of text.
    """
    from lmforge.tokenizers import BPETokenizer

    tokenizer = BPETokenizer.train([text], vocab_size=257, special_tokens=["</s>"])  # bytes only
    sequence = tokenizer.encode(text).ids + [tokenizer.token_to_id("</s>")]
    width = max(32, len(sequence) + 8)  # one position dimension per position, room for the prompt
    config = preset("gpt-tiny", vocab_size=tokenizer.vocab_size, d_model=width, n_layers=1, n_heads=2)
    model = build_model(
        config.replace(d_ff=width, max_positions=width, tie_embeddings=False, eos_token_id=sequence[-1])
    )
    silent = (
        "embeddings.tokens.weight",
        "attention.out.weight",
        "attention.out.bias",
        "down.weight",
        "down.bias",
    )
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(silent):
                parameter.zero_()
        model.embeddings.positions.weight.copy_(10 * torch.eye(width))
        model.head.proj.weight.zero_()
        for position, token in enumerate(sequence):
            model.head.proj.weight[token, position] = 1.0
    return str(model.save(Path(directory) / "model", tokenizer=tokenizer))
