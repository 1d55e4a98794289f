"""The continuous-batching engine: each request gets exactly what `generate` gives it alone, whatever else
runs, joins or leaves beside it; slots, queue, cancellation, stop strings, logprobs and metrics."""

from __future__ import annotations

import threading
import time
import warnings

import pytest
import torch

from lmforge.engine import ContextTooLong, Engine, EngineError, QueueFull
from lmforge.generate import GenerationConfig, GenerationError, decoder_start_id, generate
from lmforge.model import build_model, preset
from lmforge.model.layers import init_weights
from lmforge.tokenizers import BPETokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py

CORPUS = [
    "déjà vu — naïve café, 你好世界, smile 🙂 " * 3,
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "the quick brown fox jumps over the lazy dog; " * 2,
]
CONTEXT = 96
TIE = 1e-4  # two logits closer than this are a float tie: batched and alone may pick either


@pytest.fixture(scope="module")
def tokenizer():
    return BPETokenizer.train(CORPUS, vocab_size=300)


def tiny_model(name: str, vocab_size: int, seed: int = 0):
    """A 2-layer model with wide random weights (std 0.3), whose greedy continuations vary (at GPT-2's
    0.02 a random model repeats one token, which would make every comparison trivially true)."""
    torch.manual_seed(seed)
    extra = {"n_kv_heads": 2} if name == "llama-small" else {}
    if name == "transformer-tiny":
        extra = {"n_decoder_layers": 2, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
    sizes = dict(vocab_size=vocab_size, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_positions=CONTEXT)
    model = build_model(preset(name, **sizes, **extra)).eval()
    init_weights(model, 2, std=0.3)
    return model


@pytest.fixture(scope="module", params=["gpt-tiny", "llama-small"])
def decoder(request, tokenizer):
    return tiny_model(request.param, tokenizer.vocab_size)


def alone(model, prompt: list[int], config: GenerationConfig, tokenizer=None) -> list[int]:
    """What `lmforge.generate` gives the prompt by itself."""
    output = generate(model, torch.tensor([prompt]), config, tokenizer=tokenizer)
    return output.new_tokens[0].tolist()


def divergence_is_a_tie(model, prompt: list[int], ours: list[int], theirs: list[int]) -> bool:
    """Where the engine's greedy tokens part from generate's, were the two candidates' logits a float tie?"""
    step = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b)
    with torch.no_grad():
        if model.config.architecture == "encoder-decoder":
            start = [decoder_start_id(model)]
            logits = model(torch.tensor([prompt]), decoder_input_ids=torch.tensor([start + theirs[:step]]))
        else:
            logits = model(torch.tensor([prompt + theirs[:step]]))
    logits = logits.logits[0, -1]
    return abs(float(logits[ours[step]] - logits[theirs[step]])) < TIE


def assert_same_as_alone(model, cases, completions, tokenizer=None) -> None:
    ties = 0
    for (prompt, config), completion in zip(cases, completions, strict=True):
        expected = alone(model, prompt, config, tokenizer)
        if completion.token_ids != expected:
            assert not config.do_sample and divergence_is_a_tie(
                model, prompt, completion.token_ids, expected
            ), f"prompt {prompt}: engine {completion.token_ids} != generate {expected}"
            ties += 1
    if ties:  # reported, as benchmarks/generate.py reports them
        warnings.warn(
            f"{ties} of {len(cases)} greedy requests parted from generate at a float tie", stacklevel=2
        )


def varied_cases(model, count: int, seed: int = 1) -> list[tuple[list[int], GenerationConfig]]:
    """Prompts of 1..25 tokens, 1..40 new tokens, greedy and seeded sampling with every processor, EOS."""
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(seed)
    settings = [
        dict(temperature=0),
        dict(temperature=0, repetition_penalty=1.3),
        dict(temperature=0.8, top_k=20, seed=5),
        dict(temperature=1.2, top_p=0.9, seed=6),
        dict(temperature=1.0, min_p=0.05, seed=7),
        dict(temperature=0, no_repeat_ngram_size=2),
        dict(temperature=0.7, repetition_penalty=1.2, top_k=50, top_p=0.95, seed=8),
        dict(temperature=0),  # with an EOS that its free run reaches part-way (below)
    ]
    cases = []
    for i in range(count):
        length = int(torch.randint(1, 26, (1,), generator=generator))
        prompt = torch.randint(0, vocab, (length,), generator=generator).tolist()
        new = int(torch.randint(1, 41, (1,), generator=generator))
        config = GenerationConfig(max_new_tokens=new, **settings[i % len(settings)])
        if i % len(settings) == len(settings) - 1:
            free = alone(model, prompt, config.replace(max_new_tokens=40))
            config = config.replace(max_new_tokens=40, eos_token_id=[free[len(free) // 2]])
        cases.append((prompt, config))
    return cases


def test_concurrent_requests_get_exactly_what_generate_gives_each_alone(decoder):
    """12 requests of different prompt lengths, lengths and settings arrive in three waves while earlier
    ones run, through 4 slots: every one gets generate's tokens for it alone."""
    cases = varied_cases(decoder, 12)
    with Engine(decoder, max_batch=4, max_queue=16) as engine:
        requests = [engine.submit(p, c) for p, c in cases[:4]]
        next(iter(requests[0]))  # the first wave is decoding ...
        requests += [engine.submit(p, c) for p, c in cases[4:8]]  # ... when the second arrives
        requests[5].result()
        requests += [engine.submit(p, c) for p, c in cases[8:]]
        completions = [r.result(timeout=60) for r in requests]
        stats = engine.stats()
    assert_same_as_alone(decoder, cases, completions)
    assert stats.completion_tokens == sum(c.completion_tokens for c in completions)
    assert stats.steps < stats.completion_tokens  # sequences shared steps
    assert stats.prompt_tokens == sum(len(p) for p, _ in cases)
    assert any(c.finish_reason == "stop" for c in completions)  # some met an EOS ...
    assert any(c.finish_reason == "length" for c in completions)  # ... others ran to their length


def test_requests_from_many_threads(decoder):
    cases = varied_cases(decoder, 16, seed=2)
    completions = [None] * len(cases)
    with Engine(decoder, max_batch=5, max_queue=16) as engine:

        def client(i: int) -> None:
            time.sleep(0.002 * i)
            completions[i] = engine.submit(*cases[i]).result(timeout=60)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(cases))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert_same_as_alone(decoder, cases, completions)


def test_seeded_sampling_does_not_depend_on_what_else_runs(decoder):
    prompt = [5, 17, 42]
    config = GenerationConfig(max_new_tokens=30, temperature=1.0, top_p=0.95, seed=1234)
    with Engine(decoder, max_batch=6) as engine:
        by_itself = engine.generate(prompt, config).token_ids
        others = [engine.submit(p, c) for p, c in varied_cases(decoder, 5, seed=3)]
        beside_others = engine.generate(prompt, config).token_ids
        choices = [r.result() for r in engine.submit_choices(prompt, config, n=3)]
        for other in others:
            other.result()
    assert by_itself == beside_others == alone(decoder, prompt, config)
    for i, choice in enumerate(choices):  # choice i: seed S + i
        assert choice.token_ids == alone(decoder, prompt, config.replace(seed=1234 + i))
    assert len({tuple(c.token_ids) for c in choices}) == 3


def test_encoder_decoder_requests_get_what_generate_gives_each_alone():
    model = tiny_model("transformer-tiny", 97)
    cases = varied_cases(model, 8, seed=4)
    with Engine(model, max_batch=3) as engine:
        requests = [engine.submit(p, c) for p, c in cases]
        completions = [r.result(timeout=60) for r in requests]
    assert_same_as_alone(model, cases, completions)


def test_a_short_request_finishes_before_a_long_one_started_earlier(decoder):
    finished_order = []
    with Engine(decoder, max_batch=2) as engine:
        long = engine.submit([1, 2, 3], GenerationConfig(max_new_tokens=80, temperature=0, eos_token_id=[]))
        first = next(iter(long))  # the long one is running ...
        short = engine.submit([4, 5], GenerationConfig(max_new_tokens=3, temperature=0, eos_token_id=[]))
        short_completion = short.result(timeout=30)
        finished_order.append("short" if not long.done else "long")
        long_completion = long.result(timeout=30)
    assert first.token_ids and finished_order == ["short"]
    assert short_completion.completion_tokens == 3 and long_completion.completion_tokens == 80


def test_cancelling_frees_the_slot_for_the_next_request(decoder):
    config = GenerationConfig(max_new_tokens=80, temperature=0, eos_token_id=[])
    with Engine(decoder, max_batch=1, max_queue=4) as engine:
        running = engine.submit([1, 2, 3], config)
        chunks = iter(running)
        next(chunks)  # it runs ...
        waiting = engine.submit([4, 5, 6], config.replace(max_new_tokens=5))  # ... and these wait
        dropped = engine.submit([7], config)
        assert engine.stats().queue_depth == 2
        dropped.cancel()  # a waiting request leaves the queue at once
        assert dropped.result(timeout=5).finish_reason == "cancelled"
        assert engine.stats().queue_depth == 1
        running.cancel()  # the client went away mid-stream
        assert [c.finish_reason for c in chunks][-1] == "cancelled"
        cancelled = running.result(timeout=30)
        assert cancelled.finish_reason == "cancelled" and cancelled.completion_tokens < 80
        assert waiting.result(timeout=30).token_ids == alone(
            decoder, [4, 5, 6], config.replace(max_new_tokens=5)
        )
        stats = engine.stats()
    assert stats.finished == {"cancelled": 2, "length": 1} and stats.running == 0


def test_a_full_queue_raises_and_loses_nothing(decoder):
    config = GenerationConfig(max_new_tokens=60, temperature=0, eos_token_id=[])
    with Engine(decoder, max_batch=1, max_queue=2) as engine:
        accepted = [engine.submit([i + 1], config) for i in range(3)]  # one runs, two wait
        with pytest.raises(QueueFull, match="queue is full"):
            engine.submit([9], config)
        with pytest.raises(QueueFull):  # n choices are queued together or not at all
            engine.submit_choices([9], config, n=2)
        completions = [r.result(timeout=60) for r in accepted]
    assert [c.completion_tokens for c in completions] == [60, 60, 60]


def test_stop_strings_end_the_text_before_them_with_generates_tokens(tokenizer):
    model = tiny_model("gpt-tiny", tokenizer.vocab_size)
    prompt = tokenizer.encode("the quick ").ids
    free = GenerationConfig(max_new_tokens=40, temperature=0, eos_token_id=[])
    text = tokenizer.decode(alone(model, prompt, free))
    stop = text[12:15]  # a string the free run produces part-way
    assert stop and "\ufffd" not in stop
    config = free.replace(stop_strings=[stop, "never produced"])
    with Engine(model, tokenizer, max_batch=2) as engine:
        other = engine.submit(tokenizer.encode("café").ids, free)
        request = engine.submit(prompt, config)
        pieces = [chunk.text for chunk in request]
        completion = request.result()
        other.result()
    expected = alone(model, prompt, config, tokenizer)
    assert completion.token_ids == expected and len(expected) < 40
    assert completion.finish_reason == "stop"
    assert completion.text == text[: text.index(stop)]  # OpenAI's stop: the text ends before it
    assert "".join(pieces) == completion.text  # and the stream never showed any of it


def test_streamed_text_is_the_decoded_tokens_even_mid_character(tokenizer):
    model = tiny_model("llama-small", tokenizer.vocab_size, seed=3)
    config = GenerationConfig(max_new_tokens=40, temperature=1.0, seed=0)
    with Engine(model, tokenizer) as engine:
        requests = [engine.submit(tokenizer.encode(t).ids, config) for t in ("你好", "🙂 ", "déjà")]
        streams = [list(r) for r in requests]
    for request, chunks in zip(requests, streams, strict=True):
        completion = request.result()
        assert [t for c in chunks for t in c.token_ids] == completion.token_ids
        assert "".join(c.text for c in chunks) == completion.text == tokenizer.decode(completion.token_ids)
        assert [c.finish_reason for c in chunks][-1] == "length"


def test_logprobs_are_the_models_log_softmax(decoder):
    prompt = [3, 1, 4, 1, 5, 9, 2, 6]
    config = GenerationConfig(max_new_tokens=6, temperature=0.9, seed=3)
    with Engine(decoder) as engine:
        completion = engine.generate(prompt, config, logprobs=3)
        scored = engine.generate(prompt, config.replace(max_new_tokens=0), prompt_logprobs=True, logprobs=2)
    with torch.no_grad():
        full = decoder(torch.tensor([prompt + completion.token_ids])).logits[0].float().log_softmax(-1)
    for step, entry in enumerate(completion.logprobs):
        row = full[len(prompt) - 1 + step]
        assert entry.token_id == completion.token_ids[step]
        assert entry.logprob == pytest.approx(float(row[entry.token_id]), abs=1e-4)
        best = row.topk(3)
        assert [t for t, _ in entry.top] == best.indices.tolist()
        assert [v for _, v in entry.top] == pytest.approx(best.values.tolist(), abs=1e-4)
    # max_new_tokens 0 + prompt_logprobs scores a text (what perplexity over HTTP needs)
    assert scored.token_ids == [] and scored.finish_reason == "length"
    assert scored.prompt_logprobs[0] is None
    for i, entry in enumerate(scored.prompt_logprobs[1:], start=1):
        assert entry.token_id == prompt[i]
        assert entry.logprob == pytest.approx(float(full[i - 1, prompt[i]]), abs=1e-4)
        assert len(entry.top) == 2


def test_metrics_hooks_see_every_token(decoder):
    samples = []
    with Engine(
        decoder, max_batch=2, on_sample=lambda name, seconds: samples.append((name, seconds))
    ) as engine:
        requests = [
            engine.submit([1 + i], GenerationConfig(max_new_tokens=5, temperature=0)) for i in range(3)
        ]
        completions = [r.result() for r in requests]
        stats = engine.stats()
    names = [name for name, _ in samples]
    assert names.count("time_to_first_token") == 3 and names.count("queue_time") == 3
    assert names.count("token_latency") == sum(c.completion_tokens - 1 for c in completions)
    assert all(seconds >= 0 for _, seconds in samples)
    assert all(c.time_to_first_token is not None for c in completions)
    assert stats.max_batch == 2 and stats.queue_depth == 0 and stats.running == 0


def test_what_the_engine_refuses(decoder, tokenizer):
    with Engine(decoder, max_batch=1) as engine:
        with pytest.raises(
            ContextTooLong,
            match=rf"\(10 tokens\) \+ max_new_tokens \(87\) = 97 exceed the context of {CONTEXT}",
        ):
            engine.submit([1] * 10, GenerationConfig(max_new_tokens=CONTEXT - 9))
        engine.submit([1] * 10, GenerationConfig(max_new_tokens=CONTEXT - 10)).cancel()  # just fits
        with pytest.raises(EngineError, match="beam search"):
            engine.submit([1], GenerationConfig(num_beams=2))
        with pytest.raises(EngineError, match="give the engine a tokenizer"):
            engine.submit([1], GenerationConfig(stop_strings=["x"]))
        with pytest.raises(GenerationError, match="empty"):  # generate's own checks of a prompt
            engine.submit([], GenerationConfig())
        with pytest.raises(GenerationError, match="vocabulary"):
            engine.submit([decoder.config.vocab_size], GenerationConfig())
    with pytest.raises(EngineError, match="closed"):
        engine.submit([1], GenerationConfig())
    encoder = build_model(preset("bert-tiny", vocab_size=50, n_layers=1))
    with pytest.raises(EngineError, match="needs a decoder or encoder-decoder with an LM head"):
        Engine(encoder)


def test_closing_fails_what_is_still_running(decoder):
    engine = Engine(decoder, max_batch=1)
    config = GenerationConfig(max_new_tokens=80, temperature=0, eos_token_id=[])
    running, waiting = engine.submit([1], config), engine.submit([2], config)
    next(iter(running))
    engine.close()
    for request in (running, waiting):
        with pytest.raises(EngineError, match="closed"):
            request.result(timeout=5)


def test_a_failing_forward_fails_its_requests_and_the_engine_carries_on(decoder):
    """A planted fault: the model raises when it prefills a prompt holding token 13 (as running out of
    memory would)."""
    forward = decoder.forward

    def faulty(input_ids, *args, **kwargs):
        if input_ids.shape[1] > 1 and bool((input_ids == 13).any()):
            raise RuntimeError("planted fault")
        return forward(input_ids, *args, **kwargs)

    config = GenerationConfig(max_new_tokens=4, temperature=0, eos_token_id=[])
    decoder.forward = faulty
    try:
        with Engine(decoder, max_batch=2) as engine:
            with pytest.raises(EngineError, match="generation failed: RuntimeError: planted fault"):
                engine.generate([13, 14], config)
            after = engine.generate([1, 2], config)
            stats = engine.stats()
    finally:
        del decoder.forward
    assert after.token_ids == alone(decoder, [1, 2], config)
    assert stats.finished == {"error": 1, "length": 1} and stats.running == 0
