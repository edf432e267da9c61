"""Fault suite: the object store refuses every write for 10 s while a batch runs.

The store's directory is made immutable (`chattr +i`, which binds root too), so
each result write fails with EPERM, as with a read-only or full volume. Every
job must be retried through Celery's backoff and succeed once the store is
back: none failed, none left running, no half-written object. A submission
during the outage answers 503 with Retry-After and leaves nothing behind.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from support import SAMPLE_IMAGES, Service, attachment, own_database, running_service

pytestmark = pytest.mark.slow

JOBS = 8
OUTAGE_S = 10


def chattr(flag: str, root: Path) -> bool:
    return subprocess.run(["chattr", "-R", flag, str(root)], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    url = own_database(redis_url, 10)
    with running_service(url, tmp_path_factory.mktemp("outage-data"), DERMQ_WORKER_CONCURRENCY="2") as svc:
        yield svc


def test_an_unwritable_store_strands_no_job(stack: Service) -> None:
    root = stack.settings.effective_storage_dir
    with stack.client() as api:
        ids = [api.post("/diagnosis-support", json={"payload": [attachment(SAMPLE_IMAGES[i])]},
                        headers={"Prefer": "respond-async"}).json()["id"] for i in range(JOBS)]
        if not chattr("+i", root):
            pytest.skip("chattr +i is not available on this filesystem")
        try:
            refused = api.post("/diagnosis-support", json={"payload": [attachment(SAMPLE_IMAGES[JOBS])]},
                               headers={"Prefer": "respond-async"})
            assert refused.status_code == 503 and refused.headers["Retry-After"], refused.text
            time.sleep(OUTAGE_S)
            during = [api.get(f"/jobs/{i}").json() for i in ids]
        finally:
            assert chattr("-i", root)
        assert any(j["status"] in ("queued", "running") for j in during), "the outage should have held jobs back"

        deadline = time.monotonic() + 120
        while (jobs := [api.get(f"/jobs/{i}").json() for i in ids]) and any(
                j["status"] in ("queued", "running") for j in jobs):
            assert time.monotonic() < deadline, [j for j in jobs if j["status"] in ("queued", "running")]
            time.sleep(0.5)
        assert [j["status"] for j in jobs] == ["succeeded"] * JOBS, [j["error"] for j in jobs]
        for job in jobs:
            assert api.get(f"/jobs/{job['id']}/result").json()["resourceType"] == "DiagnosticReport"
        total = api.get("/jobs", params={"limit": 100}).json()["total"]
        assert total == JOBS, "the refused submission left a job record behind"
    leftovers = [p for p in root.rglob("*") if p.is_file() and "~tmp~" in p.name]
    assert leftovers == [], "half-written objects"
