"""`lmforge serve` through the official `openai` client against a real uvicorn on 127.0.0.1: every endpoint
gives what the pipelines give in-process (text, seeds, stop strings, logprobs = the model's log-softmax,
embeddings), streaming joined = not streamed, errors are the client's typed exceptions with OpenAI's
envelope, and concurrent streaming clients each get what they get alone."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import re
import threading

import numpy as np
import pytest
import torch

from serving import (
    CONTEXT,
    CORPUS,
    SIZES,
    assert_error,
    schema_statuses,
    served,
    tiny_models,
    wait_until,
)

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

import lmforge.pipelines as P  # noqa: E402
from lmforge.html import script_hash  # noqa: E402
from lmforge.model import build_model, preset  # noqa: E402
from lmforge.model.layers import init_weights  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py

PROMPTS = ["the cat", "def fib", "Paris is the capital", "a bird sang in the", "the dog sat on the log ."]
TIMEOUT = 60  # seconds: the most any one call may take


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def pipes(model_dirs):
    return {name: P.load(directory) for name, directory in model_dirs.items()}


@pytest.fixture(scope="module")
def server(model_dirs):
    with served(model_dirs) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=TIMEOUT)


def post(server, path: str, body, **kw) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=TIMEOUT, **kw)


# --- models, health, naming ------------------------------------------------------------------------------


def test_health_models_and_their_kinds(server, client, model_dirs):
    assert httpx.get(server.url + "/health", timeout=TIMEOUT).json()["status"] == "ok"
    kinds = {m.id: m.model_extra["lmforge"]["task"] for m in client.models.list().data}
    assert kinds == {
        "gpt": "generation",
        "bert": "embedding",
        "sentiment": "classification",
        "qa": "question-answering",
    }
    assert client.models.retrieve("gpt").id == "gpt"


def test_names_default_to_the_directory_or_its_parent_and_clash_is_a_startup_error(model_dirs, cli):
    from lmforge.serve import parse_specs

    gpt = model_dirs["gpt"]  # .../gpt/model
    assert [s.name for s in parse_specs([gpt, f"other={gpt}"])] == ["gpt", "other"]
    code, _, err = cli("serve", "--model", gpt, "--model", f"gpt={model_dirs['bert']}", "--port", "0")
    assert code == 2 and "two models are named 'gpt'" in err and "Traceback" not in err


# --- completions and chat: the pipeline's text ------------------------------------------------------------


def test_completions_equal_the_pipeline_greedy_seeded_n_and_stop(client, pipes):
    gpt = pipes["gpt"]
    for prompt in PROMPTS[:3]:
        answer = client.completions.create(model="gpt", prompt=prompt, max_tokens=12, temperature=0)
        expected = gpt(prompt, max_new_tokens=12, temperature=0)
        assert answer.choices[0].text == expected.text
        assert answer.choices[0].finish_reason == expected.finish_reason
        assert answer.usage.prompt_tokens == expected.prompt_tokens
        assert answer.usage.completion_tokens == expected.completion_tokens
        assert answer.system_fingerprint.startswith("fp_")
    # n > 1 with a seed: choice i samples as `generate --seed S+i` does
    answer = client.completions.create(model="gpt", prompt="the cat", max_tokens=10, n=3, seed=7)
    texts = [c.text for c in sorted(answer.choices, key=lambda c: c.index)]
    assert texts == [gpt("the cat", max_new_tokens=10, temperature=1.0, seed=7 + i).text for i in range(3)]
    assert len(set(texts)) > 1  # sampling: the choices differ
    # a list of prompts: the choices in prompt order
    answer = client.completions.create(model="gpt", prompt=PROMPTS[:2], max_tokens=6, temperature=0)
    assert [c.text for c in answer.choices] == [
        gpt(p, max_new_tokens=6, temperature=0).text for p in PROMPTS[:2]
    ]
    # stop: the text ends before the stop string; absent max_tokens is OpenAI's 16
    full = gpt("the cat", max_new_tokens=16, temperature=0).text
    stop = full.strip()[3:6]
    assert stop
    answer = client.completions.create(model="gpt", prompt="the cat", temperature=0, stop=[stop])
    assert answer.choices[0].text == full[: full.index(stop)]
    assert answer.choices[0].finish_reason == "stop"
    assert (
        client.completions.create(model="gpt", prompt="the cat", temperature=0).usage.completion_tokens <= 16
    )


def test_chat_uses_the_template_and_streams_role_content_finish_done(server, client, pipes):
    messages = [{"role": "user", "content": "Paris is"}]
    answer = client.chat.completions.create(model="gpt", messages=messages, max_tokens=12, temperature=0)
    expected = pipes["gpt"].chat(messages, max_new_tokens=12, temperature=0)
    assert answer.choices[0].message.content == expected.text
    assert answer.choices[0].message.role == "assistant"
    assert answer.usage.prompt_tokens == expected.prompt_tokens
    chunks = list(
        client.chat.completions.create(
            model="gpt",
            messages=messages,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected.text
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [expected.finish_reason]
    assert chunks[-1].usage.completion_tokens == expected.completion_tokens and not chunks[-1].choices
    with httpx.stream(
        "POST",
        server.url + "/v1/chat/completions",
        timeout=TIMEOUT,
        json={"model": "gpt", "messages": messages, "max_tokens": 3, "stream": True},
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"


def test_streamed_completions_join_to_the_unstreamed_text(client):
    for prompt, n in [("def fib", 1), ("the dog", 2)]:
        kwargs = dict(model="gpt", prompt=prompt, max_tokens=20, n=n, seed=3)
        whole = client.completions.create(**kwargs)
        joined = [""] * n
        for chunk in client.completions.create(**kwargs, stream=True):
            for choice in chunk.choices:
                joined[choice.index] += choice.text
        assert joined == [c.text for c in sorted(whole.choices, key=lambda c: c.index)]


def test_logprobs_are_the_models_log_softmax_and_echo_scores_the_prompt(client, pipes):
    gpt = pipes["gpt"]
    prompt = "the cat sat"
    answer = client.completions.create(model="gpt", prompt=prompt, max_tokens=5, temperature=0, logprobs=3)
    ids = gpt.encode([prompt])[0] + gpt(prompt, max_new_tokens=5, temperature=0).token_ids
    with torch.no_grad():
        reference = gpt.model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
    n = len(gpt.encode([prompt])[0])
    logprobs = answer.choices[0].logprobs
    expected = [float(reference[n - 1 + i, t]) for i, t in enumerate(ids[n:])]
    assert logprobs.token_logprobs == pytest.approx(expected, abs=1e-4)
    assert all(len(top) == 3 for top in logprobs.top_logprobs), logprobs.top_logprobs
    best = reference[n - 1].topk(3)
    assert sorted(logprobs.top_logprobs[0].values(), reverse=True) == pytest.approx(
        best.values.tolist(), abs=1e-4
    )
    # echo + max_tokens 0: the prompt's own log-probabilities, the first one null
    scored = client.completions.create(model="gpt", prompt=prompt, max_tokens=0, echo=True, logprobs=0)
    choice = scored.choices[0]
    assert choice.text == prompt and scored.usage.completion_tokens == 0
    assert choice.logprobs.token_logprobs[0] is None
    assert choice.logprobs.token_logprobs[1:] == pytest.approx(
        [float(reference[i - 1, ids[i]]) for i in range(1, n)], abs=1e-4
    )
    # chat: logprobs + top_logprobs
    chat = client.chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=3,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
    )
    content = chat.choices[0].logprobs.content
    assert len(content) == chat.usage.completion_tokens
    assert all(len(t.top_logprobs) == 2 and t.top_logprobs[0].logprob >= t.logprob - 1e-6 for t in content)


# --- the encoders -----------------------------------------------------------------------------------------


def test_embeddings_classify_and_answer_equal_the_pipelines(server, client, pipes):
    texts = ["the cat sat on the mat .", "a bird sang"]
    answer = client.embeddings.create(model="bert", input=texts, encoding_format="float")
    for item, result in zip(answer.data, pipes["bert"](texts), strict=True):
        np.testing.assert_allclose(item.embedding, result.vector, rtol=1e-5, atol=1e-6)
    raw = post(
        server, "/v1/embeddings", {"model": "bert", "input": texts[0], "encoding_format": "base64"}
    ).json()
    vector = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vector, pipes["bert"](texts[0]).vector, rtol=1e-5, atol=1e-6)
    assert raw["usage"]["prompt_tokens"] == pipes["bert"](texts[0]).prompt_tokens
    assert_error(
        post(server, "/v1/embeddings", {"model": "bert", "input": "x", "dimensions": 8}),
        400,
        "unsupported_parameter",
        "dimensions",
    )

    # token ids are taken as given: a text's own encoding (its [CLS] and [SEP] included) = the text's vector
    encoded = [pipes["bert"].tokenizer.encode(t).ids for t in texts]
    answer = client.embeddings.create(model="bert", input=encoded)
    for item, result in zip(answer.data, pipes["bert"](texts), strict=True):
        np.testing.assert_allclose(item.embedding, result.vector, rtol=1e-5, atol=1e-6)
    assert answer.usage.prompt_tokens == sum(map(len, encoded))
    bare = encoded[0][1:-1]  # no special tokens: not a text's encoding, embedded as it is all the same
    answer = client.embeddings.create(model="bert", input=bare)
    expected = pipes["bert"].embed_ids([bare])[0].vector
    np.testing.assert_allclose(answer.data[0].embedding, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected, pipes["bert"](texts[0]).vector, atol=1e-3)
    vocab = pipes["bert"].model.config.vocab_size
    for bad in ([[1, vocab]], [[]], [[1] * (CONTEXT + 1)], [-1]):
        assert_error(
            post(server, "/v1/embeddings", {"model": "bert", "input": bad}), 400, "invalid_input", "input"
        )

    got = post(server, "/v1/classify", {"model": "sentiment", "input": texts}).json()
    for item, result in zip(got["data"], pipes["sentiment"](texts), strict=True):
        assert item["label"] == result.label
        assert item["probabilities"] == pytest.approx(result.probabilities)
    assert got["usage"]["prompt_tokens"] == sum(r.prompt_tokens for r in pipes["sentiment"](texts))

    context = "Paris is the capital of France . Madrid is the capital of Spain ."
    got = post(
        server, "/v1/answer", {"model": "qa", "question": "capital of Spain ?", "context": context}
    ).json()
    expected = pipes["qa"]("capital of Spain ?", context)
    assert (got["data"][0]["answer"], got["data"][0]["start"], got["data"][0]["end"]) == (
        expected.answer,
        expected.start,
        expected.end,
    )
    assert got["data"][0]["score"] == pytest.approx(expected.score)


# --- errors ----------------------------------------------------------------------------------------------


def test_errors_are_typed_exceptions_and_envelopes(server, client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.completions.create(model="nope", prompt="x")
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="gpt", input="x")
    assert caught.value.code == "unsupported_model_task"
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="gpt", prompt="x", max_tokens=CONTEXT)
    assert caught.value.code == "context_length_exceeded" and caught.value.param == "max_tokens"
    assert_error(
        post(server, "/v1/completions", {"model": "gpt", "prompt": "x", "max_token": 3}),
        400,
        param="max_token",
    )
    assert_error(
        post(server, "/v1/completions", {"model": "gpt", "prompt": "x", "temperature": "hot"}),
        400,
        param="temperature",
    )
    assert_error(post(server, "/v1/completions", {"prompt": "x"}), 400, param="model")
    error = assert_error(post(server, "/v1/completions", {"model": "gpt", "prompt": {}}), 400, param="prompt")
    assert error["message"] == "prompt: expected one of str, list[str], list[int], list[list[int]]"
    assert_error(post(server, "/v1/classify", {"model": "gpt", "input": "x"}), 400, "unsupported_model_task")
    assert_error(
        post(server, "/v1/chat/completions", {"model": "gpt", "messages": []}), 400, param="messages"
    )
    for body in [b"{", b"[1, 2]", b"null", b"\xff\xfe", b'{"model": 3, "prompt": {}}', b""]:
        response = httpx.post(
            server.url + "/v1/completions",
            content=body,
            timeout=TIMEOUT,
            headers={"content-type": "application/json"},
        )
        assert_error(response, 400)
    assert_error(httpx.get(server.url + "/v1/nowhere", timeout=TIMEOUT), 404)
    too_big = {"model": "gpt", "prompt": "x" * (4 * 1024 * 1024 + 1)}
    assert_error(post(server, "/v1/completions", too_big), 413)


def test_key_host_cors_and_token_limit(model_dirs):
    settings = {"api_key": "s3cret", "cors_origins": ["http://localhost:3000"], "max_tokens_limit": 5}
    with served({"gpt": model_dirs["gpt"]}, **settings) as server:
        wrong = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0, timeout=TIMEOUT)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        assert_error(httpx.get(server.url + "/metrics", timeout=TIMEOUT), 401, "invalid_api_key")
        assert httpx.get(server.url + "/health", timeout=TIMEOUT).status_code == 200  # open
        assert httpx.get(server.url + "/", timeout=TIMEOUT).status_code == 200  # open
        right = openai.OpenAI(base_url=server.url + "/v1", api_key="s3cret", max_retries=0, timeout=TIMEOUT)
        assert [m.id for m in right.models.list().data] == ["gpt"]
        # --max-tokens-limit: a larger max_tokens is refused; chat's default stops at the limit
        with pytest.raises(openai.BadRequestError) as caught:
            right.completions.create(model="gpt", prompt="the cat", max_tokens=6)
        assert caught.value.param == "max_tokens"
        chat = right.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}])
        assert chat.usage.completion_tokens <= 5
        # DNS rebinding: a foreign Host is refused
        assert_error(
            httpx.get(server.url + "/health", headers={"Host": "evil.example"}, timeout=TIMEOUT),
            400,
            "invalid_host",
        )
        assert (
            httpx.get(server.url + "/health", headers={"Host": f"localhost:{server.port}"}).status_code == 200
        )
        # CORS only for the allowed origin
        allowed = httpx.get(server.url + "/health", headers={"Origin": "http://localhost:3000"})
        assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
        other = httpx.get(server.url + "/health", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


# --- concurrency ------------------------------------------------------------------------------------------


def test_concurrent_streaming_clients_each_get_what_they_get_alone(client, pipes):
    """32 clients at once (max_batch 16: half of them wait and join as others leave), prompts of different
    lengths, max_tokens 4..23, greedy and seeded sampling mixed: each streams what it gets alone."""
    gpt = pipes["gpt"]
    jobs = [
        (PROMPTS[i % len(PROMPTS)] + " the" * (i % 4), 4 + (i * 7) % 20, None if i % 2 else 100 + i)
        for i in range(32)
    ]

    def settings(seed):
        return {"temperature": 0.0} if seed is None else {"temperature": 1.0, "seed": seed}

    def ask(job):
        prompt, max_tokens, seed = job
        stream = client.completions.create(
            model="gpt", prompt=prompt, max_tokens=max_tokens, stream=True, **settings(seed)
        )
        return "".join(chunk.choices[0].text for chunk in stream if chunk.choices)

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        texts = list(pool.map(ask, jobs, timeout=TIMEOUT * 2))
    for (prompt, max_tokens, seed), text in zip(jobs, texts, strict=True):
        assert text == gpt(prompt, max_new_tokens=max_tokens, **settings(seed)).text, (prompt, seed)


def test_a_client_killed_mid_stream_frees_its_slot_and_a_full_queue_is_429(model_dirs):
    with served({"gpt": model_dirs["gpt"]}, max_batch=1, max_queue=1) as server:
        engine = server.registry.models["gpt"].engine
        body = {
            "model": "gpt",
            "prompt": "the cat",
            "max_tokens": CONTEXT - 4,
            "stream": True,
            "temperature": 1.0,
            "repetition_penalty": 1.0,
        }
        with httpx.stream("POST", server.url + "/v1/completions", json=body, timeout=TIMEOUT) as response:
            lines = response.iter_lines()  # kept: a dropped iterator, once collected, closes the connection
            next(lines)  # the first chunk: the request runs
            assert engine.stats().running == 1
        # the client went away: the slot frees at the next step, and the next request runs
        assert wait_until(lambda: engine.stats().running == 0), engine.stats()
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=TIMEOUT)
        assert (
            client.completions.create(model="gpt", prompt="the cat", max_tokens=2).usage.completion_tokens
            == 2
        )

        # one running (held on the engine thread by its chunk callback, so the test controls the timing), one
        # waiting: the third is refused with 429 and Retry-After; the other two finish, each once
        from lmforge.generate import GenerationConfig

        gate = threading.Event()
        held = engine.submit(
            [5, 6, 7], GenerationConfig(max_new_tokens=2), on_chunk=lambda _: gate.wait(TIMEOUT)
        )
        assert wait_until(lambda: engine.stats().running == 1)
        before = engine.stats().finished.get("length", 0)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(
                post, server, "/v1/completions", {"model": "gpt", "prompt": "a", "max_tokens": 5}
            )
            assert wait_until(lambda: engine.stats().queue_depth == 1)
            with pytest.raises(openai.RateLimitError) as caught:
                client.completions.create(model="gpt", prompt="the cat", max_tokens=2)
            assert caught.value.response.headers["retry-after"] == "1"
            gate.set()
            answer = waiting.result(TIMEOUT)
        assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] == 5
        assert held.result(TIMEOUT).completion_tokens == 2
        stats = engine.stats()
        assert stats.finished["length"] == before + 2 and stats.running == 0 and stats.queue_depth == 0

        # a client waiting for a whole (not streamed) answer goes away: its queued request is dropped
        gate.clear()
        held = engine.submit(
            [5, 6, 7], GenerationConfig(max_new_tokens=2), on_chunk=lambda _: gate.wait(TIMEOUT)
        )
        assert wait_until(lambda: engine.stats().running == 1)
        cancelled = engine.stats().finished.get("cancelled", 0)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.url + "/v1/completions", json={"model": "gpt", "prompt": "a"}, timeout=0.5)
        assert wait_until(lambda: engine.stats().finished.get("cancelled", 0) == cancelled + 1)
        assert engine.stats().queue_depth == 0
        gate.set()
        assert held.result(TIMEOUT).completion_tokens == 2


def test_metrics_count_requests_tokens_and_latencies(server, client):
    client.completions.create(model="gpt", prompt="the cat", max_tokens=3, temperature=0)
    text = httpx.get(server.url + "/metrics", timeout=TIMEOUT).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    assert samples['lmforge_requests_total{endpoint="/v1/completions",status="200"}'] >= 1
    assert samples['lmforge_completion_tokens_total{model="gpt"}'] >= 3
    assert samples['lmforge_time_to_first_token_seconds_count{model="gpt"}'] >= 1
    assert samples['lmforge_token_latency_seconds_count{model="gpt"}'] >= 1
    assert 'lmforge_queue_depth{model="gpt"}' in samples and 'lmforge_running_batch{model="gpt"}' in samples


def test_startup_prints_the_url_models_and_kinds(model_dirs):
    import subprocess
    import sys

    command = [sys.executable, "-m", "lmforge", "serve", "--model", model_dirs["gpt"], "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        model_line = process.stdout.readline()
        assert first.startswith("lmforge serve: http://127.0.0.1:"), first
        url = first.split()[2]
        assert model_line.split()[:2] == ["gpt", "generation"]
        assert wait_until(lambda: httpx.get(url + "/health").status_code == 200, 60)
        assert json.loads(httpx.get(url + "/v1/models").text)["data"][0]["lmforge"]["task"] == "generation"
    finally:
        process.terminate()
        process.wait(30)


def test_an_encoder_decoder_completes_its_source_as_the_translation_pipeline_does(tmp_path):
    from lmforge.generate import GenerationConfig
    from lmforge.tokenizers import BPETokenizer

    tokenizer = BPETokenizer.train(CORPUS * 3, vocab_size=300, special_tokens=["<pad>", "<s>", "</s>"])
    ids = {name: tokenizer.token_to_id(name) for name in ("<pad>", "<s>", "</s>")}
    torch.manual_seed(0)
    special = {"pad_token_id": ids["<pad>"], "bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"]}
    config = preset(
        "transformer-tiny", vocab_size=tokenizer.vocab_size, n_decoder_layers=2, **SIZES, **special
    )
    model = build_model(config.replace(decoder_start_token_id=ids["<pad>"]))
    init_weights(model, 2, std=0.3)
    directory = model.save(tmp_path / "mt" / "model", tokenizer=tokenizer)
    GenerationConfig(max_new_tokens=12, temperature=0.0).save(directory)
    translate = P.load(directory)
    with served({"mt": str(directory)}) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=TIMEOUT)
        sources = ["the cat sat", "Paris is the capital"]
        answer = client.completions.create(model="mt", prompt=sources, max_tokens=12, temperature=0)
        expected = translate(sources, max_new_tokens=12, temperature=0.0)
        assert [c.text for c in answer.choices] == [r.text for r in expected]
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="mt", messages=[{"role": "user", "content": "hi"}])
        assert caught.value.code == "unsupported_model_task"


def test_503_while_the_models_load(model_dirs):
    from lmforge.serve import BackgroundServer, Settings, build, parse_specs

    app, registry = build(parse_specs([model_dirs["gpt"]]), Settings())  # not loaded yet
    with BackgroundServer(app) as server:
        response = httpx.get(server.url + "/health", timeout=TIMEOUT)
        assert response.status_code == 503 and response.json() == {"status": "loading"}
        assert_error(httpx.get(server.url + "/v1/models", timeout=TIMEOUT), 503, "loading")
        registry.load(background=False)
        assert httpx.get(server.url + "/health", timeout=TIMEOUT).status_code == 200
    registry.close()


BAD_VALUES = [None, -1, 0, 10**30, 1.5, "", "x", [], [None], [[]], {}, {"a": 1}, True, "\x00", [1, "a"]]
BODIES = {
    "/v1/completions": {"model": "gpt", "prompt": "the cat", "max_tokens": 2},
    "/v1/chat/completions": {
        "model": "gpt",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2,
    },
    "/v1/embeddings": {"model": "bert", "input": "the cat"},
    "/v1/classify": {"model": "sentiment", "input": "the cat"},
    "/v1/answer": {"model": "qa", "question": "who ?", "context": "the cat sat"},
}
FIELDS = [
    "model",
    "prompt",
    "messages",
    "input",
    "question",
    "context",
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "seed",
    "stream",
    "stream_options",
    "logprobs",
    "top_logprobs",
    "echo",
    "top_k",
    "min_p",
    "repetition_penalty",
    "encoding_format",
    "dimensions",
    "presence_penalty",
    "logit_bias",
]


def test_no_malformed_body_gets_a_5xx(server):
    """Every field of every endpoint set to each kind of wrong value: a 2xx or a 4xx envelope, never 5xx.
    Bounded: 5 endpoints × 24 fields × 15 values, short max_tokens."""
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as http:
        for path, good in BODIES.items():
            for name in FIELDS:
                for value in BAD_VALUES:
                    body = {**good, name: value}
                    if name == "n" and isinstance(value, int) and value > 4:
                        continue  # a valid but long request, not a malformed one
                    response = http.post(path, json=body)
                    assert response.status_code < 500, (path, body, response.text)
                    if response.status_code >= 400:
                        assert_error(response, response.status_code)


def test_the_playground_is_one_static_page_that_inserts_output_as_text(server):
    """What can be checked without a browser: the page is served, loads nothing from elsewhere (no CDN), and
    never hands text to an HTML parser (model output goes through textContent / text nodes only)."""
    response = httpx.get(server.url + "/", timeout=TIMEOUT)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    # no inline script runs but the page's own (by its hash): an onerror= that got in could not run
    script_sources = re.search(r"script-src ([^;]*)", policy)[1].split()
    assert script_sources == [script_hash(re.search(r"<script>(.*)</script>", page, re.S)[1])]
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "<script src"):
        assert sink not in page, sink
    assert "http://" not in page and "https://" not in page
    assert "sessionStorage" in page and "createTextNode" in page


def test_echo_scoring_over_http_is_lmforge_perplexity(client, model_dirs, cli, tmp_path):
    """logprobs + echo + max_tokens 0 score a text, so an evaluation harness gets perplexity over HTTP."""
    import math

    text = "the cat sat on the mat . the dog sat on the log ."
    (tmp_path / "text.txt").write_text(text, encoding="utf-8")
    code, out, err = cli("perplexity", "--model", model_dirs["gpt"], tmp_path / "text.txt", "--json")
    assert code == 0, err
    expected = json.loads(out)
    scored = client.completions.create(model="gpt", prompt=text, max_tokens=0, echo=True, logprobs=0)
    values = scored.choices[0].logprobs.token_logprobs[1:]
    assert len(values) == expected["tokens"]
    assert math.exp(-sum(values) / len(values)) == pytest.approx(expected["perplexity"], rel=1e-4)


def test_an_engine_failure_is_a_500_envelope_or_an_error_event_and_the_server_carries_on(model_dirs):
    """A planted fault (as running out of memory would be): the model raises when it prefills token 13."""
    with served({"gpt": model_dirs["gpt"]}) as server:
        model = server.registry.models["gpt"].engine.model
        forward = model.forward

        def faulty(input_ids, *args, **kwargs):
            if input_ids.shape[1] > 1 and bool((input_ids == 13).any()):
                raise RuntimeError("planted fault")
            return forward(input_ids, *args, **kwargs)

        model.forward = faulty
        try:
            body = {"model": "gpt", "prompt": [13, 14, 15], "max_tokens": 3}
            error = assert_error(post(server, "/v1/completions", body), 500, "engine_error")
            assert "planted fault" in error["message"]
            with httpx.stream(
                "POST", server.url + "/v1/completions", json={**body, "stream": True}, timeout=TIMEOUT
            ) as response:
                events = [line for line in response.iter_lines() if line]
            assert response.status_code == 200
            assert json.loads(events[-1].removeprefix("data: "))["error"]["code"] == "engine_error"
            after = post(server, "/v1/completions", {**body, "prompt": [1, 2, 3]})
            assert after.status_code == 200 and after.json()["usage"]["completion_tokens"] == 3
        finally:
            del model.forward


def test_without_the_serve_extra_the_command_says_what_to_install(model_dirs):
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['fastapi'] = None\n"
        "from lmforge.cli import main\n"
        f"sys.exit(main(['serve', '--model', {model_dirs['gpt']!r}, '--port', '0']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "lmforge serve: error: this command needs the serve extra (fastapi is missing): pip install 'lmforge[serve]'"
    )


# --- schemathesis over the OpenAPI schema ----------------------------------------------------------------


def test_schemathesis_finds_no_5xx_on_any_operation(server):
    """Bodies, paths and parameters generated from the app's own OpenAPI schema by schemathesis — ones that
    fit it and ones that break it — against the real server: 2xx or a 4xx envelope, never a 5xx. Bounded:
    a few examples per operation and mode, derandomized (the same cases every run)."""
    seen = schema_statuses(server, {path: body["model"] for path, body in BODIES.items()})
    assert any(s < 300 for s in seen) and any(400 <= s < 500 for s in seen)
