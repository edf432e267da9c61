"""Prometheus metrics of the API process: request latency, plus queue depth and jobs by status read at scrape time."""

from __future__ import annotations

import logging
import time
from typing import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workers.job_client import JobClient

log = logging.getLogger(__name__)


class JobSystemCollector:
    def __init__(self, jobs: JobClient):
        self.jobs = jobs

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("dermq_queue_depth", "Tasks waiting in the broker per queue.", labels=["queue"])
        by_status = GaugeMetricFamily("dermq_jobs", "Job records by status.", labels=["status"])
        workers = GaugeMetricFamily("dermq_workers", "Workers that sent a heartbeat recently.")
        try:
            for queue, n in self.jobs.queue_depths().items():
                depth.add_metric([queue], n)
            for status, n in self.jobs.jobs.status_counts().items():
                by_status.add_metric([status], n)
            workers.add_metric([], len(self.jobs.workers()))
        except Exception as exc:  # a scrape must not fail because Redis blinked
            log.warning("metrics collection failed: %s", exc)
        yield depth
        yield by_status
        yield workers


class Metrics:
    def __init__(self, jobs: JobClient):
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "dermq_http_request_seconds", "HTTP request latency.", ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.registry.register(JobSystemCollector(jobs))


class LatencyMiddleware:
    """Observes each HTTP request's latency, up to its last body byte.

    Plain ASGI rather than BaseHTTPMiddleware, which runs every request in an
    extra task behind memory streams: a tenth of a job poll's CPU, per middleware.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.latency = metrics.latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server answers when the app fails before its response starts

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.latency.labels(scope["method"], _route_template(scope), str(status)).observe(
                time.perf_counter() - start
            )


def _route_template(scope: Scope) -> str:
    # Label by template (/jobs/{job_id}), never by raw path: ids would explode the series count.
    # The router writes the matched route into this same scope dict.
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
