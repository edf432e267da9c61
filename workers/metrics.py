"""Prometheus metrics a worker process exports on DERMQ_WORKER_METRICS_HOST:DERMQ_WORKER_METRICS_PORT."""

from __future__ import annotations

import logging
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Histogram, start_http_server

log = logging.getLogger(__name__)

STAGE_SECONDS = Histogram(
    "dermq_worker_stage_seconds",
    "Pipeline stage latency per job.",
    ["kind", "stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# By task: the classifier and the segmenter each have their own dynamic batcher.
BATCH_SIZE = Histogram(
    "dermq_worker_batch_size", "Images per model call.", ["task"], buckets=(1, 2, 4, 8, 16, 32, 64)
)
BATCH_SECONDS = Histogram(
    "dermq_worker_batch_seconds", "Model call latency per batch.", ["task"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
JOBS_FINISHED = Counter("dermq_worker_jobs_total", "Jobs finished by this worker.", ["kind", "status"])


def batch_observer(task: str) -> Callable[[int, float], None]:
    """The `on_batch` hook of a task's batcher: its batch sizes and model-call latencies."""
    size, seconds = BATCH_SIZE.labels(task), BATCH_SECONDS.labels(task)

    def observe(count: int, elapsed: float) -> None:
        size.observe(count)
        seconds.observe(elapsed)

    return observe


def serve(port: int, host: str = "127.0.0.1") -> WSGIServer | None:
    """Serve /metrics from a daemon thread; loopback unless told otherwise (the figures are not for everyone)."""
    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as exc:  # several workers on one host: only the first gets the port
        log.warning("worker metrics port %s:%s unavailable: %s", host, port, exc)
        return None
    return server
