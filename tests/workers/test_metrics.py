"""Worker metrics: served on loopback unless configured, and a taken port does not stop the worker."""

from __future__ import annotations

import logging

import httpx
import pytest

from dermq.embedded import free_port
from workers import metrics


def test_metrics_listen_on_loopback_by_default() -> None:
    server = metrics.serve(free_port())
    assert server is not None
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        metrics.JOBS_FINISHED.labels(kind="diagnosis-support", status="succeeded").inc()
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert 'dermq_worker_jobs_total{kind="diagnosis-support",status="succeeded"}' in text
    finally:
        server.shutdown()
        server.server_close()


def test_a_configured_address_is_used() -> None:
    server = metrics.serve(free_port(), "0.0.0.0")
    assert server is not None
    try:
        assert server.server_address[0] == "0.0.0.0"
    finally:
        server.shutdown()
        server.server_close()


def test_a_taken_port_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    first = metrics.serve(free_port())
    assert first is not None
    try:
        with caplog.at_level(logging.WARNING, logger="workers.metrics"):
            assert metrics.serve(first.server_address[1]) is None
        assert "unavailable" in caplog.text
    finally:
        first.shutdown()
        first.server_close()
