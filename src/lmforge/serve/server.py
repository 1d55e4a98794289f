"""Running the application under uvicorn: in the foreground (`lmforge serve`) or in a background thread on a
socket bound by the caller (`BackgroundServer`: tests, notebooks, benchmarks — port 0 picks a free port)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from lmforge.errors import LmforgeError
from lmforge.serve.app import Settings, create_app
from lmforge.serve.metrics import Metrics
from lmforge.serve.models import ModelSpec, Registry, SearchSpec


def build(
    specs: list[ModelSpec],
    settings: Settings,
    *,
    max_batch: int = 16,
    max_queue: int = 64,
    search: SearchSpec | None = None,
):
    """(ASGI app, registry) for `specs` (and an index, with `search`); call registry.load() to load them."""
    metrics = Metrics()
    options = {"max_batch": max_batch, "max_queue": max_queue, "on_sample": metrics.sample}
    registry = Registry(specs, options, search)
    return create_app(registry, settings, metrics), registry


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise LmforgeError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
    sock.listen(2048)
    return sock


def uvicorn_config(app, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off", timeout_keep_alive=5)


def run(app, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve until interrupted (Ctrl-C)."""
    server = uvicorn.Server(uvicorn_config(app, log_level))
    server.run(sockets=[sock])


class BackgroundServer:
    """An app served on 127.0.0.1 (a free port by default) from a daemon thread; a context manager.

    with BackgroundServer(app) as server:
        httpx.get(server.url + "/health")
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 30.0):
        self.sock = bind(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        self.url = f"http://{host}:{self.port}"
        self.server = uvicorn.Server(uvicorn_config(app))
        self.server.install_signal_handlers = lambda: None  # not the main thread
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + start_timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise LmforgeError(f"the server on {self.url} did not start within {start_timeout} s")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
