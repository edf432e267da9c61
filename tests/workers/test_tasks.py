"""The task's delivery rules on a real Redis: leases, idempotent redelivery, poison jobs, cancellation, outages."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis

from dermq.settings import Settings
from workers.jobs import Job, JobStatus, RedisJobStore, new_id
from workers.leases import LeaseKeeper
from workers.storage import LocalObjectStore, StorageUnavailable
from workers.tasks import HANDLERS, TransientFailure, execute_job


class FakeRuntime(SimpleNamespace):
    """Only what execute_job touches; the pipeline is replaced by a handler registered per test."""


@pytest.fixture()
def rt(redis_client: redis.Redis, tmp_path: Path) -> FakeRuntime:
    jobs = RedisJobStore(redis_client, ttl_s=3600, prefix=f"t-{new_id()[:8]}")
    resent: list[str] = []
    leases = LeaseKeeper(jobs, lambda job_id, countdown, retries: resent.append(job_id), lease_s=30, max_lost=3)
    return FakeRuntime(jobs=jobs, store=LocalObjectStore(tmp_path), settings=Settings(max_deliveries=3),
                       leases=leases, resent=resent)


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
    for _ in range(3):  # three runs whose worker died: their leases lapsed
        rt.jobs.begin_attempt(job.id, lease_s=0.01, max_lost=3)
        time.sleep(0.03)
    assert execute_job(rt, job.id) is JobStatus.failed
    failed = rt.jobs.get(job.id)
    assert failed.attempts == 3 and failed.lost == 3 and "stopped 3 times" in failed.error
    assert handler == []


def test_a_duplicate_delivery_of_a_running_job_is_dropped_and_not_counted(rt, handler) -> None:
    job = submit(rt, "test-kind")
    rt.jobs.begin_attempt(job.id, lease_s=30, max_lost=3)  # another live worker is running it
    for _ in range(5):
        assert execute_job(rt, job.id) is JobStatus.running
    assert handler == [] and rt.jobs.get(job.id).lost == 0 and rt.jobs.get(job.id).attempts == 1


def test_a_late_run_cannot_overwrite_or_delete_the_winners_result(rt) -> None:
    job = submit(rt, "test-race")
    late_run = rt.jobs.begin_attempt(job.id, lease_s=0.01, max_lost=3).run  # its worker stalls...
    time.sleep(0.03)

    def run(rt_, job_, progress):
        return {"winner": True}

    HANDLERS["test-race"] = run
    try:
        assert execute_job(rt, job.id) is JobStatus.succeeded  # ...and another run takes over and wins
        winner = rt.jobs.get(job.id)
        assert late_run not in winner.result_key
        # The stalled run wakes up and tries to finish: refused, and the winner's result stays.
        assert not rt.jobs.finish(job.id, JobStatus.succeeded, result_key="results/late.json", run=late_run)
        assert rt.store.get_json(winner.result_key) == {"winner": True}
        assert rt.jobs.get(job.id).result_key == winner.result_key
    finally:
        HANDLERS.pop("test-race")


def test_an_outage_keeps_the_lease_for_a_hand_back(rt) -> None:
    def run(rt_, job_, progress):
        raise StorageUnavailable("the object store is away")

    HANDLERS["test-outage"] = run
    try:
        job = submit(rt, "test-outage")
        with pytest.raises(TransientFailure) as caught:
            execute_job(rt, job.id)
        assert rt.leases.holds(job.id, caught.value.run)
        rt.leases.hand_back(job.id, caught.value.run, countdown=1)
        back = rt.jobs.get(job.id)
        assert back.status is JobStatus.queued and back.lost == 0 and not rt.leases.holds(job.id, caught.value.run)
    finally:
        HANDLERS.pop("test-outage")


def test_a_store_that_refuses_writes_is_an_outage_not_a_failure(rt, handler, tmp_path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("workers.storage.local.atomic_write", refuse)  # the disk, not the product code
    job = submit(rt, "test-kind")
    with pytest.raises(TransientFailure):
        execute_job(rt, job.id)
    assert rt.jobs.get(job.id).status is JobStatus.running and rt.jobs.get(job.id).error is None


def test_a_report_with_nan_fails_with_a_reason_instead_of_being_stored(rt) -> None:
    HANDLERS["test-nan"] = lambda rt_, job, progress: {"score": float("nan")}
    try:
        job = submit(rt, "test-nan")
        assert execute_job(rt, job.id) is JobStatus.failed
        assert "could not be stored" in rt.jobs.get(job.id).error
        assert list(rt.store.list("results/")) == []
    finally:
        HANDLERS.pop("test-nan")


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
