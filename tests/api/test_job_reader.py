"""The event-loop job reader answers exactly what the job client's synchronous read does, on a real Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from core.jobs import Job, JobStatus
from api.job_reader import JobReader
from api.services import Services
from core.settings import Settings
from workers.job_store import new_id


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


def test_a_waiting_request_wakes_on_the_announcement_not_a_timer(services: Services) -> None:
    jobs = services.jobs
    job = _job("clinic-a")
    jobs.jobs.create(job)
    reader = JobReader(jobs)

    async def scenario() -> tuple[Job | None, float, Job | None, float]:
        loop = asyncio.get_running_loop()
        began = loop.time()
        # The end comes 0.3 s into the wait, from another thread, as a worker's would.
        loop.call_later(0.3, lambda: loop.run_in_executor(None, jobs.jobs.finish, job.id, JobStatus.cancelled))
        ended = await reader.wait("clinic-a", job.id, 30.0)
        woke = loop.time() - began
        other = _job("clinic-a")
        jobs.jobs.create(other)
        began = loop.time()
        unfinished = await reader.wait("clinic-a", other.id, 0.4)
        timed_out = loop.time() - began
        await reader.aclose()
        return ended, woke, unfinished, timed_out

    ended, woke, unfinished, timed_out = asyncio.run(scenario())
    assert ended is not None and ended.status is JobStatus.cancelled
    assert 0.3 <= woke < 1.0, woke  # at the announcement; the safety re-read would come after 5 s
    assert unfinished is None and 0.4 <= timed_out < 1.0


def test_every_terminal_move_is_announced_once_on_the_store_channel(services: Services, redis_client) -> None:
    jobs = services.jobs
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(jobs.jobs.finished_channel)
    a, b = _job("clinic-a"), _job("clinic-a")
    for job in (a, b):
        jobs.jobs.create(job)
    jobs.jobs.set_progress(a.id, "classification", 0, 1)  # not an end: no announcement
    jobs.jobs.finish(a.id, JobStatus.succeeded, result_key="r")
    jobs.jobs.finish(a.id, JobStatus.failed)  # refused (already ended): no second announcement
    jobs.jobs.finish(b.id, JobStatus.cancelled)
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message:
            got.append(message["data"])
    assert [m.decode() if isinstance(m, bytes) else m for m in got] == [a.id, b.id]
    assert pubsub.get_message(timeout=0.3) is None
    pubsub.close()


def test_waiters_resubscribe_after_the_connection_drops(services: Services, redis_client) -> None:
    jobs = services.jobs
    reader = JobReader(jobs)

    async def scenario() -> Job | None:
        first = _job("clinic-a")
        jobs.jobs.create(first)
        jobs.jobs.finish(first.id, JobStatus.cancelled)
        await reader.wait("clinic-a", first.id, 5.0)  # subscribes
        redis_client.client_kill_filter(_type="pubsub")  # as a Redis restart would
        job = _job("clinic-a")
        jobs.jobs.create(job)
        loop = asyncio.get_running_loop()
        loop.call_later(2.0, lambda: loop.run_in_executor(None, jobs.jobs.finish, job.id, JobStatus.cancelled))
        try:
            return await reader.wait("clinic-a", job.id, 20.0)
        finally:
            await reader.aclose()

    began = time.monotonic()
    ended = asyncio.run(scenario())
    assert ended is not None and ended.status is JobStatus.cancelled
    assert time.monotonic() - began < 4.5  # woken by the renewed subscription, before the 5-s safety read
