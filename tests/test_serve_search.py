"""`lmforge serve --index IDX --reader QA`: the model `assistant` and `/v1/search` against a real uvicorn on
127.0.0.1 (tests/serving.py), over a tiny index and reader built here. Through the official `openai` client,
the assistant's chat answers (streamed or not) are `lmforge.search.Assistant.ask`'s on the same index —
answer, source, citations, abstentions below the threshold, the tokens the reader read; `/v1/search` (httpx)
gives `lmforge.search.search`'s results in every mode; bad bodies are 400 envelopes that name the field and
nothing gets a 5xx (every field × wrong values, and schemathesis); the playground's assistant box in
Chromium shows the answer and its cited passages — documents whose titles and text are markup shown as
text, nothing run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from browser import fresh_page
from serving import assert_error, schema_statuses, served, tiny_models, wait_until

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
pytest.importorskip("bm25s", reason="the search extra is not installed (pip install lmforge[search])")

from lmforge.pipelines import QuestionAnswering  # noqa: E402
from lmforge.search import Assistant, Index, build_index, search  # noqa: E402
from lmforge.serve.models import search_spec  # noqa: E402
from lmforge.tokenizers import load_tokenizer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py

TIMEOUT = 60
# planted in the documents: if the page ever parsed a title or a passage as HTML, a handler would count a
# run in window.xssRuns
RUN = "window.xssRuns = (window.xssRuns || 0) + 1"
DOCUMENTS = [
    {
        "id": "paris",
        "title": "Paris <b>capital</b>",
        "text": f"Paris is the capital of France . <script>{RUN}</script> the river runs by the city .",
    },
    {
        "id": "madrid",
        "title": f'<img src=x onerror="{RUN}">Madrid',
        "text": "Madrid is the capital of Spain .\n\nthe dog sat on the log in the sun .",
    },
    {
        "id": "pets",
        "title": "Cats & <i>dogs</i>",
        "text": f'the cat sat on the mat .\n\na bird sang in the tree . <img src=x onerror="{RUN}">',
    },
    {"id": "fib", "title": "", "text": "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)"},
    {
        "id": "road",
        "title": "The road </textarea><svg onload=alert(1)>",
        "text": "the road was long and the day was warm .\n\na cat and a dog met on the road .",
    },
    {
        "id": "tree",
        "title": "Trees &amp; &lt;b&gt;",  # entities stay as typed: nothing decodes them
        "text": f"the tree stood by the river .\n\nbirds sang in it <svg onload='{RUN}'> all day .",
    },
]
QUESTIONS = [
    "What is the capital of France?",
    "What is the capital of Spain?",
    "Where did the cat sit?",
    "Who sang in the tree?",
    "Where did the dog sit?",
    "What was the road like?",
    "How is fib defined?",
    "Where did the cat and the dog meet?",
]
SYSTEM = {"role": "system", "content": "Answer from the documents."}  # not read: the last user message is


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """The tiny models of tests/serving.py, and an index of DOCUMENTS embedded with its encoder."""
    root = tmp_path_factory.mktemp("serve-search")
    models = tiny_models(root)
    documents = root / "documents.jsonl"
    documents.write_text("".join(json.dumps(d) + "\n" for d in DOCUMENTS), encoding="utf-8")
    index = build_index([documents], root / "idx", models["bert"], progress=False)
    return {"index": str(index), "reader": models["qa"], "gpt": models["gpt"]}


@pytest.fixture(scope="module")
def library(world) -> SimpleNamespace:
    """The index and reader loaded in-process, and a threshold between the confidences of the questions,
    so that some are answered and some abstained from."""
    index = Index.open(world["index"])
    reader = QuestionAnswering.load(world["reader"])
    scores = sorted(Assistant(index, reader, threshold=0.0).ask(q).score for q in QUESTIONS)
    middle = len(scores) // 2
    assert scores[middle - 1] < scores[middle], scores
    threshold = round((scores[middle - 1] + scores[middle]) / 2, 6)
    return SimpleNamespace(
        index=index,
        reader=reader,
        tokenizer=load_tokenizer(Path(world["reader"]) / "tokenizer.json"),
        threshold=threshold,
        assistant=Assistant(index, reader, threshold=threshold),
    )


@pytest.fixture(scope="module")
def server(world, library):
    with served({}, search=search_spec(world["index"], world["reader"], library.threshold)) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=TIMEOUT)


def ask(client, question: str, **options):
    messages = [SYSTEM, {"role": "user", "content": question}]
    return client.chat.completions.create(model="assistant", messages=messages, **options)


def expected_reply(answer, threshold: float) -> tuple[str, list[dict]]:
    """The content and citations the contract gives for a library `Answer`."""
    if answer.abstained:
        return f"I don't know (best confidence {answer.score:.3f} < threshold {threshold}).", []
    source = answer.source
    title = f" ({source.title})" if source.title else ""
    content = (
        f"{answer.answer}\n\nSources:\n[1] {source.doc_id}{title} [{source.start}:{source.end}], "
        f"confidence {answer.score:.3f}"
    )
    keys = ("doc_id", "title", "start", "end", "text")
    return content, [{key: getattr(source, key) for key in keys}]


# --- the assistant over the openai client ------------------------------------------------------------------


def test_the_assistant_is_listed_with_its_kind_and_index(client, world):
    models = client.models.list().data
    assert [m.id for m in models] == ["assistant"]
    about = models[0].model_extra["lmforge"]
    assert about["task"] == "assistant" and about["source"] == world["reader"]
    assert about["index"] == world["index"]


def test_chat_answers_what_the_library_answers_with_its_citation(client, library):
    outcomes = set()
    for question in QUESTIONS:
        reply = ask(client, question)
        answer = library.assistant.ask(question)
        content, citations = expected_reply(answer, library.threshold)
        assert reply.object == "chat.completion" and reply.model == "assistant"
        assert reply.choices[0].message.role == "assistant" and reply.choices[0].finish_reason == "stop"
        assert reply.choices[0].message.content == content
        assert reply.model_extra["citations"] == citations
        for citation in citations:  # the passage, where its document has it, holding the answer
            document = library.index.document_text(citation["doc_id"])
            assert document[citation["start"] : citation["end"]] == citation["text"]
            assert answer.answer in citation["text"]
        # prompt tokens: what the reader read, counted apart from the assistant (each passage retrieved)
        hits = search(library.index, question, mode="hybrid", k=5)
        read = library.reader([question] * len(hits), [hit.text for hit in hits])
        assert reply.usage.prompt_tokens == answer.tokens_read == sum(r.prompt_tokens for r in read)
        tokens = library.tokenizer.encode(content, add_special_tokens=False).ids  # its own copy
        assert reply.usage.completion_tokens == len(tokens) > 0
        outcomes.add(answer.abstained)
    assert outcomes == {True, False}  # the threshold splits the questions: both kinds of reply were seen


def test_a_streamed_reply_joins_to_the_unstreamed_one_with_citations_on_every_chunk(client, library):
    for question in QUESTIONS[:4]:
        whole = ask(client, question)
        chunks = list(ask(client, question, stream=True, stream_options={"include_usage": True}))
        assert chunks[0].choices[0].delta.role == "assistant"
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert content == whole.choices[0].message.content
        assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 1
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert all(c.model_extra["citations"] == whole.model_extra["citations"] for c in chunks)
        assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
        assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)


def test_chat_errors_are_typed_and_name_the_field(client, server):
    cases = [
        ({"messages": [SYSTEM]}, "messages"),  # no user message
        ({"messages": [{"role": "user", "content": "  "}]}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"messages": [{"role": "user", "content": "x"}], "logprobs": True}, "logprobs"),
        ({"messages": [{"role": "user", "content": "x"}], "presence_penalty": 1}, "presence_penalty"),
        ({"messages": []}, "messages"),
    ]
    for body, param in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="assistant", **body)
        assert caught.value.body["param"] == param, (body, caught.value.body)
    # the assistant answers chats only
    response = httpx.post(server.url + "/v1/completions", json={"model": "assistant", "prompt": "x"})
    assert_error(response, 400, "unsupported_model_task")


# --- /v1/search over httpx ---------------------------------------------------------------------------------


def post_search(server, body) -> httpx.Response:
    return httpx.post(server.url + "/v1/search", json=body, timeout=TIMEOUT)


def test_search_gives_the_librarys_results_in_every_mode(server, library):
    size = len(library.index)
    assert size >= 10  # the default k fits
    for question in QUESTIONS[:3]:
        for mode in ("dense", "bm25", "hybrid"):
            for k in (1, 3, size):
                response = post_search(server, {"query": question, "k": k, "mode": mode})
                assert response.status_code == 200, response.text
                expected = [hit.to_dict() for hit in search(library.index, question, mode=mode, k=k)]
                assert response.json() == {"object": "list", "data": expected}
        defaults = post_search(server, {"query": question}).json()["data"]  # dense, k 10: as `lmforge search`
        assert defaults == [hit.to_dict() for hit in search(library.index, question, mode="dense", k=10)]
    # BM25 retrieves only the chunks that share a word: fewer than k here
    data = post_search(server, {"query": "capital of France", "k": 3, "mode": "bm25"}).json()["data"]
    assert [d["rank"] for d in data] == [1, 2] and data[0]["doc_id"] == "paris"
    assert set(data[0]) == {"rank", "score", "doc_id", "chunk_id", "title", "text", "start", "end"}


def test_bad_search_bodies_are_400s_that_name_the_field(server, library):
    cases = [
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({"query": "cat", "k": 0}, "k"),
        ({"query": "cat", "k": len(library.index) + 1}, "k"),
        ({"query": "cat", "mode": "fuzzy"}, "mode"),
        ({"k": 3}, "query"),
        ({"query": 5}, "query"),
        ({"query": ["cat"]}, "query"),
        ({"query": "cat", "model": "assistant"}, "model"),  # unknown fields are refused
        ({"query": "cat", "k": "many"}, "k"),
    ]
    for body, param in cases:
        error = assert_error(post_search(server, body), 400, param=param)
        assert "\n" not in error["message"], error
    response = httpx.post(
        server.url + "/v1/search", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 400)
    assert httpx.get(server.url + "/v1/search", timeout=TIMEOUT).status_code == 405


def test_a_server_without_an_index_says_so(world):
    with served({"gpt": world["gpt"]}) as server:
        assert_error(post_search(server, {"query": "cat"}), 404, "no_index")
        models = httpx.get(server.url + "/v1/models", timeout=TIMEOUT).json()["data"]
        assert [m["id"] for m in models] == ["gpt"]


def test_an_index_alone_serves_search_and_no_assistant(world, library):
    with served({}, search=search_spec(world["index"])) as server:
        assert httpx.get(server.url + "/v1/models", timeout=TIMEOUT).json()["data"] == []
        response = post_search(server, {"query": "the cat", "k": 2, "mode": "hybrid"})
        expected = [hit.to_dict() for hit in search(library.index, "the cat", mode="hybrid", k=2)]
        assert response.json()["data"] == expected
        body = {"model": "assistant", "messages": [{"role": "user", "content": "x"}]}
        assert_error(httpx.post(server.url + "/v1/chat/completions", json=body), 404, "model_not_found")


# --- nothing gets a 5xx ------------------------------------------------------------------------------------


BAD_VALUES = [None, -1, 0, 10**30, 1.5, "", "x", [], [None], [[]], {}, {"a": 1}, True, "\x00", [1, "a"]]
BODIES = {
    "/v1/search": {"query": "the cat", "k": 2, "mode": "hybrid"},
    "/v1/chat/completions": {"model": "assistant", "messages": [{"role": "user", "content": "Who sat?"}]},
}
FIELDS = ["query", "k", "mode", "model", "messages", "n", "stream", "stream_options", "logprobs", "seed"]


def test_no_malformed_body_gets_a_5xx(server):
    """Every field of both endpoints set to each kind of wrong value: a 2xx or a 4xx envelope."""
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as http:
        for path, good in BODIES.items():
            for name in FIELDS:
                for value in BAD_VALUES:
                    if name == "n" and isinstance(value, int) and value > 64:
                        continue
                    response = http.post(path, json={**good, name: value})
                    assert response.status_code < 500, (path, name, value, response.text)
                    if response.status_code >= 400:
                        assert_error(response, response.status_code)


def test_schemathesis_finds_no_5xx_on_search_or_the_assistant(server):
    """Bodies generated from the server's own OpenAPI schema, fitting it and breaking it (a few per mode,
    derandomized), for the two operations the index adds: 2xx or a 4xx envelope, never a 5xx."""
    models = {path: "assistant" for path in BODIES}
    seen = schema_statuses(server, models, paths=set(BODIES), max_examples=10)
    assert any(s < 300 for s in seen) and any(400 <= s < 500 for s in seen)


# --- the command line --------------------------------------------------------------------------------------


def test_serve_with_an_index_prints_the_assistant_and_answers(world, library):
    command = [
        sys.executable,
        "-m",
        "lmforge",
        "serve",
        "--index",
        world["index"],
        "--reader",
        world["reader"],
    ]
    command += ["--threshold", "0", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().split()[2]
        assert process.stdout.readline().split() == [
            "assistant",
            "assistant",
            world["reader"],
            "(threshold",
            "0.0)",
        ]
        assert process.stdout.readline().split() == ["/v1/search", "index", world["index"]]
        assert wait_until(lambda: httpx.get(url + "/health").status_code == 200, 60)
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=TIMEOUT)
        reply = ask(client, QUESTIONS[0])
        answer = Assistant(library.index, library.reader, threshold=0.0).ask(QUESTIONS[0])
        assert reply.choices[0].message.content == expected_reply(answer, 0.0)[0]
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        (["--reader", "{reader}"], "--reader answers from an index"),
        (["--index", "{index}", "--threshold", "0.5"], "--threshold is the assistant's"),
        (["--index", "{index}", "--reader", "{reader}", "--threshold", "2"], "between 0 and 1"),
        (["--index", "{missing}", "--reader", "{reader}"], "no such directory"),
        (["--index", "{index}", "--reader", "{gpt}"], "cannot answer questions"),
        (["--model", "assistant={gpt}", "--index", "{index}", "--reader", "{reader}"], "'assistant'"),
        ([], "give at least one --model"),
    ],
)
def test_serve_option_errors_are_one_line(extra, expect, world, cli, tmp_path):
    paths = {**world, "missing": str(tmp_path / "nothing")}
    code, out, err = cli("serve", "--port", "0", *[a.format(**paths) for a in extra])
    assert code == 2 and out == "", (code, out, err)
    assert len(err.strip().splitlines()) == 1 and expect in err, err


# --- the playground in Chromium ----------------------------------------------------------------------------


def test_the_playground_shows_the_answer_and_its_cited_passages_as_text(
    page, server, client, library, browser
):
    page.goto(server.url + "/")
    page.wait_for_function("() => document.querySelectorAll('#model option').length === 1")
    assert (
        page.is_visible("#assistant") and not page.is_visible("#generate") and not page.is_visible("#similar")
    )
    shown_markup = 0
    for question in QUESTIONS:
        page.fill("#question", question)
        page.click("#ask")
        page.wait_for_function(
            "() => document.getElementById('assistant-status').textContent.startsWith('usage')"
        )
        page.wait_for_function("() => !document.getElementById('ask').disabled")
        assert page.text_content("#error") == ""
        expected = ask(client, question)
        assert page.text_content("#reply") == expected.choices[0].message.content
        usage = expected.usage
        assert page.text_content("#assistant-status") == (
            f"usage: {usage.prompt_tokens} tokens read, {usage.completion_tokens} in the reply"
        )
        shown = page.eval_on_selector_all(
            "#citations li",
            "items => items.map(i => [i.querySelector('.source').textContent, "
            "i.querySelector('.passage').textContent, i.querySelector('mark')?.textContent])",
        )
        answer = library.assistant.ask(question)
        cited = [
            [
                f"[{n}] "
                + (f"{c['title']} \u2014 " if c["title"] else "")
                + f"{c['doc_id']} [{c['start']}:{c['end']}]",
                c["text"],
                answer.answer,  # marked in its passage
            ]
            for n, c in enumerate(expected.model_extra["citations"], 1)
        ]
        assert shown == cited and len(cited) == (0 if answer.abstained else 1)
        shown_markup += sum("<" in source + passage for source, passage, _ in shown)
        # nothing but the page's own elements: no markup of a title, passage or answer became one
        tags = page.eval_on_selector_all("#assistant *", "elements => elements.map(e => e.tagName)")
        assert set(tags) <= {"LEGEND", "TEXTAREA", "BUTTON", "DIV", "OL", "LI", "MARK"}, tags
    assert shown_markup > 0  # hostile titles or passages were on the page, as text
    page.wait_for_timeout(200)  # time for an image error or svg load to fire, had there been one
    assert page.evaluate("window.xssRuns") is None
    # the same markup does run where it is parsed: the check above can fail
    with fresh_page(browser) as bare:
        bare.set_content("<div>" + DOCUMENTS[1]["title"] + DOCUMENTS[5]["text"] + "</div>")
        bare.wait_for_function("() => window.xssRuns === 2")
