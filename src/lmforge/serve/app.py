"""The HTTP application: OpenAI's completions, chat, embeddings and models endpoints, lmforge's classify and
answer, health and Prometheus metrics — over the models of a `Registry`; with an index, `/v1/search` and the
model `assistant` on the chat endpoint (what it says: `lmforge.serve.assistant`).

Every error is OpenAI's envelope `{"error": {"message", "type", "param", "code"}}`: 400 for a bad body (the
field named), 401 for a missing or wrong key, 404 for an unknown model or path, 413 for a body over
`max_body_bytes`, 429 with Retry-After when a model's queue is full, 503 while the models load. FastAPI's
own validation errors are turned into that envelope too, so no body gives a 500.

Web safety: a request whose Host is not the bound address, localhost or an allowed host is refused (DNS
rebinding); no CORS headers unless an origin is allowed; prompts are not logged unless `log_prompts`.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import ipaddress
import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from lmforge.errors import LmforgeError
from lmforge.serve import assistant as A
from lmforge.serve import metrics as M
from lmforge.serve.models import ASSISTANT, GENERATORS, Registry, ServedModel
from lmforge.serve.schemas import (
    UNSUPPORTED,
    AnswerRequest,
    ChatRequest,
    ClassifyRequest,
    CompletionRequest,
    EmbeddingRequest,
    Sampling,
    SearchRequest,
)

log = logging.getLogger("lmforge.serve")

ENDPOINT_TASKS = {  # which model kinds each endpoint serves
    "/v1/completions": GENERATORS,
    "/v1/chat/completions": ("generation", ASSISTANT),
    "/v1/embeddings": ("embedding",),
    "/v1/classify": ("classification",),
    "/v1/answer": ("question-answering",),
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}


@dataclass
class Settings:
    host: str = "127.0.0.1"
    api_key: str | None = None
    max_tokens_limit: int | None = None  # the most max_tokens a request may ask for
    max_body_bytes: int = 4 * 1024 * 1024
    cors_origins: list[str] = field(default_factory=list)
    allowed_hosts: list[str] = field(default_factory=list)
    log_prompts: bool = False
    retry_after: int = 1  # seconds, on a full queue


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    """OpenAI's error envelope."""
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(status: int, message: str, param=None, code=None, headers=None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, code), status_code=status, headers=headers)


# --- the ASGI guards: body size, Host, CORS ---------------------------------------------------------------


class Guard:
    """Around the application (plain ASGI, so a client's disconnect still reaches it): refuses a Host that
    is not ours (DNS rebinding), a missing or wrong API key (401, compared in constant time), a body over
    the limit (413, counted as it arrives, whatever Content-Length claims); adds CORS headers for an
    allowed origin only; counts every request by endpoint and status, timed to the end of its response."""

    def __init__(self, app, settings: Settings, metrics: M.Metrics):
        self.app = app
        self.settings = settings
        self.metrics = metrics
        hosts = {
            "localhost",
            "127.0.0.1",
            "::1",
            settings.host.lower(),
            *map(str.lower, settings.allowed_hosts),
        }
        self.any_ip = settings.host in ("0.0.0.0", "::")
        self.hosts = hosts

    def host_allowed(self, host: str) -> bool:
        """Is a Host header (name, name:port, [v6]:port) one this server answers to?"""
        if host.startswith("["):
            name = host[1:].partition("]")[0]
        elif host.count(":") == 1:
            name = host.partition(":")[0]
        else:
            name = host
        name = name.lower()
        if name in self.hosts:
            return True
        if self.any_ip:  # bound to every interface: any address literal; names only when allowed
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return False
            return True
        return False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def counted_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.guarded(scope, receive, counted_send)
        finally:
            self.metrics.request(endpoint_label(scope["path"]), status, time.perf_counter() - started)

    def authorized(self, path: str, headers: dict) -> JSONResponse | None:
        """None, or the 401 for a request to /v1/* or /metrics without the key (when one is set)."""
        key = self.settings.api_key
        if not key or not (path.startswith("/v1/") or path == "/metrics"):
            return None
        given = headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode()):
            return None
        message = "the API key is not valid" if given else "missing API key: send Authorization: Bearer KEY"
        return error_response(401, message, None, "invalid_api_key")

    async def guarded(self, scope, receive, send):
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not self.host_allowed(headers.get("host", "")):
            response = error_response(
                400, f"Host {headers.get('host', '')!r} is not served here", "Host", "invalid_host"
            )
            return await response(scope, receive, send)
        origin = headers.get("origin")
        cors = origin is not None and origin in self.settings.cors_origins

        async def send_with_cors(message):
            if cors and message["type"] == "http.response.start":
                extra = [(k.encode(), v.encode()) for k, v in self.cors_headers(origin).items()]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        if cors and scope["method"] == "OPTIONS":
            response = Response(status_code=204, headers=self.cors_headers(origin, preflight=True))
            return await response(scope, receive, send)
        refusal = self.authorized(scope["path"], headers)
        if refusal is not None:
            return await refusal(scope, receive, send_with_cors)
        limit = self.settings.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return await self.too_large(scope, receive, send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, counted_receive, send_with_cors)
        except BodyTooLarge:
            await self.too_large(scope, receive, send)

    async def too_large(self, scope, receive, send):
        limit = self.settings.max_body_bytes
        response = error_response(
            413, f"the body is over {limit} bytes (--max-body-bytes)", None, "body_too_large"
        )
        await response(scope, receive, send)

    def cors_headers(self, origin: str, preflight: bool = False) -> dict:
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if preflight:
            headers |= {
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
            }
        return headers


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


# --- the application ------------------------------------------------------------------------------------


def create_app(registry: Registry, settings: Settings | None = None, metrics: M.Metrics | None = None):
    """The ASGI application serving `registry`'s models (wrapped in the Host/size/CORS guard)."""
    settings = settings or Settings()
    metrics = metrics or M.Metrics()
    app = FastAPI(title="lmforge", version="1", docs_url=None, redoc_url=None)
    app.state.registry, app.state.settings, app.state.metrics = registry, settings, metrics
    metrics.watch(registry)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        headers = {"Retry-After": str(settings.retry_after)} if exc.status == 429 else None
        return error_response(exc.status, exc.message, exc.param, exc.code, headers)

    @app.exception_handler(ClientGone)
    async def client_gone(request: Request, exc: ClientGone):
        return Response(status_code=499)  # nobody reads it; nginx's "client closed request", for /metrics

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return error_response(400, *describe_validation(exc.errors()), "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no endpoint {request.method} {request.url.path}"
        return error_response(exc.status_code, message, None, None, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.error("internal error on %s: %s: %s", request.url.path, type(exc).__name__, exc)
        return error_response(500, "internal server error", None, "internal_error")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def playground():
        from lmforge.serve.page import PAGE, POLICY

        return HTMLResponse(PAGE, headers={"Content-Security-Policy": POLICY})

    @app.get("/health")
    async def health():
        if not registry.loaded:
            return JSONResponse({"status": "loading"}, status_code=503)
        if registry.error:
            return JSONResponse({"status": "error", "message": registry.error}, status_code=503)
        return {"status": "ok", "models": sorted(registry.models)}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus():
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/models")
    async def list_models():
        ready(registry)
        return {"object": "list", "data": [model_card(m) for m in registry.models.values()]}

    @app.get("/v1/models/{name:path}")
    async def get_model(name: str):
        return model_card(find(registry, name, "/v1/models", check_task=False))

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        served = find(registry, body.model, "/v1/completions")
        return await complete(served, body, request, settings, metrics)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest, request: Request):
        served = find(registry, body.model, "/v1/chat/completions")
        if served.task == ASSISTANT:
            return await assistant_chat(served, body, settings, metrics)
        return await chat(served, body, request, settings, metrics)

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest):
        served = find(registry, body.model, "/v1/embeddings")
        return await embed(served, body, settings, metrics)

    @app.post("/v1/classify")
    async def classify(body: ClassifyRequest):
        served = find(registry, body.model, "/v1/classify")
        texts = [body.input] if isinstance(body.input, str) else body.input
        nonempty(texts, "input")
        results = await run_in_threadpool(call_pipeline, served.pipeline, texts)
        data = [
            {"index": i, "label": r.label, "probabilities": r.probabilities} for i, r in enumerate(results)
        ]
        tokens = sum(r.prompt_tokens for r in results)
        metrics.tokens(served.name, tokens, 0)
        return listing(served, data, tokens)

    @app.post("/v1/answer")
    async def answer(body: AnswerRequest):
        served = find(registry, body.model, "/v1/answer")
        questions = [body.question] if isinstance(body.question, str) else body.question
        nonempty(questions, "question")
        contexts = body.context
        if isinstance(contexts, list) and len(contexts) != len(questions):
            raise ApiError(
                400,
                f"{len(contexts)} contexts for {len(questions)} questions; give one per question, or one str",
                "context",
            )
        results = await run_in_threadpool(call_pipeline, served.pipeline, questions, contexts)
        data = [
            {"index": i, "answer": r.answer, "score": r.score, "start": r.start, "end": r.end}
            for i, r in enumerate(results)
        ]
        tokens = sum(r.prompt_tokens for r in results)
        metrics.tokens(served.name, tokens, 0)
        return listing(served, data, tokens)

    @app.post("/v1/search")
    async def search_index(body: SearchRequest):
        from lmforge.search import search

        ready(registry)
        index = registry.index
        if index is None:
            raise ApiError(404, "this server has no index: start it with --index IDX", None, "no_index")
        if not body.query.strip():
            raise ApiError(400, "query is empty; give some words to search for", "query")
        if body.k > len(index):
            raise ApiError(400, f"k {body.k} is more than the index's {len(index)} chunks", "k")
        hits = await run_in_threadpool(call_library, search, index, body.query, mode=body.mode, k=body.k)
        return {"object": "list", "data": [hit.to_dict() for hit in hits]}

    return Guard(app, settings, metrics)


def endpoint_label(path: str) -> str:
    """A bounded label for the request counter (unknown paths share one)."""
    if path in ENDPOINT_TASKS or path in ("/", "/health", "/metrics", "/v1/models", "/v1/search"):
        return path
    return "/v1/models/{name}" if path.startswith("/v1/models/") else "other"


def union_member(part: str) -> bool:
    """Is a location part pydantic's name of a union member (`str`, `list[int]`, `StreamOptions`, ...)?"""
    return any(c in part for c in "[]-") or part in ("str", "int", "float", "bool") or part[:1].isupper()


def describe_validation(errors) -> tuple[str, str | None]:
    """(message, param) of pydantic's first error, naming the field as a dotted path; a value that fits
    none of a field's types lists them."""
    if not errors:
        return "the body is not valid", None
    first = errors[0]
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "the body is not valid JSON", None
    if kind == "missing" and not location:
        return "the body is missing: send a JSON object", None
    where = [part for part in location if not union_member(part)]
    param = ".".join(where) or None
    message = first.get("msg", "is not valid")
    if kind == "extra_forbidden":
        return f"unknown field {param!r}", param
    if kind == "missing":
        return f"field {param!r} is required", param
    if len(where) < len(location):  # a union: name every type the field takes
        members = []
        for error in errors:
            parts = [str(part) for part in error.get("loc", ()) if part != "body"]
            if [p for p in parts if not union_member(p)][: len(where)] == where:
                members += [p for p in parts[len(where) - 1 :] if union_member(p) and p not in members]
        if len(members) > 1:
            message = f"expected one of {', '.join(members)}"
    return (f"{param}: {message}" if param else message), param


def ready(registry: Registry) -> None:
    if not registry.loaded:
        raise ApiError(503, "the models are still loading; retry shortly", None, "loading")
    if registry.error:
        raise ApiError(503, f"the models failed to load: {registry.error}", None, "load_failed")


def find(registry: Registry, name: str, endpoint: str, check_task: bool = True) -> ServedModel:
    ready(registry)
    served = registry.models.get(name)
    if served is None:
        names = ", ".join(sorted(registry.models))
        raise ApiError(404, f"the model {name!r} does not exist; served: {names}", "model", "model_not_found")
    if check_task and served.task not in ENDPOINT_TASKS[endpoint]:
        kinds = ", ".join(ENDPOINT_TASKS[endpoint])
        raise ApiError(
            400,
            f"{endpoint} serves {kinds} models; {name!r} is a {served.task} model",
            "model",
            "unsupported_model_task",
        )
    return served


def model_card(served: ServedModel) -> dict:
    about = {"task": served.task, "source": served.spec.source, "fingerprint": served.fingerprint}
    if served.task == ASSISTANT:
        about["index"] = str(served.pipeline.index.directory)
    if served.engine is not None:  # prompt + completion tokens fit in this many positions
        about["context_length"] = served.engine.context
    return {
        "id": served.name,
        "object": "model",
        "created": served.created,
        "owned_by": "lmforge",
        "lmforge": about,
    }


def listing(served: ServedModel, data: list, prompt_tokens: int) -> dict:
    return {
        "object": "list",
        "model": served.name,
        "data": data,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def nonempty(items: list, param: str) -> None:
    if not items:
        raise ApiError(400, f"{param} is an empty list; give at least one", param)


def call_pipeline(pipeline, *args):
    try:
        return pipeline(*args)
    except LmforgeError as exc:
        raise ApiError(400, str(exc), None, "invalid_input") from None


def call_library(function, *args, **kwargs):
    """`function(*args, **kwargs)`; an LmforgeError (what the command line prints as its one line) is a 400."""
    try:
        return function(*args, **kwargs)
    except LmforgeError as exc:
        raise ApiError(400, str(exc), None, "invalid_input") from None


# --- embeddings -----------------------------------------------------------------------------------------


def embed_ids(pipeline, id_lists: list[list[int]]):
    try:
        return pipeline.embed_ids(id_lists)
    except LmforgeError as exc:
        raise ApiError(400, str(exc), "input", "invalid_input") from None


async def embed(served: ServedModel, body: EmbeddingRequest, settings: Settings, metrics) -> dict:
    if body.dimensions is not None and body.dimensions != served.pipeline.dim:
        raise ApiError(
            400,
            f"{served.name!r} gives {served.pipeline.dim}-dimensional vectors and cannot shorten them; "
            f"leave out dimensions (or give {served.pipeline.dim})",
            "dimensions",
            "unsupported_parameter",
        )
    given = [body.input] if isinstance(body.input, str) else list(body.input)
    nonempty(given, "input")
    if all(isinstance(x, str) for x in given):
        results = await run_in_threadpool(call_pipeline, served.pipeline, given)
    else:  # token ids, taken as given (OpenAI's list[int] is one input, list[list[int]] several)
        id_lists = [given] if all(isinstance(x, int) for x in given) else given
        results = await run_in_threadpool(embed_ids, served.pipeline, id_lists)
    data = []
    for i, result in enumerate(results):
        vector = np.asarray(result.vector, dtype=np.float32)
        value = (
            base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
            if body.encoding_format == "base64"
            else vector.tolist()
        )
        data.append({"object": "embedding", "index": i, "embedding": value})
    tokens = sum(r.prompt_tokens for r in results)
    metrics.tokens(served.name, tokens, 0)
    return {
        "object": "list",
        "data": data,
        "model": served.name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# --- completions and chat -------------------------------------------------------------------------------


def refuse_unsupported(body: Sampling) -> None:
    """A 400 for a field lmforge accepts only at its neutral value (`UNSUPPORTED`) set to another."""
    for name, neutral in UNSUPPORTED.items():
        value = getattr(body, name, neutral)
        if value not in (neutral, None, {}):
            raise ApiError(
                400, f"{name} is not supported by lmforge; leave it out", name, "unsupported_parameter"
            )


def generation_config(served: ServedModel, body: Sampling, max_tokens: int):
    """The model's defaults, then OpenAI's for absent fields (temperature 1, top_p 1), then the body's."""
    refuse_unsupported(body)
    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stops) > 4:
        raise ApiError(400, f"stop takes at most 4 strings, got {len(stops)}", "stop")
    options = {
        "max_new_tokens": max_tokens,
        "temperature": 1.0 if body.temperature is None else body.temperature,
        "top_p": 1.0 if body.top_p is None else body.top_p,
        "stop_strings": [s for s in stops if s],
        "seed": body.seed,
        "num_beams": 1,
    }
    for name in ("top_k", "min_p", "repetition_penalty"):
        if getattr(body, name) is not None:
            options[name] = getattr(body, name)
    try:
        return served.pipeline.defaults.replace(**options)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"bad sampling option: {exc}") from None


def check_max_tokens(max_tokens: int, settings: Settings, param: str = "max_tokens") -> None:
    limit = settings.max_tokens_limit
    if limit is not None and max_tokens > limit:
        raise ApiError(400, f"{param} {max_tokens} is over this server's limit of {limit}", param)


def encode_prompt(served: ServedModel, prompt: str) -> list[int]:
    pipeline = served.pipeline
    with pipeline.tokenizer_lock:
        if served.task == "translation":
            from lmforge.data.seq2seq import encode_texts

            config = pipeline.model.config
            return encode_texts(pipeline.tokenizer, [prompt], config.max_positions, config.eos_token_id)[0]
        return list(pipeline.tokenizer.encode(prompt).ids)


class Handoff:
    """Chunks from engine threads to the event loop's queues, woken once per batch of chunks rather than
    once per chunk: a decoding step of 16 sequences makes 16 chunks, and each `call_soon_threadsafe` writes
    to the loop's wake-up pipe and costs the loop an iteration."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.lock = threading.Lock()
        self.pending: list = []  # (queue, item) to put, in order

    def put(self, queue: asyncio.Queue, item) -> None:  # from any thread
        with self.lock:
            self.pending.append((queue, item))
            first = len(self.pending) == 1
        if first:
            self.loop.call_soon_threadsafe(self.deliver)

    def deliver(self) -> None:  # on the loop
        with self.lock:
            items, self.pending = self.pending, []
        for queue, item in items:
            queue.put_nowait(item)


_handoffs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def handoff() -> Handoff:
    """The running loop's `Handoff`."""
    loop = asyncio.get_running_loop()
    if loop not in _handoffs:
        _handoffs[loop] = Handoff(loop)
    return _handoffs[loop]


class Stream:
    """The chunks of every choice of a request, as one asyncio stream of (choice index, chunk): the engine
    thread hands each chunk to the event loop as it is made."""

    def __init__(self, served: ServedModel):
        self.served = served
        self.handoff = handoff()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.requests: list = []
        self.generated = 0  # tokens generated so far, every choice together
        self.http: Request | None = None  # watched for a disconnect while waiting for whole answers

    def submit(self, prompt_ids: list[int], config, logprobs, prompt_logprobs) -> None:
        """Queue one choice (its index is the number queued before it)."""
        from lmforge.engine import ContextTooLong, EngineError, QueueFull

        index = len(self.requests)

        def sink(chunk, index=index):
            self.handoff.put(self.queue, (index, chunk))

        try:
            request = self.served.engine.submit(
                prompt_ids, config, logprobs=logprobs, prompt_logprobs=prompt_logprobs, on_chunk=sink
            )
        except QueueFull:
            raise ApiError(
                429, f"{self.served.name!r} is busy: its queue is full; retry later", None, "queue_full"
            ) from None
        except ContextTooLong as exc:
            raise ApiError(400, str(exc), "max_tokens", "context_length_exceeded") from None
        except EngineError as exc:
            raise ApiError(400, str(exc)) from None
        self.requests.append(request)

    async def __aiter__(self) -> AsyncIterator:
        pending = len(self.requests)
        while pending:
            try:
                if self.queue.empty():  # (wait_for costs a task: only when there is nothing to take)
                    index, chunk = await asyncio.wait_for(self.queue.get(), timeout=0.25)
                else:
                    index, chunk = self.queue.get_nowait()
            except asyncio.TimeoutError:
                self.raise_failure()  # an engine failure ends a request without a chunk
                if self.http is not None and await self.http.is_disconnected():
                    raise ClientGone from None  # a client that waited for a whole answer went away
                continue
            self.generated += len(chunk.token_ids)
            yield index, chunk
            if chunk.finish_reason is not None:
                pending -= 1

    def raise_failure(self) -> None:
        from lmforge.engine import EngineError

        for request in self.requests:
            if request.done:
                try:
                    request.result(0)
                except EngineError as exc:
                    raise ApiError(500, f"the engine failed: {exc}", None, "engine_error") from None

    def cancel(self) -> None:
        for request in self.requests:
            if not request.done:
                request.cancel()

    async def completions(self, http: Request | None = None) -> list:
        """Wait for every choice: their `Completion`s, in order. With the HTTP request, a client that
        disconnects meanwhile cancels them (their slots free at the next step)."""
        self.http = http
        try:
            async for _ in self:
                pass
        finally:
            self.cancel()
        return [request.result(10) for request in self.requests]  # set just after the last chunk


def start(served: ServedModel, prompts: list[list[int]], config, n: int, logprobs, prompt_logprobs) -> Stream:
    """Queue every prompt's n choices (all or none: a refusal cancels those already queued); choice
    index = prompt * n + i, and with a seed S choice i of a prompt samples with S + i, as
    `Engine.submit_choices` does."""
    vocab = served.pipeline.model.config.vocab_size
    for ids in prompts:
        if not ids:
            raise ApiError(400, "the prompt encodes to no tokens; give some text", "prompt")
        bad = next((i for i in ids if not 0 <= i < vocab), None)
        if bad is not None:
            raise ApiError(400, f"token id {bad} is outside the vocabulary (0..{vocab - 1})", "prompt")
    stream = Stream(served)
    try:
        for ids in prompts:
            for i in range(n):
                seeded = config if config.seed is None else config.replace(seed=config.seed + i)
                stream.submit(ids, seeded, logprobs, prompt_logprobs)
    except ApiError:
        stream.cancel()
        raise
    return stream


def token_text(served: ServedModel, token_id: int) -> str:
    """A token as logprobs show it: its text, or — for a piece of a character (a byte-level token that
    decodes to U+FFFD alone) — its vocabulary entry, so that top_logprobs' keys stay distinct."""
    tokenizer = served.pipeline.tokenizer
    text = tokenizer.decode([token_id], skip_special_tokens=False)
    if "\ufffd" in text:
        return tokenizer.id_to_token(token_id) or text
    return text


def completion_logprobs(served: ServedModel, items, offset: int) -> dict:
    """OpenAI's completions `logprobs` object for engine TokenLogprobs (None: a first prompt token)."""
    tokens, values, tops, offsets = [], [], [], []
    for item in items:
        if item is None:
            continue
        text = token_text(served, item.token_id)
        tokens.append(text)
        values.append(item.logprob)
        tops.append({token_text(served, t): v for t, v in item.top} if item.top else {})
        offsets.append(offset)
        offset += len(text)
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}


def prompt_token_logprobs(served: ServedModel, completion) -> dict:
    """The echoed prompt's logprobs: the first token has none (OpenAI: null)."""
    first = token_text(served, completion.prompt_ids[0])
    rest = completion_logprobs(served, completion.prompt_logprobs[1:], len(first))
    return {
        "tokens": [first] + rest["tokens"],
        "token_logprobs": [None] + rest["token_logprobs"],
        "top_logprobs": [None] + rest["top_logprobs"],
        "text_offset": [0] + rest["text_offset"],
    }


def chat_logprobs(served: ServedModel, items) -> list[dict]:
    out = []
    for item in items or []:
        text = token_text(served, item.token_id)
        out.append(
            {
                "token": text,
                "logprob": item.logprob,
                "bytes": list(text.encode()),
                "top_logprobs": [
                    {"token": (t := token_text(served, i)), "logprob": v, "bytes": list(t.encode())}
                    for i, v in item.top
                ],
            }
        )
    return out


def sse(data) -> bytes:
    return b"data: " + (data if isinstance(data, bytes) else json.dumps(data).encode()) + b"\n\n"


def finish_reason(reason: str) -> str:
    return "stop" if reason == "stop" else "length"


async def complete(served, body: CompletionRequest, request: Request, settings: Settings, metrics):
    prompts_in = body.prompt
    if isinstance(prompts_in, str):
        texts = [prompts_in]
    elif prompts_in and all(isinstance(x, int) for x in prompts_in):
        texts = [list(prompts_in)]
    else:
        texts = list(prompts_in)
    nonempty(texts, "prompt")
    if settings.log_prompts:
        log.info("completion prompts for %s: %r", served.name, texts)
    max_tokens = 16 if body.max_tokens is None else body.max_tokens
    check_max_tokens(max_tokens, settings)
    if body.echo and served.task == "translation":
        raise ApiError(
            400, "echo scores a decoder's prompt; an encoder-decoder's prompt is its source", "echo"
        )
    config = generation_config(served, body, max_tokens)
    prompts = [encode_prompt(served, t) if isinstance(t, str) else list(t) for t in texts]
    echo_scores = body.echo and body.logprobs is not None
    stream = start(served, prompts, config, body.n, body.logprobs, echo_scores)
    ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    head = {
        "id": ident,
        "object": "text_completion",
        "created": created,
        "model": served.name,
        "system_fingerprint": served.fingerprint,
    }
    texts_shown = [t if isinstance(t, str) else served.pipeline.tokenizer.decode(t) for t in texts]
    prompt_tokens = sum(len(p) for p in prompts)
    if body.stream:

        async def chunks():
            if body.echo:
                for index in range(len(prompts) * body.n):
                    text = texts_shown[index // body.n]
                    yield {"index": index, "text": text, "logprobs": None, "finish_reason": None}
            offsets = [
                len(texts_shown[i // body.n]) if body.echo else 0 for i in range(len(prompts) * body.n)
            ]
            async for index, chunk in stream:
                if not chunk.text and chunk.finish_reason is None and not body.logprobs:
                    continue
                logprobs = None
                if body.logprobs is not None and chunk.logprobs:
                    logprobs = completion_logprobs(served, chunk.logprobs, offsets[index])
                    offsets[index] += sum(len(t) for t in logprobs["tokens"])
                reason = None if chunk.finish_reason is None else finish_reason(chunk.finish_reason)
                yield {"index": index, "text": chunk.text, "logprobs": logprobs, "finish_reason": reason}

        return streaming(stream, chunks(), head, body, prompt_tokens, metrics)
    choices, completion_tokens = [], 0
    for index, done in enumerate(await stream.completions(request)):
        completion_tokens += done.completion_tokens
        text = done.text
        logprobs = None
        if body.logprobs is not None:
            prompt_text = texts_shown[index // body.n]
            logprobs = completion_logprobs(served, done.logprobs or [], len(prompt_text) if body.echo else 0)
            if body.echo:
                scored = prompt_token_logprobs(served, done)
                logprobs = {k: scored[k] + logprobs[k] for k in logprobs}
        if body.echo:
            text = texts_shown[index // body.n] + text
        choices.append(
            {
                "index": index,
                "text": text,
                "logprobs": logprobs,
                "finish_reason": finish_reason(done.finish_reason),
            }
        )
    metrics.tokens(served.name, prompt_tokens, completion_tokens)
    return {**head, "choices": choices, "usage": usage(prompt_tokens, completion_tokens)}


STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def streaming(stream: Stream, choices, head: dict, body: Sampling, prompt_tokens: int, metrics):
    """Server-sent events: one event per choice update (`choices` yields them), then the usage event when
    asked for, then `[DONE]`. A client that goes away cancels the generator, which cancels the requests."""

    async def events():
        extra = {"usage": None} if include_usage(body) else {}
        try:
            async for choice in choices:
                yield sse({**head, "choices": [choice]} | extra)
            metrics.tokens(head["model"], prompt_tokens, stream.generated)
            if include_usage(body):
                yield sse({**head, "choices": [], "usage": usage(prompt_tokens, stream.generated)})
            yield sse(b"[DONE]")
        except ApiError as exc:  # the status is sent already: the error goes in the stream, as OpenAI's does
            yield sse(error_body(exc.status, exc.message, exc.param, exc.code))
        finally:
            stream.cancel()

    return StreamingResponse(events(), media_type="text/event-stream", headers=STREAM_HEADERS)


def include_usage(body: Sampling) -> bool:
    return bool(body.stream_options and body.stream_options.include_usage)


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


async def chat(served, body: ChatRequest, request: Request, settings: Settings, metrics):
    messages = [{"role": m.role, "content": m.text()} for m in body.messages]
    if settings.log_prompts:
        log.info("chat messages for %s: %r", served.name, messages)
    try:
        prompt = served.pipeline.render_chat(messages)
    except LmforgeError as exc:
        raise ApiError(400, str(exc), "messages") from None
    ids = encode_prompt(served, prompt)
    param = "max_completion_tokens" if body.max_completion_tokens is not None else "max_tokens"
    asked = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    context = served.engine.context
    if asked is None:  # up to the context (and this server's limit)
        max_tokens = min(max(context - len(ids), 0), settings.max_tokens_limit or context)
    else:
        max_tokens = asked
    check_max_tokens(max_tokens, settings, param)
    if body.top_logprobs is not None and not body.logprobs:
        raise ApiError(400, "top_logprobs needs logprobs: true", "top_logprobs")
    config = generation_config(served, body, max_tokens)
    logprobs = (body.top_logprobs or 0) if body.logprobs else None
    stream = start(served, [ids], config, body.n, logprobs, False)
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    head = {"id": ident, "created": created, "model": served.name, "system_fingerprint": served.fingerprint}
    if body.stream:

        async def chunks():
            for index in range(body.n):
                delta = {"role": "assistant", "content": ""}
                yield {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}
            async for index, chunk in stream:
                logprobs = {"content": chat_logprobs(served, chunk.logprobs)} if body.logprobs else None
                if chunk.text or (logprobs and logprobs["content"]):
                    delta = {"content": chunk.text}
                    yield {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": None}
                if chunk.finish_reason is not None:
                    reason = finish_reason(chunk.finish_reason)
                    yield {"index": index, "delta": {}, "logprobs": None, "finish_reason": reason}

        chunk_head = {**head, "object": "chat.completion.chunk"}
        return streaming(stream, chunks(), chunk_head, body, len(ids), metrics)
    choices, completion_tokens = [], 0
    for index, done in enumerate(await stream.completions(request)):
        completion_tokens += done.completion_tokens
        logprobs = {"content": chat_logprobs(served, done.logprobs)} if body.logprobs else None
        message = {"role": "assistant", "content": done.text}
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": finish_reason(done.finish_reason),
            }
        )
    metrics.tokens(served.name, len(ids), completion_tokens)
    return {
        **head,
        "object": "chat.completion",
        "choices": choices,
        "usage": usage(len(ids), completion_tokens),
    }


# --- the assistant --------------------------------------------------------------------------------------


async def assistant_chat(served: ServedModel, body: ChatRequest, settings: Settings, metrics):
    """The model `assistant` on /v1/chat/completions: one answer read from the index's passages, with its
    `citations` (lmforge.serve.assistant); streamed as pieces of that answer."""
    refuse_unsupported(body)
    if body.n != 1:
        raise ApiError(400, "the assistant gives one answer: leave n out (or 1)", "n")
    if body.logprobs:
        raise ApiError(400, "the assistant reads its answer from a passage: it has no logprobs", "logprobs")
    messages = [{"role": m.role, "content": m.text()} for m in body.messages]
    if settings.log_prompts:
        log.info("chat messages for %s: %r", served.name, messages)
    try:
        A.question_of(messages)
    except LmforgeError as exc:
        raise ApiError(400, str(exc), "messages") from None
    reply = await run_in_threadpool(call_library, A.respond, served.pipeline, messages)
    metrics.tokens(served.name, reply.prompt_tokens, reply.completion_tokens)
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    head = {"id": ident, "created": created, "model": served.name, "system_fingerprint": served.fingerprint}
    spent = usage(reply.prompt_tokens, reply.completion_tokens)
    if not body.stream:
        message = {"role": "assistant", "content": reply.content}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        return {
            **head,
            "object": "chat.completion",
            "choices": [choice],
            "citations": reply.citations,
            "usage": spent,
        }

    async def events():
        chunk = {**head, "object": "chat.completion.chunk", "citations": reply.citations}
        if include_usage(body):
            chunk["usage"] = None
        deltas = [{"role": "assistant", "content": ""}] + [{"content": piece} for piece in reply.pieces]
        for delta in deltas:
            yield sse(
                {**chunk, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]}
            )
        yield sse(
            {**chunk, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]}
        )
        if include_usage(body):
            yield sse({**chunk, "choices": [], "usage": spent})
        yield sse(b"[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream", headers=STREAM_HEADERS)
