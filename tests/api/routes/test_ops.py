from __future__ import annotations

import httpx
import pytest

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


def test_device_information_names_the_shipped_trained_models(api) -> None:
    from pipeline.models.bundle import SHIPPED_BUNDLES, load_bundle

    info = api.get("/device-information").json()
    assert info["name"] == "dermq" and info["version"]
    by_task = {m["task"]: m for m in info["models"]}
    for task in ("classification", "segmentation"):
        shipped = load_bundle(SHIPPED_BUNDLES[task]).manifest
        assert by_task[task]["trained"] is True
        assert (by_task[task]["name"], by_task[task]["sha256"]) == (shipped.name, shipped.weights_sha256)
    assert info["workers"][0]["device"] == "cpu"


def test_conditions_catalogue(api) -> None:
    conditions = api.get("/conditions").json()
    assert len(conditions) >= 100
    assert {"code", "display", "text", "flags"} <= set(conditions[0])
