"""Prometheus metrics of the API process: request latency, plus queue depth and jobs by status read at scrape time."""

from __future__ import annotations

import logging
import time
from typing import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request

from workers.client import JobClient

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


class LatencyMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        route = _route_template(request)
        request.app.state.metrics.latency.labels(request.method, route, str(response.status_code)).observe(
            time.perf_counter() - start
        )
        return response


def _route_template(request: Request) -> str:
    # Label by template (/jobs/{job_id}), never by raw path: ids would explode the series count.
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"
