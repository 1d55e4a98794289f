"""`/metrics` in Prometheus' text format: requests by endpoint and status, prompt and completion tokens,
queue depth and running batch per model (read from each engine when scraped), and histograms of request
duration, time to first token, per-token latency and queue time (the engines' `on_sample` hook).

Each server has its own registry (not prometheus_client's global one), so several apps can live in one
process (the tests start several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
SAMPLES = {  # the engine's on_sample names → histogram name and help
    "time_to_first_token": ("lmforge_time_to_first_token_seconds", "submit to the first generated token"),
    "token_latency": ("lmforge_token_latency_seconds", "time between two tokens of one request"),
    "queue_time": ("lmforge_queue_time_seconds", "submit to admission into the running batch"),
}


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lmforge_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "lmforge_request_duration_seconds",
            "HTTP request time, to the end of the response (streams included)",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.prompt_tokens = Counter(
            "lmforge_prompt_tokens", "prompt tokens read", ["model"], registry=self.registry
        )
        self.completion_tokens = Counter(
            "lmforge_completion_tokens", "tokens generated", ["model"], registry=self.registry
        )
        self.samples = {
            key: Histogram(name, text, ["model"], buckets=LATENCY_BUCKETS, registry=self.registry)
            for key, (name, text) in SAMPLES.items()
        }
        self._models = None

    def watch(self, models_registry) -> None:
        """Export the queue depth and running batch of `models_registry`'s engines."""
        self._models = models_registry
        self.registry.register(_EngineGauges(models_registry))

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.duration.labels(endpoint).observe(seconds)

    def tokens(self, model: str, prompt: int, completion: int) -> None:
        self.prompt_tokens.labels(model).inc(prompt)
        self.completion_tokens.labels(model).inc(completion)

    def sample(self, model: str, name: str, seconds: float) -> None:
        histogram = self.samples.get(name)
        if histogram is not None:
            histogram.labels(model).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _EngineGauges:
    """A collector that reads every engine's stats when scraped."""

    def __init__(self, models_registry):
        self.models_registry = models_registry

    def collect(self):
        depth = GaugeMetricFamily("lmforge_queue_depth", "requests waiting for a slot", labels=["model"])
        running = GaugeMetricFamily(
            "lmforge_running_batch", "sequences in the running batch", labels=["model"]
        )
        for name, served in list(self.models_registry.models.items()):
            if served.engine is not None:
                stats = served.engine.stats()
                depth.add_metric([name], stats.queue_depth)
                running.add_metric([name], stats.running)
        yield depth
        yield running

    def describe(self):
        return []
