"""The task's delivery rules on a real Redis: leases, idempotent redelivery, poison jobs, cancellation, outages."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis

from core.jobs import AnalysisKind, Job, JobErrorKind, JobStatus
from core.settings import Settings
from pipeline.imaging import ImageRejected
from workers.job_store import RedisJobStore, new_id
from workers.leases import LeaseKeeper
from workers.storage import LocalObjectStore, ObjectNotFound, StorageUnavailable
from workers.tasks import HANDLERS, TransientFailure, execute_job, result_key


class FakeRuntime(SimpleNamespace):
    """Only what execute_job touches; the pipeline is replaced by a handler registered per test."""


@pytest.fixture()
def rt(redis_client: redis.Redis, tmp_path: Path) -> FakeRuntime:
    jobs = RedisJobStore(redis_client, ttl_s=3600, prefix=f"t-{new_id()[:8]}")
    resent: list[str] = []
    leases = LeaseKeeper(jobs, lambda job_id, countdown, retries: resent.append(job_id), lease_s=30, max_lost=3)
    return FakeRuntime(jobs=jobs, store=LocalObjectStore(tmp_path), settings=Settings(max_deliveries=3),
                       leases=leases, resent=resent)


# Every test job is of this kind; a test runs it with its own handler in place of the pipeline's.
KIND = AnalysisKind.diagnosis


def submit(rt: FakeRuntime) -> Job:
    job = Job(id=new_id(), client="alice", kind=KIND, status=JobStatus.queued, created_at=time.time(),
              queue="q", spec={"images": []})
    rt.jobs.create(job)
    return job


@pytest.fixture()
def handler(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []

    def run(rt, job, progress):
        calls.append(job.id)
        progress("work", 1, 1)
        return {"resourceType": "DiagnosticReport", "identifier": {"value": job.id}}

    monkeypatch.setitem(HANDLERS, KIND, run)
    return calls


def test_success_stores_the_result_and_redelivery_is_a_no_op(rt, handler) -> None:
    job = submit(rt)
    assert execute_job(rt, job.id) is JobStatus.succeeded
    stored = rt.jobs.get(job.id)
    assert rt.store.get_json(stored.result_key)["identifier"]["value"] == job.id
    assert execute_job(rt, job.id) is JobStatus.succeeded  # the broker delivered it again
    assert handler == [job.id], "a finished job must not run twice"


def test_the_winner_removes_a_report_a_dead_run_stored_before_it_could_finish(rt, handler) -> None:
    job = submit(rt)
    dead = rt.jobs.begin_attempt(job.id, lease_s=-1, max_lost=3)  # its worker died: the lease has lapsed
    rt.store.put_json(result_key(job, dead.run), {"from": "the dead run"})
    assert execute_job(rt, job.id) is JobStatus.succeeded
    winner = rt.jobs.get(job.id)
    assert winner.attempts == 2 and winner.lost == 1
    assert [o.key for o in rt.store.list("results/")] == [winner.result_key]


def test_a_job_that_keeps_killing_workers_fails_after_max_deliveries(rt, handler) -> None:
    job = submit(rt)
    for _ in range(3):  # three runs whose worker died: their leases lapsed
        rt.jobs.begin_attempt(job.id, lease_s=0.01, max_lost=3)
        time.sleep(0.03)
    assert execute_job(rt, job.id) is JobStatus.failed
    failed = rt.jobs.get(job.id)
    assert failed.attempts == 3 and failed.lost == 3 and "stopped 3 times" in failed.error
    assert failed.error_kind is JobErrorKind.worker_lost
    assert handler == []


def test_a_duplicate_delivery_of_a_running_job_is_dropped_and_not_counted(rt, handler) -> None:
    job = submit(rt)
    rt.jobs.begin_attempt(job.id, lease_s=30, max_lost=3)  # another live worker is running it
    for _ in range(5):
        assert execute_job(rt, job.id) is JobStatus.running
    assert handler == [] and rt.jobs.get(job.id).lost == 0 and rt.jobs.get(job.id).attempts == 1


def test_a_late_run_cannot_overwrite_or_delete_the_winners_result(rt, monkeypatch) -> None:
    job = submit(rt)
    late_run = rt.jobs.begin_attempt(job.id, lease_s=0.01, max_lost=3).run  # its worker stalls...
    time.sleep(0.03)

    def run(rt_, job_, progress):
        return {"winner": True}

    monkeypatch.setitem(HANDLERS, KIND, run)
    assert execute_job(rt, job.id) is JobStatus.succeeded  # ...and another run takes over and wins
    winner = rt.jobs.get(job.id)
    assert late_run not in winner.result_key
    # The stalled run wakes up and tries to finish: refused, and the winner's result stays.
    assert not rt.jobs.finish(job.id, JobStatus.succeeded, result_key="results/late.json", run=late_run)
    assert rt.store.get_json(winner.result_key) == {"winner": True}
    assert rt.jobs.get(job.id).result_key == winner.result_key


def test_an_outage_keeps_the_lease_for_a_hand_back(rt, monkeypatch) -> None:
    def run(rt_, job_, progress):
        raise StorageUnavailable("the object store is away")

    monkeypatch.setitem(HANDLERS, KIND, run)
    job = submit(rt)
    with pytest.raises(TransientFailure) as caught:
        execute_job(rt, job.id)
    assert rt.leases.holds(job.id, caught.value.run)
    rt.leases.hand_back(job.id, caught.value.run, countdown=1)
    back = rt.jobs.get(job.id)
    assert back.status is JobStatus.queued and back.lost == 0 and not rt.leases.holds(job.id, caught.value.run)


def test_a_store_that_refuses_writes_is_an_outage_not_a_failure(rt, handler, tmp_path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("workers.storage.local.atomic_write", refuse)  # the disk, not the product code
    job = submit(rt)
    with pytest.raises(TransientFailure):
        execute_job(rt, job.id)
    assert rt.jobs.get(job.id).status is JobStatus.running and rt.jobs.get(job.id).error is None


def test_a_report_with_nan_fails_with_a_reason_instead_of_being_stored(rt, monkeypatch) -> None:
    monkeypatch.setitem(HANDLERS, KIND, lambda rt_, job, progress: {"score": float("nan")})
    job = submit(rt)
    assert execute_job(rt, job.id) is JobStatus.failed
    assert "could not be stored" in rt.jobs.get(job.id).error
    assert rt.jobs.get(job.id).error_kind is JobErrorKind.internal
    assert list(rt.store.list("results/")) == []


def test_cancelled_job_is_dropped_at_delivery(rt, handler) -> None:
    job = submit(rt)
    rt.jobs.finish(job.id, JobStatus.cancelled)
    assert execute_job(rt, job.id) is JobStatus.cancelled
    assert handler == [] and rt.jobs.get(job.id).attempts == 0


def test_progress_is_written_at_most_every_tenth_of_a_second_and_the_last_lands_with_the_result(rt, monkeypatch) -> None:
    writes: list[tuple[str, int]] = []
    original = rt.jobs.set_progress
    monkeypatch.setattr(rt.jobs, "set_progress", lambda job_id, stage, done, total, run=None: (
        writes.append((stage, done)), original(job_id, stage, done, total, run=run))[1])

    def run(rt_, job, progress):
        for stage in ("decode", "classification", "quality", "explainability"):
            for i in range(3):
                progress(stage, i, 3)  # a fast job: a dozen reports in a few milliseconds
        progress("report", 1, 1)
        return {"resourceType": "DiagnosticReport"}

    monkeypatch.setitem(HANDLERS, KIND, run)
    job = submit(rt)
    assert execute_job(rt, job.id) is JobStatus.succeeded
    assert writes == [("decode", 0)]  # the first report marks the start; the rest came too soon
    record = rt.jobs.get(job.id)
    assert (record.stage, record.done, record.total) == ("report", 1, 1)


@pytest.mark.parametrize("written_before", [False, True], ids=["first-report", "after-a-write"])
def test_a_cancel_during_the_run_stops_it_at_the_next_progress_write(rt, monkeypatch, written_before) -> None:
    def run(rt_, job, progress):
        if written_before:
            progress("work", 0, 2)
        rt_.jobs.finish(job.id, JobStatus.cancelled)  # the client cancels while we work
        progress("work", 1, 2)
        if written_before:  # that report came too soon to be written: the run went on until the next write
            time.sleep(0.15)
            progress("work", 2, 2)
        raise AssertionError("progress should have stopped the job")

    monkeypatch.setitem(HANDLERS, KIND, run)
    job = submit(rt)
    assert execute_job(rt, job.id) is JobStatus.cancelled
    assert list(rt.store.list("results/")) == []


def test_a_crashing_handler_fails_the_job_with_a_reason(rt, monkeypatch) -> None:
    monkeypatch.setitem(HANDLERS, KIND, lambda rt_, job, progress: 1 / 0)
    job = submit(rt)
    assert execute_job(rt, job.id) is JobStatus.failed
    assert "ZeroDivisionError" in rt.jobs.get(job.id).error


def test_unknown_job_is_dropped(rt) -> None:
    assert execute_job(rt, new_id()) is None


@pytest.mark.parametrize(("raised", "kind"), [
    (ImageRejected("image could not be read"), JobErrorKind.input),
    (ObjectNotFound("images/gone.jpg"), JobErrorKind.input),
    (RuntimeError("a bug"), JobErrorKind.internal),
])
def test_a_failure_records_its_kind_which_decides_the_http_status(rt, monkeypatch, raised, kind) -> None:
    def run(rt_, job_, progress):
        raise raised

    monkeypatch.setitem(HANDLERS, KIND, run)
    job = submit(rt)
    assert execute_job(rt, job.id) is JobStatus.failed
    failed = rt.jobs.get(job.id)
    assert failed.error_kind is kind and failed.error
    assert kind.http_status == (422 if kind is JobErrorKind.input else 500)
