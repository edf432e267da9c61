"""The event-loop job reader answers exactly what the job client's synchronous read does, on a real Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from api.job_reader import JobReader
from api.services import Services
from dermq.settings import Settings
from workers.jobs import Job, JobStatus, new_id


@pytest.fixture()
def services(redis_url: str, tmp_path: Path) -> Services:
    return Services.build(Settings(data_dir=tmp_path, redis_url=redis_url))


def _job(client: str) -> Job:
    return Job(id=new_id(), client=client, kind="diagnosis-support", status=JobStatus.queued, created_at=time.time(),
               queue="dermq.batch", spec={"images": []}, total=1, batch_id=new_id(), reference="ref-1")


async def _reads(reader: JobReader, *calls: tuple[str, str]) -> list[Job | None]:
    try:
        return [await reader.get(client, job_id) for client, job_id in calls]
    finally:
        await reader.aclose()


def test_reads_match_the_synchronous_client(services: Services) -> None:
    jobs = services.jobs
    job = _job("clinic-a")
    jobs.jobs.create(job)
    reader = JobReader(jobs)
    own, others, missing = asyncio.run(
        _reads(reader, ("clinic-a", job.id), ("clinic-b", job.id), ("clinic-a", new_id())))
    assert own == jobs.get("clinic-a", job.id) and own is not None and own.public() == job.public()
    assert others is None and jobs.get("clinic-b", job.id) is None, "another client's job reads as absent"
    assert missing is None

    # A fresh read every time, on a new event loop too (each loop gets its own connections).
    jobs.jobs.finish(job.id, JobStatus.cancelled, error="cancelled by the client")
    [after] = asyncio.run(_reads(reader, ("clinic-a", job.id)))
    assert after is not None and after.status is JobStatus.cancelled and after == jobs.get("clinic-a", job.id)
