"""The task's delivery rules on a real Redis: idempotent redelivery, poison jobs, cancellation."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis

from dermq.settings import Settings
from workers.jobs import Job, JobStatus, RedisJobStore, new_id
from workers.storage import LocalObjectStore
from workers.tasks import HANDLERS, execute_job


class FakeRuntime(SimpleNamespace):
    """Only what execute_job touches; the pipeline is replaced by a handler registered per test."""


@pytest.fixture()
def rt(redis_client: redis.Redis, tmp_path: Path) -> FakeRuntime:
    jobs = RedisJobStore(redis_client, ttl_s=3600, prefix=f"t-{new_id()[:8]}")
    return FakeRuntime(jobs=jobs, store=LocalObjectStore(tmp_path), settings=Settings(max_deliveries=3))


def submit(rt: FakeRuntime, kind: str) -> Job:
    job = Job(id=new_id(), client="alice", kind=kind, status=JobStatus.queued, created_at=time.time(),
              queue="q", spec={"images": []})
    rt.jobs.create(job)
    return job


@pytest.fixture()
def handler():
    calls: list[str] = []

    def run(rt, job, progress):
        calls.append(job.id)
        progress("work", 1, 1)
        return {"resourceType": "DiagnosticReport", "identifier": {"value": job.id}}

    HANDLERS["test-kind"] = run
    yield calls
    HANDLERS.pop("test-kind", None)


def test_success_stores_the_result_and_redelivery_is_a_no_op(rt, handler) -> None:
    job = submit(rt, "test-kind")
    assert execute_job(rt, job.id) is JobStatus.succeeded
    stored = rt.jobs.get(job.id)
    assert rt.store.get_json(stored.result_key)["identifier"]["value"] == job.id
    assert execute_job(rt, job.id) is JobStatus.succeeded  # the broker delivered it again
    assert handler == [job.id], "a finished job must not run twice"


def test_a_job_that_keeps_killing_workers_fails_after_max_deliveries(rt, handler) -> None:
    job = submit(rt, "test-kind")
    for _ in range(3):  # three deliveries that each died before finishing
        rt.jobs.begin_attempt(job.id)
    assert execute_job(rt, job.id) is JobStatus.failed
    failed = rt.jobs.get(job.id)
    assert failed.attempts == 4 and "delivered 4 times" in failed.error
    assert handler == []


def test_cancelled_job_is_dropped_at_delivery(rt, handler) -> None:
    job = submit(rt, "test-kind")
    rt.jobs.finish(job.id, JobStatus.cancelled)
    assert execute_job(rt, job.id) is JobStatus.cancelled
    assert handler == [] and rt.jobs.get(job.id).attempts == 0


def test_cancel_during_the_run_stops_it_and_keeps_no_result(rt) -> None:
    def run(rt_, job, progress):
        rt_.jobs.finish(job.id, JobStatus.cancelled)  # the client cancels while we work
        progress("work", 1, 2)
        raise AssertionError("progress should have stopped the job")

    HANDLERS["test-cancel"] = run
    try:
        job = submit(rt, "test-cancel")
        assert execute_job(rt, job.id) is JobStatus.cancelled
        assert list(rt.store.list("results/")) == []
    finally:
        HANDLERS.pop("test-cancel")


def test_a_crashing_handler_fails_the_job_with_a_reason(rt) -> None:
    HANDLERS["test-crash"] = lambda rt_, job, progress: 1 / 0
    try:
        job = submit(rt, "test-crash")
        assert execute_job(rt, job.id) is JobStatus.failed
        assert "ZeroDivisionError" in rt.jobs.get(job.id).error
    finally:
        HANDLERS.pop("test-crash")


def test_unknown_job_is_dropped(rt) -> None:
    assert execute_job(rt, new_id()) is None
