"""The playground of `lmforge serve` in real Chromium (tests/browser.py), against one real server with an API
key: a prompt typed on the page streams the text the API gives for the same settings (greedy and seeded,
complete and chat), model output that is markup is shown as text and runs nothing, the key is asked for and
kept in the tab's session storage only, and an encoder model's similarity box gives the embeddings'
cosines."""

from __future__ import annotations

import contextlib
import re
import time

import numpy as np
import pytest

from browser import fresh_page
from serving import scripted_model, served, tiny_models, wait_until

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py

KEY = "sk-page-test-7f3a"
# what the scripted model says: if the page ever parsed it as HTML, the image would fail to load and its
# handler would count a run in window.xssRuns
MARKUP = '<img src=x onerror="window.xssRuns = (window.xssRuns || 0) + 1"><b>bold</b>'
TIMEOUT = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("page")
    models = tiny_models(root)
    models = {"gpt": models["gpt"], "bert": models["bert"], "markup": scripted_model(root / "markup", MARKUP)}
    with served(models, api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=TIMEOUT)


def open_with_key(page, server) -> None:
    """Open the playground and type the key as a user does (the models load when the field is left)."""
    page.goto(server.url + "/")
    page.fill("#key", KEY)
    page.press("#key", "Tab")
    page.wait_for_function("() => document.querySelectorAll('#model option').length === 3")


def run(page, *, model: str, mode: str, prompt: str, max_tokens: int, temperature: float = 0, seed=None):
    """Fill the generate box, press Send, wait for the usage line; returns (output text, status line,
    the non-empty pieces the output grew by)."""
    page.select_option("#model", model)
    page.check(f"input[name=mode][value={mode}]")
    page.fill("#temperature", str(temperature))
    page.fill("#max_tokens", str(max_tokens))
    page.fill("#seed", "" if seed is None else str(seed))
    page.fill("#prompt", prompt)
    page.click("#send")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('usage')")
    page.wait_for_function("() => !document.getElementById('send').disabled")
    assert page.text_content("#error") == ""
    pieces = page.eval_on_selector(
        "#output", "o => [...o.childNodes].map(n => n.textContent).filter(t => t.length > 0)"
    )
    return page.text_content("#output"), page.text_content("#status"), pieces


def test_a_typed_prompt_streams_what_the_api_gives(page, server, client):
    open_with_key(page, server)
    assert page.is_visible("#generate") and not page.is_visible("#similar")
    # the default leaves room for a prompt: at most half the model's context (the tiny models' are short)
    cards = {m.id: m.model_extra["lmforge"] for m in client.models.list().data}
    context = cards["gpt"]["context_length"]
    page.select_option("#model", "gpt")
    assert page.input_value("#max_tokens") == str(max(1, min(64, context // 2)))
    assert "context_length" not in cards["bert"]  # an encoder generates nothing
    # complete, greedy
    text, status, pieces = run(page, model="gpt", mode="complete", prompt="the cat", max_tokens=24)
    expected = client.completions.create(model="gpt", prompt="the cat", max_tokens=24, temperature=0)
    assert text == expected.choices[0].text and text.strip()
    assert len(pieces) > 1  # it arrived in pieces, appended as they came
    assert page.text_content("#echo") == "the cat"  # the completion is shown after its prompt
    usage = re.match(r"usage: (\d+) prompt \+ (\d+) completion tokens; [\d.]+ tokens/s$", status)
    assert usage, status
    assert (int(usage[1]), int(usage[2])) == (expected.usage.prompt_tokens, expected.usage.completion_tokens)
    # chat, sampled with a seed
    text, _, _ = run(page, model="gpt", mode="chat", prompt="Paris is", max_tokens=20, temperature=1, seed=5)
    messages = [{"role": "user", "content": "Paris is"}]
    expected = client.chat.completions.create(
        model="gpt", messages=messages, max_tokens=20, temperature=1, top_p=1, seed=5
    )
    assert text == expected.choices[0].message.content and text.strip()
    assert page.text_content("#echo") == ""
    other, _, _ = run(page, model="gpt", mode="chat", prompt="Paris is", max_tokens=20, temperature=1, seed=6)
    assert other != text  # the seed was sent: another seed samples another text


@contextlib.contextmanager
def planted(server, wrap):
    """The served GPT's forward replaced by `wrap(forward)` for the time of the block."""
    model = server.registry.models["gpt"].engine.model
    model.forward = wrap(model.forward)
    try:
        yield
    finally:
        del model.forward  # the class's own again


def start_completion(page, prompt: str, max_tokens: int) -> None:
    page.select_option("#model", "gpt")
    page.check("input[name=mode][value=complete]")
    page.fill("#max_tokens", str(max_tokens))
    page.fill("#prompt", prompt)
    page.click("#send")


def test_an_error_in_the_middle_of_a_stream_is_shown_as_the_servers_message(page, server):
    """A planted fault (as running out of memory would be) in the first decoding step, after the prefill
    streamed the first token: the page keeps what came and shows the server's message."""

    def faulty(forward):
        def step(input_ids, *args, **kwargs):
            if input_ids.shape[1] == 1:
                raise RuntimeError("planted fault")
            return forward(input_ids, *args, **kwargs)

        return step

    open_with_key(page, server)
    with planted(server, faulty):
        start_completion(page, "the cat", max_tokens=8)
        page.wait_for_function("() => !document.getElementById('send').disabled")
    assert "planted fault" in page.text_content("#error")
    assert page.text_content("#output") != "" and page.text_content("#status") == ""


def test_stop_ends_the_stream_and_the_server_frees_the_slot(page, server):
    def slow(forward):
        def step(*args, **kwargs):
            time.sleep(0.05)  # 50 tokens take 2.5 s: time to press Stop in the middle
            return forward(*args, **kwargs)

        return step

    open_with_key(page, server)
    engine = server.registry.models["gpt"].engine
    cancelled = engine.stats().finished.get("cancelled", 0)
    with planted(server, slow):
        start_completion(page, "the cat", max_tokens=50)
        page.wait_for_function("() => document.getElementById('output').textContent.length > 0")
        page.click("#stop")
        page.wait_for_function("() => !document.getElementById('send').disabled")
        assert wait_until(lambda: engine.stats().finished.get("cancelled", 0) == cancelled + 1)
    assert (
        page.text_content("#status") == "" and page.text_content("#error") == ""
    )  # no usage: it ended early
    assert page.is_disabled("#stop")


def test_model_output_is_shown_as_text_and_runs_nothing(page, server, browser):
    open_with_key(page, server)
    text, _, _ = run(page, model="markup", mode="complete", prompt="x", max_tokens=len(MARKUP) + 4)
    assert text == MARKUP
    assert page.eval_on_selector("#output", "o => o.querySelectorAll('*').length") == 0  # no element made
    page.wait_for_timeout(200)  # time for an image error to fire, had there been an image
    assert page.evaluate("window.xssRuns") is None
    # the page's policy would stop the handler even if the markup were parsed (defence in depth) ...
    page.eval_on_selector("#status", "(s, markup) => { s.innerHTML = markup; }", MARKUP)
    page.wait_for_timeout(200)
    assert page.evaluate("window.xssRuns") is None
    # ... while the same markup does run where no policy stops it: the check above can fail
    with fresh_page(browser) as bare:
        bare.set_content(f"<div>{MARKUP}</div>")
        bare.wait_for_function("() => window.xssRuns === 1")


def test_the_key_is_asked_for_and_kept_in_the_tabs_session_storage_only(page, server):
    page.goto(server.url + "/")
    page.wait_for_function("() => document.getElementById('error').textContent !== ''")
    assert "key" in page.text_content("#error").lower()  # 401: the page says so and lists no model
    assert page.eval_on_selector_all("#model option", "options => options.length") == 0
    assert page.get_attribute("#key", "type") == "password"
    page.fill("#key", "wrong")
    page.press("#key", "Tab")
    page.wait_for_function("() => document.getElementById('error').textContent !== ''")
    assert page.eval_on_selector_all("#model option", "options => options.length") == 0
    open_with_key(page, server)
    assert page.text_content("#error") == ""
    assert page.evaluate("sessionStorage.getItem('lmforge-key')") == KEY
    assert page.evaluate("localStorage.length") == 0 and page.evaluate("document.cookie") == ""
    # a reload of the tab keeps it: the models load without typing it again
    page.reload()
    page.wait_for_function("() => document.querySelectorAll('#model option').length === 3")
    assert page.input_value("#key") == KEY
    # the page itself never holds it: not in what the server sends, not in the document's markup
    served_html = httpx.get(server.url + "/", timeout=TIMEOUT).text
    assert KEY not in served_html and KEY not in page.content()
    # another tab has its own session storage: it asks again
    other = page.context.new_page()
    other.goto(server.url + "/")
    other.wait_for_function("() => document.getElementById('error').textContent !== ''")
    assert other.input_value("#key") == ""


def test_the_similarity_box_gives_the_cosines_of_the_embeddings(page, server, client):
    open_with_key(page, server)
    page.select_option("#model", "bert")
    assert page.is_visible("#similar") and not page.is_visible("#generate")
    sentences = ["the cat sat on the mat", "the dog sat on the log", "Paris is the capital of France"]
    page.fill("#sentences", "\n".join(sentences) + "\n\n")  # blank lines are dropped
    page.click("#compare")
    page.wait_for_function("() => document.querySelectorAll('#table tr').length === 4")
    rows = page.eval_on_selector_all(
        "#table tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert rows[0] == ["", "1", "2", "3"]
    assert [row[0] for row in rows[1:]] == [f"{i + 1}. {s}" for i, s in enumerate(sentences)]
    vectors = np.array([d.embedding for d in client.embeddings.create(model="bert", input=sentences).data])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    shown = np.array([[float(cell) for cell in row[1:]] for row in rows[1:]])
    np.testing.assert_allclose(shown, unit @ unit.T, atol=6e-4)  # shown to 3 decimals
    assert len({cell for row in rows[1:] for cell in row[1:]}) > 2  # the sentences differ
