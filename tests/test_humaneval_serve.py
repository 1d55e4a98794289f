"""The collection server over real HTTP on 127.0.0.1: what the browser gets never names a system, unknown tokens
reveal nothing, wrong judgments get clear 4xx answers, ten raters at once lose nothing and store nothing
twice, and a server killed with SIGKILL keeps every judgment it acknowledged."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install lmforge[serve])")

from lmforge.humaneval import Study, create_study  # noqa: E402
from lmforge.humaneval.app import create_app  # noqa: E402
from lmforge.serve import BackgroundServer  # noqa: E402

SYSTEMS = ("sysalpha", "sysbeta", "sysgamma")  # names no output text contains
RATINGS = {"fluency": [4, 3], "adequacy": [5, 2]}


def make_study(path: Path, *, items: int = 6, raters: int = 3, per_item: int = 2) -> Study:
    outputs = {s: [f"output {i} number {k}" for i in range(items)] for k, s in enumerate(SYSTEMS)}
    return create_study(
        path,
        name="http",
        outputs=outputs,
        sources=[f"source sentence {i}" for i in range(items)],
        references=[[f"reference sentence {i}"] for i in range(items)],
        raters=raters,
        per_item=per_item,
    )


@pytest.fixture
def served(tmp_path):
    study = make_study(tmp_path / "s.db")
    server = BackgroundServer(create_app(study))
    try:
        yield server, study
    finally:
        server.stop()
        study.close()


def answer(client, url, token, item, key, **extra):
    body = {"assignment": item["assignment"], "key": key, "choice": "tie", "ratings": RATINGS, **extra}
    return client.post(f"{url}/api/r/{token}/judgments", json=body)


def test_a_rater_walks_through_and_no_response_names_a_system(served):
    server, study = served
    rater, token = next(iter(study.raters().items()))
    seen = []
    with httpx.Client(timeout=30) as client:
        for path in (f"/r/{token}", "/static/rate.js", "/static/rate.css"):
            response = client.get(server.url + path)
            assert response.status_code == 200
            assert response.headers["content-security-policy"].startswith("default-src 'none'")
            assert response.headers["referrer-policy"] == "no-referrer"
            seen.append(response)
        state = client.get(f"{server.url}/api/r/{token}/next").json()
        total = state["progress"]["total"]
        for step in range(total):
            assert state["progress"] == {"answered": step, "total": total}
            assert set(state["item"]) == {"assignment", "source", "outputs"}
            response = answer(client, server.url, token, state["item"], f"key-{step:08d}")
            assert response.status_code == 200, response.text
            seen.append(response)
            state = response.json()
            assert state["stored"] is True
        assert state["item"] is None and state["progress"]["answered"] == total
    assert len(study.judgments()) == total and {j["rater"] for j in study.judgments()} == {rater}
    for response in seen:
        text = (response.text + str(response.headers)).lower()
        for system in (*SYSTEMS, "(reference)", "check-"):
            assert system not in text, (system, response.request.url)
    assert "127.0.0.1" not in Path(study.path).read_bytes().decode("latin-1")  # no address stored


def test_unknown_tokens_and_wrong_judgments_get_clear_answers(served):
    server, study = served
    (first, token), (_, other_token) = list(study.raters().items())[:2]
    with httpx.Client(timeout=30) as client:
        nowhere = client.get(server.url + "/no/such/path")
        for path in ("/r/not-a-token", "/api/r/not-a-token/next"):
            response = client.get(server.url + path)
            assert response.status_code == 404 and response.text == nowhere.text
        response = client.post(server.url + "/api/r/not-a-token/judgments", json={"assignment": 1})
        assert response.status_code == 404 and response.text == nowhere.text

        theirs = client.get(f"{server.url}/api/r/{other_token}/next").json()["item"]
        response = answer(client, server.url, token, theirs, "key-00000001")
        assert response.status_code == 403
        assert response.json() == {
            "detail": f"assignment {theirs['assignment']} is not one of this rater's items"
        }
        mine = client.get(f"{server.url}/api/r/{token}/next").json()["item"]
        for body, status, detail in [
            (
                {"assignment": mine["assignment"], "key": "key-00000002", "choice": "tie"},
                422,
                "ratings: give exactly",
            ),
            ({"key": "key-00000002"}, 422, "assignment: the item's number is required"),
            (
                {"assignment": mine["assignment"], "key": "k", "choice": "tie", "ratings": RATINGS},
                422,
                "key:",
            ),
            ([1, 2], 422, "the body must be a JSON object"),
        ]:
            response = client.post(f"{server.url}/api/r/{token}/judgments", json=body)
            assert response.status_code == status and response.json()["detail"].startswith(detail), (
                response.text
            )
        response = client.post(f"{server.url}/api/r/{token}/judgments", content=b"{not json")
        assert response.status_code == 400
        assert answer(client, server.url, token, mine, "key-00000003").status_code == 200
        retry = answer(client, server.url, token, mine, "key-00000003")  # the same request again
        assert retry.status_code == 200 and retry.json()["stored"] is False
        late = answer(client, server.url, token, mine, "key-00000004")  # another key, same item
        assert late.status_code == 409 and "answered already" in late.json()["detail"]
    assert len(study.judgments()) == 1


def test_ten_raters_at_once_lose_nothing_and_store_nothing_twice(tmp_path):
    study = make_study(tmp_path / "s.db", items=5, raters=10, per_item=4)
    acknowledged: dict[str, set[int]] = {}
    errors: list[str] = []

    def rater_loop(rater: str, token: str, url: str) -> None:
        mine = acknowledged.setdefault(rater, set())
        with httpx.Client(timeout=60) as client:
            state = client.get(f"{url}/api/r/{token}/next").json()
            for step in range(200):  # bounded: far more than any rater's items
                if state["item"] is None:
                    return
                key = f"{rater}-{step:06d}"
                first = answer(client, url, token, state["item"], key)
                second = answer(client, url, token, state["item"], key)  # a double click
                if first.status_code != 200 or second.status_code != 200:
                    errors.append(f"{rater}: {first.status_code} {second.status_code} {second.text}")
                    return
                if [first.json()["stored"], second.json()["stored"]] != [True, False]:
                    errors.append(f"{rater}: stored {first.json()['stored']}, {second.json()['stored']}")
                mine.add(state["item"]["assignment"])
                state = second.json()
            errors.append(f"{rater}: did not finish")

    with BackgroundServer(create_app(study)) as server:
        threads = [
            threading.Thread(target=rater_loop, args=(rater, token, server.url))
            for rater, token in study.raters().items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    rows = study.connection.execute("SELECT assignment_id FROM judgments").fetchall()
    stored = [row[0] for row in rows]
    assert len(stored) == len(set(stored)) == len(study.assignments())
    assert set(stored) == set().union(*acknowledged.values())
    study.close()


def test_a_killed_server_keeps_every_acknowledged_judgment(tmp_path):
    path = tmp_path / "s.db"
    make_study(path, items=10, raters=2, per_item=2).close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    process = subprocess.Popen(
        [sys.executable, "-m", "lmforge", "humaneval", "serve", "--study", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    acknowledged: list[str] = []
    try:
        links = []
        deadline = time.monotonic() + 120
        while len(links) < 2 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            links += re.findall(r"(http://127\.0\.0\.1:\d+)/r/(\S+)", line)
        assert len(links) == 2, "the server printed no links"
        url, token = links[0]
        stop = threading.Event()

        def keep_answering() -> None:
            with httpx.Client(timeout=30) as client:
                state = client.get(f"{url}/api/r/{token}/next").json()
                step = 0
                while state["item"] is not None and not stop.is_set():
                    key = f"kill-{step:06d}"
                    try:
                        response = answer(client, url, token, state["item"], key)
                    except httpx.HTTPError:
                        return  # the server died mid-request: not acknowledged
                    if response.status_code != 200:
                        return
                    acknowledged.append(key)
                    state = response.json()
                    step += 1

        worker = threading.Thread(target=keep_answering)
        worker.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 5 and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)  # mid-way: the worker is still answering
        process.wait(30)
        stop.set()
        worker.join(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        process.stdout.close()
    assert 5 <= len(acknowledged) < 20
    with Study(path) as study:
        keys = {row[0] for row in study.connection.execute("SELECT idempotency_key FROM judgments")}
    assert set(acknowledged) <= keys
    assert len(keys) <= len(acknowledged) + 1  # at most the one in flight when it died
