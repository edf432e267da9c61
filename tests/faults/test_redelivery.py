"""Fault suite: jobs that outlive the broker's visibility timeout run once.

With a 1 s visibility timeout the broker hands running jobs to the other worker
again; the lease makes every such duplicate a no-op (logged "delivery dropped
(leased)"): each job has one run, no lost worker counted, one stored result.
"""

from __future__ import annotations

import time
from typing import Iterator

import pytest
import redis

from support import SAMPLE_IMAGES, Service, attachment, own_database, running_service

pytestmark = pytest.mark.slow

JOBS = 3


@pytest.fixture(scope="module")
def short_visibility(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    url = own_database(redis_url, 9)
    with running_service(url, tmp_path_factory.mktemp("redelivery-data"), workers=2,
                         DERMQ_VISIBILITY_TIMEOUT_S="1", DERMQ_WORKER_CONCURRENCY="1",
                         DERMQ_BATCH_MAX_SIZE="1") as svc:
        yield svc


def test_jobs_are_not_run_twice_when_the_broker_redelivers_them(short_visibility: Service) -> None:
    with short_visibility.client() as api:
        payload = {"payload": [attachment(p) for p in SAMPLE_IMAGES[:16]]}
        ids = [api.post("/diagnosis-support", json=payload, headers={"Prefer": "respond-async"}).json()["id"]
               for _ in range(JOBS)]
        deadline = time.monotonic() + 120
        while (jobs := [api.get(f"/jobs/{i}").json() for i in ids]) and any(
                j["status"] in ("queued", "running") for j in jobs):
            assert time.monotonic() < deadline, jobs
            time.sleep(0.25)
        records = redis.Redis.from_url(short_visibility.stack.redis_url, decode_responses=True)
        results = short_visibility.settings.effective_storage_dir / "results" / short_visibility.username
        for job in jobs:
            assert job["status"] == "succeeded" and job["attempts"] == 1, job
            assert int(records.hget(f"dermq:job:{job['id']}", "lost") or 0) == 0
            assert len(list((results / job["id"]).glob("*.json"))) == 1
