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

from dermq.embedded import EmbeddedStack, ensure_dev_account, free_port, redis_server_binary, wait_for
from dermq.settings import Settings
from support import JWT_SECRET, OTHER_PASSWORD, OTHER_USER, Service, TEST_DB, redis_answers

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
    data_dir = tmp_path_factory.mktemp("dermq-data")
    env = {
        "DERMQ_JWT_SECRET": JWT_SECRET,
        "DERMQ_WORKER_METRICS_PORT": "0",
        "DERMQ_VISIBILITY_TIMEOUT_S": "10",
        "DERMQ_SYNC_TIMEOUT_S": "60",
        "DERMQ_MAX_IMAGE_BYTES": "3000000",
        "DERMQ_MAX_IMAGE_PIXELS": "6000000",
        "DERMQ_MAX_IMAGES_PER_REQUEST": "16",
        "DERMQ_MAX_BATCH_ITEMS": "64",
    }
    settings = Settings(data_dir=data_dir, redis_url=redis_url, jwt_secret=JWT_SECRET)
    username, password = ensure_dev_account(settings)
    from api.accounts import AccountStore

    AccountStore(settings.effective_accounts_file).add(OTHER_USER, OTHER_PASSWORD)
    stack = EmbeddedStack(settings, port=free_port(), env=env, quiet=True)
    stack.start()
    try:
        stack.wait_for_workers()
        yield Service(stack, username, password)
    finally:
        stack.stop()
        for log in sorted((data_dir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace")[-3000:]
            print(f"----- {log.name} (tail) -----\n{tail}")


@pytest.fixture()
def api(service: Service) -> Iterator[httpx.Client]:
    with service.client() as client:
        yield client
