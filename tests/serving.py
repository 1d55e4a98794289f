"""The test harness for lmforge's HTTP applications: a real uvicorn on 127.0.0.1 on a free port, in a thread of
the test process, and the check of OpenAI's error envelope. For the server's tests and the later pages (search,
human evaluation, analysis).

    with served({"gpt": model_dir}, api_key="k") as server:
        OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)...
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install lmforge[serve])")

from lmforge.serve import BackgroundServer, Settings, build, parse_specs  # noqa: E402


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
