"""While Redis (job store and broker) or the object store is away, the API answers 503 with Retry-After, never 500.

Only the API process runs, as `dermq up` starts it: first pointed at a port where no
Redis listens, then at an S3 endpoint where nothing listens (Redis up). Each route
that reads or writes the missing part must say "unavailable, come back", in the
API's error shape; routes that need neither keep answering.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from core.jobs import Job, JobStatus
from api.security import issue_token
from dermq.embedded import EmbeddedStack, ensure_dev_account, free_port
from core.settings import Settings
from support import JWT_SECRET, SAMPLE_IMAGES, SERVICE_ENV, attachment
from workers.job_store import RedisJobStore, new_id, utcnow

MISSING_ID = "00000000-0000-0000-0000-000000000000"
PAYLOAD = {"payload": [attachment(SAMPLE_IMAGES[0])]}
ASYNC = {"Prefer": "respond-async"}


@contextmanager
def api_only(data_dir: Path, redis_url: str, **env: str) -> Iterator[tuple[httpx.Client, str]]:
    """The API process alone, and a client holding a token (minted here: /login itself needs Redis)."""
    settings = Settings(data_dir=data_dir, redis_url=redis_url, jwt_secret=JWT_SECRET)
    username, _ = ensure_dev_account(settings)
    with EmbeddedStack(settings, port=free_port(), workers=0, env={**SERVICE_ENV, **env}, quiet=True) as stack:
        token = issue_token(settings, username)
        with httpx.Client(base_url=stack.url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
            yield client, username


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.request.method, response.request.url.path, response.text)
    assert int(response.headers["Retry-After"]) > 0
    [item] = response.json()["detail"]
    assert item["type"] == "unavailable" and isinstance(item["loc"], list) and item["msg"], item


@pytest.fixture(scope="module")
def without_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with api_only(tmp_path_factory.mktemp("no-redis"), f"redis://127.0.0.1:{free_port()}/0") as (client, _):
        yield client


# (method, path, request keywords): every route that touches Redis.
REDIS_ROUTES = [
    ("GET", "/jobs", {}),
    ("GET", f"/jobs/{MISSING_ID}", {}),
    ("GET", f"/jobs/{MISSING_ID}/result", {}),
    ("DELETE", f"/jobs/{MISSING_ID}", {}),
    ("GET", f"/batches/{MISSING_ID}", {}),
    ("GET", f"/batches/{MISSING_ID}/results", {}),
    ("GET", "/device-information", {}),
    ("POST", "/diagnosis-support", {"json": PAYLOAD, "headers": ASYNC}),
    ("POST", "/diagnosis-support", {"json": PAYLOAD, "headers": {**ASYNC, "Idempotency-Key": "outage-1"}}),
    ("POST", "/diagnosis-support", {"json": PAYLOAD}),  # synchronous: fails at submission, not while waiting
    ("POST", "/batches", {"json": {"items": [{"kind": "diagnosis-support", "body": PAYLOAD}]}}),
    ("POST", "/login", {"data": {"username": "dev", "password": "whatever-it-is"}}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), REDIS_ROUTES,
                         ids=[f"{m} {p.replace(MISSING_ID, '{id}')}" for m, p, _ in REDIS_ROUTES])
def test_routes_answer_503_while_redis_is_down(without_redis: httpx.Client, method: str, path: str,
                                               kwargs: dict) -> None:
    assert_unavailable(without_redis.request(method, path, **kwargs))


def test_readiness_names_redis_and_other_routes_keep_answering(without_redis: httpx.Client) -> None:
    ready = without_redis.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["jobStore"].startswith("unavailable")
    assert without_redis.get("/healthz").json() == {"status": "ok"}
    assert without_redis.get("/conditions").status_code == 200
    assert without_redis.get("/metrics").status_code == 200, "a scrape must not fail because Redis is away"


def test_a_result_answers_503_while_the_object_store_is_unreachable(redis_url: str, tmp_path: Path) -> None:
    dead_s3 = f"127.0.0.1:{free_port()}"
    with api_only(tmp_path, redis_url, DERMQ_STORAGE_BACKEND="s3", DERMQ_S3_ENDPOINT=dead_s3) as (client, user):
        job_id = new_id()  # a finished job whose report sits in the store that is now away
        RedisJobStore.from_url(redis_url, ttl_s=3600).create(Job(
            id=job_id, client=user, kind="diagnosis-support", status=JobStatus.succeeded, created_at=utcnow(),
            queue="dermq.batch", spec={"images": []}, result_key=f"results/{user}/{job_id}.json"))
        assert client.get(f"/jobs/{job_id}").json()["status"] == "succeeded", "the record itself is readable"
        assert_unavailable(client.get(f"/jobs/{job_id}/result"))
        assert_unavailable(client.post("/diagnosis-support", json=PAYLOAD, headers=ASYNC))
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["storage"].startswith("unavailable")
