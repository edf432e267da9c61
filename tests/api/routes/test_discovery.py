from __future__ import annotations

import json
import socket

import pytest
import redis

from workers.job_store import WORKER_KEY_PREFIX

pytestmark = pytest.mark.slow


def test_device_information_names_the_shipped_trained_models(api) -> None:
    from pipeline.models.bundle import SHIPPED_BUNDLES, load_bundle

    info = api.get("/device-information").json()
    assert info["name"] == "dermq" and info["version"]
    by_task = {m["task"]: m for m in info["models"]}
    for task in ("classification", "segmentation"):
        shipped = load_bundle(SHIPPED_BUNDLES[task]).manifest
        assert by_task[task]["trained"] is True
        assert (by_task[task]["name"], by_task[task]["sha256"]) == (shipped.name, shipped.weights_sha256)
    assert info["workerCount"] == len(info["workers"]) >= 1
    assert info["workers"][0]["device"] == "cpu"


def test_device_information_does_not_tell_clients_where_workers_run(service, api, redis_client: redis.Redis) -> None:
    keys = list(redis_client.scan_iter(WORKER_KEY_PREFIX + "*"))
    heartbeats = [json.loads(v) for v in redis_client.mget(keys) if v]
    assert heartbeats, "the worker's heartbeat names its host and pid"
    text = api.get("/device-information").text
    for beat in heartbeats:
        assert beat["worker"] not in text
    assert f'"{socket.gethostname()}' not in text, "no string starts with the host name"
    for worker in json.loads(text)["workers"]:
        assert set(worker) <= {"device", "version", "models", "modelError"}
