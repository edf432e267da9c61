from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from dermq.embedded import EmbeddedStack, free_port
from core.settings import Settings

pytestmark = pytest.mark.slow


def test_health_and_readiness(service) -> None:
    assert httpx.get(f"{service.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{service.url}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"broker": "ok", "jobStore": "ok", "storage": "ok"}


def test_metrics_exposes_latency_queue_depth_and_jobs(service, api) -> None:
    api.get("/jobs")
    text = httpx.get(f"{service.url}/metrics").text
    assert 'dermq_http_request_seconds_count{method="GET",route="/jobs",status="200"}' in text
    assert 'dermq_queue_depth{queue="dermq.interactive"}' in text
    assert 'dermq_jobs{status="succeeded"}' in text
    assert "dermq_workers" in text


def test_metrics_token_guards_metrics(redis_url: str, tmp_path: Path) -> None:
    token = "scrape-token-" + "m" * 24
    stack = EmbeddedStack(Settings(data_dir=tmp_path, redis_url=redis_url), port=free_port(), workers=0, quiet=True,
                          env={"DERMQ_METRICS_TOKEN": token})
    with stack:
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {token}"},
                        {"Authorization": f"Bearer {token}x"}):
            r = httpx.get(f"{stack.url}/metrics", headers=headers)
            assert r.status_code == 401 and r.json()["detail"][0]["type"] == "unauthorized", headers
            assert r.headers["www-authenticate"] == "Bearer"
        r = httpx.get(f"{stack.url}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and "dermq_queue_depth" in r.text
        assert httpx.get(f"{stack.url}/healthz").status_code == 200, "only /metrics is guarded"


def test_conditions_catalogue(api) -> None:
    conditions = api.get("/conditions").json()
    assert len(conditions) >= 100
    assert {"code", "display", "text", "flags"} <= set(conditions[0])
