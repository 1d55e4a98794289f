"""Continuous batching: one thread owns a model and decodes every running request together, step by step.

`lmforge.generate` decodes a batch that starts and ends together; a server receives requests one by one, of
every length. Here requests wait in a bounded queue, and between two decoding steps the engine admits
waiting requests into the running batch (their prompts are prefilled, then they decode with the others) and
retires the finished ones — iteration-level scheduling (Yu et al. 2022, "Orca"; vLLM; llama.cpp's slots), so
a short request never waits for a long one to end.

- `Engine(model, tokenizer, max_batch=16, max_queue=64)` — the thread, the queue, and a `SlotKVCache` with one
  slot per running sequence, reserved up front and written in place; running sequences keep slots
  0..n-1 (a finished one's slot is filled by moving the last one down), so a step reads one slice.
- `Engine.submit(prompt_ids, config)` → `Request`: iterate it for `Chunk`s (token ids, text, logprobs) as
  they come, from any thread (or pass `on_chunk`); `.result()` waits for the `Completion`; `.cancel()` frees
  its slot at the next step. A full queue raises `QueueFull`; a prompt + `max_new_tokens` beyond the
  context raises `ContextTooLong` (never truncated).
- A request's tokens are the ones `generate` gives it alone: the same logits processors and the same
  per-step choice (`process_logits`, `choose_next`), EOS and stop strings; a seeded request samples from its
  own `torch.Generator`, so what else runs cannot change its draws (`submit_choices`: choice i uses seed
  S + i). Only float noise differs (a batched matrix product may sum in another order), which can flip an
  argmax between two logits equal to ~1e-6.
- `Engine.stats()` (queue depth, running batch, counters) and `on_sample(name, seconds)` (time to first
  token, per-token latency, queue time) are what a server exports as metrics.

    >>> from lmforge.model import build_model, preset
    >>> model = build_model(preset("gpt-tiny", vocab_size=64, n_layers=1, max_positions=32))
    >>> with Engine(model, max_batch=2) as engine:
    ...     request = engine.submit([1, 2, 3], GenerationConfig(max_new_tokens=4, temperature=0))
    ...     completion = request.result()
    >>> completion.finish_reason, completion.prompt_tokens, completion.completion_tokens
    ('length', 3, 4)
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from lmforge.errors import LmforgeError
from lmforge.generate import (
    GenerationConfig,
    GenerationError,
    IncrementalDecoder,
    check_input_ids,
    choose_next,
    decoder_start_id,
    is_encoder_decoder,
    process_logits,
    resolve_special_ids,
    sampling_generator,
    stop_string_hit,
)


class EngineError(LmforgeError):
    """A request the engine cannot serve, or an engine that stopped."""


class QueueFull(EngineError):
    """Every slot is busy and `max_queue` requests already wait (a server answers 429)."""


class ContextTooLong(EngineError, GenerationError):
    """The prompt and `max_new_tokens` do not fit in the model's context (a server answers 400)."""


@dataclass
class TokenLogprob:
    token_id: int
    logprob: float  # log-softmax of the model's logits (before temperature and the other processors)
    top: list[tuple[int, float]]  # the most likely tokens (id, logprob), best first; as many as asked


@dataclass
class Chunk:
    """What one decoding step adds to a request; the last chunk has a `finish_reason`."""

    token_ids: list[int]
    text: str  # new text; "" while it may still turn out to be part of a stop string
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None  # "stop" (EOS or a stop string), "length", "cancelled"


@dataclass
class Completion:
    """A finished request. `token_ids` are `generate`'s (up to and including EOS or the token completing a
    stop string); `text` ends before the stop string, as OpenAI's API returns it."""

    prompt_ids: list[int]
    token_ids: list[int]
    text: str
    finish_reason: str
    logprobs: list[TokenLogprob] | None = None
    prompt_logprobs: list[TokenLogprob | None] | None = None  # None for the first prompt token
    time_to_first_token: float | None = None  # seconds from submit to the first token

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_ids)

    @property
    def completion_tokens(self) -> int:
        return len(self.token_ids)


@dataclass
class EngineStats:
    queue_depth: int  # requests waiting for a slot
    running: int  # sequences in the running batch
    max_batch: int
    max_queue: int
    steps: int = 0  # decoding steps run (prefills not counted)
    prompt_tokens: int = 0  # prefilled
    completion_tokens: int = 0  # generated
    finished: dict[str, int] = field(default_factory=dict)  # requests by finish reason (and "error")


_ids = itertools.count()


class Request:
    """One submitted sequence: iterate it for its `Chunk`s, or wait for `result()`; both from any thread."""

    def __init__(self, prompt_ids: list[int], config: GenerationConfig, logprobs, prompt_logprobs, on_chunk):
        self.id = next(_ids)
        self.prompt_ids = prompt_ids
        self.config = config
        self.logprobs = logprobs  # None: no logprobs; k: the chosen token's and the k most likely
        self.prompt_logprobs = prompt_logprobs
        self.on_chunk = on_chunk
        self.submitted = time.perf_counter()
        self.cancelled = False
        self._engine: Engine | None = None  # set when queued: a cancelled waiting request leaves the queue
        self._chunks: queue.SimpleQueue = queue.SimpleQueue()
        self._done = threading.Event()
        self._completion: Completion | None = None
        self._error: BaseException | None = None

    def cancel(self) -> None:
        """Stop this request (a client that went away): its slot is freed before the next step."""
        self.cancelled = True
        if self._engine is not None:
            self._engine._drop_waiting(self)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def __iter__(self) -> Iterator[Chunk]:
        while True:
            chunk = self._chunks.get()
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk
            if chunk.finish_reason is not None:
                return

    def result(self, timeout: float | None = None) -> Completion:
        """The completion, once finished (raises the engine's error if it failed)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"request {self.id} did not finish within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._completion

    # -- the engine's side --
    def _push(self, chunk: Chunk) -> None:
        self._chunks.put(chunk)
        if self.on_chunk is not None:
            try:
                self.on_chunk(chunk)
            except Exception:  # a failing callback ends its own request, never the engine
                self.cancelled = True

    def _finish(self, completion: Completion, last: Chunk) -> None:
        self._completion = completion
        self._push(last)
        self._done.set()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._chunks.put(error)
        self._done.set()


class VisibleText:
    """The text a client is shown: decoded token by token, cut before the first stop string, holding back a
    tail that could be the start of one (it is shown once the next tokens rule that out).

        >>> class Chars:  # a tokenizer whose ids are character codes
        ...     def decode(self, ids, skip_special_tokens=True):
        ...         return "".join(map(chr, ids))
        >>> text = VisibleText(Chars(), ["END"])
        >>> [text.push(ord(c), final=False) for c in "hi E"], text.push(ord("x"), final=False)
        (['h', 'i', ' ', ''], 'Ex')
        >>> [text.push(ord(c), final=c == "D") for c in "END"], text.visible
        (['', '', ''], 'hi Ex')
    """

    def __init__(self, tokenizer, stops: Sequence[str]):
        self.decoder = IncrementalDecoder(tokenizer)
        self.stops = [s for s in stops if s]
        self.shown = 0  # characters of the decoded text already returned
        self.cut: int | None = None  # where the first stop string starts, once it appeared

    @property
    def visible(self) -> str:
        return self.decoder.emitted[: self.cut]

    def push(self, token_id: int, final: bool) -> str:
        self.decoder.push([token_id])
        if final:
            self.decoder.flush()
        text = self.decoder.emitted
        if self.cut is None:
            found = [i for i in (text.find(s) for s in self.stops) if i >= 0]
            self.cut = min(found) if found else None
        end = self.cut if self.cut is not None else len(text) - (0 if final else self._held_back(text))
        piece = text[self.shown : end] if end > self.shown else ""
        self.shown = max(self.shown, end)
        return piece

    def _held_back(self, text: str) -> int:
        """Characters at the end of `text` that begin some stop string."""
        return max(
            (k for s in self.stops for k in range(1, len(s)) if text.endswith(s[:k])),
            default=0,
        )


class _Sequence:
    """A running request: its slot, the tokens so far, its sampler and its text."""

    def __init__(self, request: Request, slot: int, history: list[int], eos: list[int], generator, text):
        self.request = request
        self.config = request.config
        self.slot = slot
        self.history = history  # what the logits processors see: prompt (or start token) + generated
        self.generated: list[int] = []
        self.eos = set(eos)
        self.generator = generator
        self.text: VisibleText | None = text
        self.logprobs: list[TokenLogprob] | None = [] if request.logprobs is not None else None
        self.prompt_logprobs: list[TokenLogprob | None] | None = None
        self.last_time = request.submitted
        self.first_token_time: float | None = None
        self.finish_reason: str | None = None

    @property
    def plain_greedy(self) -> bool:  # the argmax of the raw logits: the whole batch's in one call
        config = self.config
        return not config.do_sample and config.repetition_penalty == 1.0 and config.no_repeat_ngram_size == 0


class Engine:
    """One model served to many threads: a bounded queue, a running batch of up to `max_batch` sequences,
    and the thread that steps them (see the module docstring).

    model: an lmforge decoder (GPT-2-like, Llama-like) or encoder-decoder (its prompt is the source text's
    ids); tokenizer: needed for text pieces and stop strings (token ids only without one); context: the
    positions of each slot (default: the model's max_positions); prefill_tokens: the most padded prompt
    tokens one prefill forward takes (more admitted prompts are prefilled in several forwards);
    on_sample(name, seconds): called from the engine thread for "time_to_first_token", "token_latency"
    (between two tokens of a request) and "queue_time" (submit to admission).
    """

    def __init__(
        self,
        model,
        tokenizer=None,
        *,
        max_batch: int = 16,
        max_queue: int = 64,
        context: int | None = None,
        prefill_tokens: int = 4096,
        on_sample: Callable[[str, float], None] | None = None,
        name: str = "lmforge-engine",
    ):
        if max_batch < 1 or max_queue < 0:
            raise EngineError(f"max_batch must be >= 1 and max_queue >= 0 (got {max_batch}, {max_queue})")
        config = model.config
        if config.architecture == "encoder" or config.head != "lm":
            raise EngineError(
                f"the engine generates text: it needs a decoder or encoder-decoder with an LM head, not a "
                f"{config.architecture} with head {config.head!r}"
            )
        self.model = model.eval()  # the engine owns the weights from now on
        self.tokenizer = tokenizer
        self.encoder_decoder = is_encoder_decoder(model)
        self.context = min(context or config.max_positions, config.max_positions)
        self.max_batch, self.max_queue, self.prefill_tokens = max_batch, max_queue, prefill_tokens
        self.on_sample = on_sample
        self.device = next(model.parameters()).device
        self.cache = model.new_slot_cache(max_batch, self.context)
        self._waiting: deque[Request] = deque()
        self._running: list[_Sequence] = []  # sequence i is in slot i
        self._taken = 0  # slots running or being admitted (read by submitting threads, under the lock)
        self._condition = threading.Condition()
        self._closed = False
        self._stats = EngineStats(0, 0, max_batch, max_queue)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # -- the callers' side ------------------------------------------------------------------------------

    def submit(
        self,
        prompt_ids: Sequence[int],
        config: GenerationConfig | None = None,
        *,
        logprobs: int | None = None,
        prompt_logprobs: bool = False,
        on_chunk: Callable[[Chunk], None] | None = None,
    ) -> Request:
        """Queue one sequence; returns at once. logprobs: k ≥ 0 gives each new token's logprob and the k
        most likely; prompt_logprobs: each prompt token's logprob given the ones before (decoder-only; with
        max_new_tokens=0 this scores a text). on_chunk: called from the engine thread with every chunk
        (keep it short: it runs between two decoding steps)."""
        return self._enqueue([self._request(prompt_ids, config, logprobs, prompt_logprobs, on_chunk)])[0]

    def submit_choices(
        self, prompt_ids: Sequence[int], config: GenerationConfig | None = None, n: int = 1, **kw
    ):
        """n sequences for one prompt (OpenAI's `n`), queued together or not at all; with a seed S, choice i
        samples with seed S + i, so each equals `generate --seed S+i` alone."""
        config = config or GenerationConfig()
        seeds = [None if config.seed is None else config.seed + i for i in range(n)]
        requests = [self._request(prompt_ids, config.replace(seed=seed), **kw) for seed in seeds]
        return self._enqueue(requests)

    def generate(self, prompt_ids: Sequence[int], config: GenerationConfig | None = None, **kw) -> Completion:
        """Submit and wait: the completion of one prompt."""
        return self.submit(prompt_ids, config, **kw).result()

    def stats(self) -> EngineStats:
        with self._condition:
            snapshot = EngineStats(**{**vars(self._stats), "finished": dict(self._stats.finished)})
            snapshot.queue_depth, snapshot.running = len(self._waiting), len(self._running)
        return snapshot

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop the thread; requests still waiting or running fail with an EngineError."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._thread.join(timeout)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, prompt_ids, config, logprobs=None, prompt_logprobs=False, on_chunk=None) -> Request:
        if self._closed:
            raise EngineError("the engine is closed")
        config = config or GenerationConfig()
        prompt = [int(i) for i in prompt_ids]
        check_input_ids(self.model, torch.tensor([prompt], dtype=torch.long).reshape(1, len(prompt)))
        if config.num_beams > 1:
            raise EngineError(
                "the engine decodes one sequence per request: beam search (num_beams > 1) is generate's"
            )
        if config.stop_strings and self.tokenizer is None:
            raise EngineError("stop strings need text: give the engine a tokenizer")
        vocab = self.model.config.vocab_size
        if logprobs is not None and not 0 <= logprobs <= vocab:
            raise EngineError(f"logprobs must be between 0 and the vocabulary size {vocab}, got {logprobs}")
        if prompt_logprobs and self.encoder_decoder:
            raise EngineError(
                "prompt logprobs score a decoder's prompt; an encoder-decoder's prompt is its source"
            )
        new = config.max_new_tokens
        if self.encoder_decoder and len(prompt) > self.context:
            raise ContextTooLong(
                f"the source has {len(prompt)} tokens, more than the context of {self.context} positions"
            )
        if self.encoder_decoder and 1 + new > self.context:
            raise ContextTooLong(
                f"the start token + max_new_tokens ({new}) = {1 + new} exceed the context of {self.context} "
                "positions; lower max_new_tokens"
            )
        if not self.encoder_decoder and len(prompt) + new > self.context:
            raise ContextTooLong(
                f"the prompt ({len(prompt)} tokens) + max_new_tokens ({new}) = {len(prompt) + new} exceed the "
                f"context of {self.context} positions; shorten the prompt or lower max_new_tokens"
            )
        return Request(prompt, config, logprobs, prompt_logprobs, on_chunk)

    def _enqueue(self, requests: list[Request]) -> list[Request]:
        with self._condition:
            if self._closed:
                raise EngineError("the engine is closed")
            free_slots = self.max_batch - self._taken
            if len(self._waiting) + len(requests) > self.max_queue + free_slots:
                raise QueueFull(
                    f"the queue is full ({len(self._waiting)} requests wait, at most {self.max_queue}); "
                    "retry later"
                )
            for request in requests:
                request._engine = self
            self._waiting.extend(requests)
            self._condition.notify_all()
        return requests

    def _drop_waiting(self, request: Request) -> None:
        with self._condition:
            if request not in self._waiting:
                return  # running (its slot is freed at the next step) or finished
            self._waiting.remove(request)
        request._finish(self._completion_of(request), Chunk([], "", finish_reason="cancelled"))
        self._count("cancelled")

    # -- the engine thread ------------------------------------------------------------------------------

    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                with self._condition:
                    while not (self._closed or self._waiting or self._running):
                        self._condition.wait()
                    if self._closed:
                        break
                    admitted = []
                    while self._waiting and self._taken < self.max_batch:
                        admitted.append(self._waiting.popleft())
                        self._taken += 1
                try:
                    self._retire_cancelled()
                    if admitted:
                        self._admit(admitted)
                    if self._running:
                        self._step()
                except Exception as exc:  # a failed forward fails the requests it carried, not the engine
                    error = EngineError(f"generation failed: {type(exc).__name__}: {exc}")
                    error.__cause__ = exc
                    self._fail_all(
                        [s.request for s in self._running] + [r for r in admitted if not r.done], error
                    )
        with self._condition:
            waiting, self._waiting = list(self._waiting), deque()
        self._fail_all([s.request for s in self._running] + waiting, EngineError("the engine was closed"))

    def _fail_all(self, requests: list[Request], error: EngineError) -> None:
        for request in requests:
            if not request.done:
                request._fail(error)
                self._count("error")
        for slot in range(self.max_batch):
            self.cache.release(slot)
        self._running = []
        with self._condition:
            self._taken = 0

    def _count(self, reason: str) -> None:
        with self._condition:
            self._stats.finished[reason] = self._stats.finished.get(reason, 0) + 1

    def _retire_cancelled(self) -> None:
        for sequence in self._running:
            if sequence.request.cancelled:
                sequence.finish_reason = "cancelled"
                self._finish(sequence, Chunk([], "", finish_reason="cancelled"))
        self._compact()

    def _admit(self, requests: list[Request]) -> None:
        now = time.perf_counter()
        ready = []
        for request in requests:
            if self.on_sample is not None:
                self.on_sample("queue_time", now - request.submitted)
            if request.cancelled:
                request._finish(self._completion_of(request), Chunk([], "", finish_reason="cancelled"))
                self._count("cancelled")
                with self._condition:
                    self._taken -= 1
            else:
                ready.append(request)
        ready.sort(key=lambda r: len(r.prompt_ids))  # similar lengths together: less padding per prefill
        group: list[Request] = []
        for request in ready:
            if group and (len(group) + 1) * len(request.prompt_ids) > self.prefill_tokens:
                self._prefill(group)
                group = []
            group.append(request)
        if group:
            self._prefill(group)

    def _prefill(self, requests: list[Request]) -> None:
        """Run the prompts of newly admitted requests into the next free slots, then choose their first
        tokens (right padding: each row's padding lies past its slot's length and is never attended to)."""
        start, k = len(self._running), len(requests)
        lengths = [len(r.prompt_ids) for r in requests]
        ids = torch.zeros(k, max(lengths), dtype=torch.long)
        for row, request in enumerate(requests):
            ids[row, : lengths[row]] = torch.tensor(request.prompt_ids)
        ids = ids.to(self.device)
        real = (
            torch.arange(ids.shape[1], device=self.device)[None]
            < torch.tensor(lengths, device=self.device)[:, None]
        )
        if self.encoder_decoder:  # encode the sources, store their cross keys/values, feed the start token
            memory, _ = self.model.encode(ids, real.long())
            start_id = decoder_start_id(self.model)
            first = torch.full((k, 1), start_id, dtype=torch.long, device=self.device)
            view = self.cache.batch(start, start + k, [1] * k, source_lengths=lengths)
            logits = self.model.decode(first, memory, real.long(), cache=view).logits[:, -1].float()
            histories = [[start_id] for _ in requests]
        else:
            where = torch.zeros_like(real)
            last = torch.tensor(lengths, device=self.device) - 1
            where[torch.arange(k, device=self.device), last] = True  # after the last prompt token: the next
            scored = [r.prompt_logprobs for r in requests]
            for row in (row for row in range(k) if scored[row]):
                where[row] = real[row]  # every prompt position: the logprob of the token after it
            view = self.cache.batch(start, start + k, lengths)
            all_logits = self.model(ids, cache=view, logits_where=where).logits.float()
            counts = [lengths[row] if scored[row] else 1 for row in range(k)]
            per_row = all_logits.split(counts)
            logits = torch.stack([rows[-1] for rows in per_row])
            histories = [list(r.prompt_ids) for r in requests]
        sequences = []
        for row, request in enumerate(requests):
            eos, _ = resolve_special_ids(self.model, request.config)
            text = VisibleText(self.tokenizer, request.config.stop_strings) if self.tokenizer else None
            generator = sampling_generator(request.config, self.device)
            sequence = _Sequence(request, start + row, histories[row], eos, generator, text)
            if not self.encoder_decoder and request.prompt_logprobs:
                sequence.prompt_logprobs = [None] + self._logprobs(
                    per_row[row][:-1], request.prompt_ids[1:], request.logprobs or 0
                )
            sequences.append(sequence)
        self._running.extend(sequences)
        with self._condition:
            self._stats.prompt_tokens += sum(lengths)
        self._advance(sequences, logits)

    def _step(self) -> None:
        """Feed every running sequence its last token, one forward over slots 0..n-1, choose the next."""
        n = len(self._running)
        tokens = torch.tensor([[s.generated[-1]] for s in self._running], device=self.device)
        view = self.cache.batch(0, n, [1] * n)
        if self.encoder_decoder:
            logits = self.model.decode(tokens, None, view.source_mask, cache=view).logits[:, -1]
        else:
            logits = self.model(tokens, cache=view).logits[:, -1]
        with self._condition:
            self._stats.steps += 1
        self._advance(self._running, logits.float())

    def _advance(self, sequences: list[_Sequence], logits: torch.Tensor) -> None:
        """Choose each sequence's next token from its row of `logits` (N, V), exactly as `generate` does for
        it alone, publish it, and retire the sequences that finished."""
        chosen: list[int | None] = [None] * len(sequences)
        greedy = [i for i, s in enumerate(sequences) if s.plain_greedy and s.config.max_new_tokens > 0]
        if greedy:
            for i, token in zip(greedy, logits[greedy].argmax(-1).tolist(), strict=True):
                chosen[i] = token
        for i, sequence in enumerate(sequences):
            if chosen[i] is None and sequence.config.max_new_tokens > 0:
                config = sequence.config
                history = None  # the sequence so far, which only the penalties read
                if config.repetition_penalty != 1.0 or config.no_repeat_ngram_size > 0:
                    history = torch.tensor([sequence.history], device=self.device)
                scores = process_logits(logits[i : i + 1], history, config)
                chosen[i] = int(choose_next(scores, config, sequence.generator))
        asked = [i for i, s in enumerate(sequences) if s.logprobs is not None and chosen[i] is not None]
        if asked:
            wanted = max(sequences[i].request.logprobs for i in asked)
            found = self._logprobs(logits[asked], [chosen[i] for i in asked], wanted)
            for i, logprob in zip(asked, found, strict=True):
                logprob.top = logprob.top[: sequences[i].request.logprobs]
                sequences[i].logprobs.append(logprob)
        for i, sequence in enumerate(sequences):
            if chosen[i] is None:  # max_new_tokens = 0: the prompt only (scored)
                sequence.finish_reason = "length"
                self._finish(sequence, Chunk([], "", finish_reason="length"))
            else:
                self._publish(sequence, chosen[i])
        self._compact()

    def _logprobs(self, logits: torch.Tensor, tokens: list[int], top: int) -> list[TokenLogprob]:
        """(N, V) logits → the log-softmax of `tokens[i]` in row i, and the `top` most likely of each row."""
        log_probs = logits.float().log_softmax(-1)
        picked = log_probs.gather(1, torch.tensor(tokens, device=log_probs.device)[:, None])[:, 0].tolist()
        best_values, best_ids = log_probs.topk(top, dim=-1) if top else (log_probs[:, :0], log_probs[:, :0])
        return [
            TokenLogprob(token, value, list(zip(ids, values, strict=True)))
            for token, value, ids, values in zip(
                tokens, picked, best_ids.long().tolist(), best_values.tolist(), strict=True
            )
        ]

    def _publish(self, sequence: _Sequence, token: int) -> None:
        """Record a new token, send its chunk, and decide — as `generate` does — whether the sequence ends."""
        config = sequence.config
        sequence.generated.append(token)
        sequence.history.append(token)
        now = time.perf_counter()
        if self.on_sample is not None:
            first = sequence.first_token_time is None
            self.on_sample("time_to_first_token" if first else "token_latency", now - sequence.last_time)
        if sequence.first_token_time is None:
            sequence.first_token_time = now - sequence.request.submitted
        sequence.last_time = now
        with self._condition:
            self._stats.completion_tokens += 1
        if token in sequence.eos:
            sequence.finish_reason = "stop"
        elif config.stop_strings and stop_string_hit(self.tokenizer, sequence.generated, config.stop_strings):
            sequence.finish_reason = "stop"
        elif len(sequence.generated) == config.max_new_tokens:
            sequence.finish_reason = "length"
        final = sequence.finish_reason is not None
        piece = sequence.text.push(token, final) if sequence.text is not None else ""
        logprobs = sequence.logprobs[-1:] if sequence.logprobs is not None else None
        chunk = Chunk([token], piece, logprobs, sequence.finish_reason)
        if final:
            self._finish(sequence, chunk)
        else:
            sequence.request._push(chunk)

    def _finish(self, sequence: _Sequence, last: Chunk) -> None:
        request = sequence.request
        request._finish(
            Completion(
                request.prompt_ids,
                list(sequence.generated),
                sequence.text.visible if sequence.text is not None else "",
                sequence.finish_reason,
                sequence.logprobs,
                sequence.prompt_logprobs,
                sequence.first_token_time,
            ),
            last,
        )
        self._count(sequence.finish_reason)

    def _completion_of(self, request: Request) -> Completion:  # a request that never ran
        return Completion(request.prompt_ids, [], "", "cancelled")

    def _compact(self) -> None:
        """Drop finished sequences and move the others down, so that running sequence i sits in slot i."""
        kept = []
        for sequence in self._running:
            if sequence.finish_reason is not None:
                self.cache.release(sequence.slot)
                continue
            if sequence.slot != len(kept):
                self.cache.move(sequence.slot, len(kept))
                sequence.slot = len(kept)
            kept.append(sequence)
        with self._condition:
            self._taken -= len(self._running) - len(kept)
        self._running = kept
