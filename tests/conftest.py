"""Shared fixtures: a real Redis, and the whole service (API + worker processes) over HTTP.

Redis: the one at DERMQ_TEST_REDIS_URL, else 127.0.0.1:6379 if it answers, else
an embedded redis-server started here (as `dermq up` would). A dedicated
database number is flushed at the start so runs do not see each other's keys.
"""

from __future__ import annotations

import os
import subprocess
from typing import Iterator

import httpx
import pytest
import redis

from dermq.embedded import free_port, redis_server_binary, wait_for
from support import TEST_DB, Service, redis_answers, running_service

@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("DERMQ_TEST_REDIS_URL") or f"redis://127.0.0.1:6379/{TEST_DB}"
    proc = None
    if not redis_answers(url):
        port = free_port()
        workdir = tmp_path_factory.mktemp("redis")
        proc = subprocess.Popen(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/{TEST_DB}"
        wait_for(lambda: redis_answers(url), 20, "test redis-server", proc)
    redis.Redis.from_url(url).flushdb()
    yield url
    if proc is not None:
        proc.terminate()
        proc.wait(10)


@pytest.fixture()
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


@pytest.fixture(scope="session")
def service(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(redis_url, tmp_path_factory.mktemp("dermq-data")) as svc:
        yield svc


@pytest.fixture()
def api(service: Service) -> Iterator[httpx.Client]:
    with service.client() as client:
        yield client
