"""Job records on a real Redis."""

from __future__ import annotations

import time

import pytest
import redis

from workers.jobs import Batch, Job, JobStatus, RedisJobStore, new_id


@pytest.fixture()
def store(redis_client: redis.Redis) -> RedisJobStore:
    return RedisJobStore(redis_client, ttl_s=3600, prefix=f"test-{new_id()[:8]}")


def make_job(client: str = "alice", **kw) -> Job:
    return Job(id=new_id(), client=client, kind="diagnosis-support", status=JobStatus.queued,
               created_at=time.time(), queue="q", spec={"images": [{"key": "inputs/a/b.jpg"}]}, **kw)


def test_roundtrip_and_public_view(store: RedisJobStore) -> None:
    job = make_job(reference="ref-1")
    store.create(job)
    got = store.get(job.id)
    assert got is not None and got.spec == job.spec and got.status is JobStatus.queued
    public = got.public()
    assert public["status"] == "queued" and public["reference"] == "ref-1"
    assert public["createdAt"].endswith("Z") and public["startedAt"] is None
    assert store.get(new_id()) is None


def test_attempts_are_counted_per_delivery(store: RedisJobStore) -> None:
    job = make_job()
    store.create(job)
    assert store.begin_attempt(job.id) == (JobStatus.running, 1)
    assert store.begin_attempt(job.id) == (JobStatus.running, 2)  # redelivered after a worker died
    store.release_attempt(job.id)  # a transient outage does not count
    assert store.get(job.id).attempts == 1
    assert store.get(job.id).started_at is not None


def test_terminal_jobs_are_not_restarted(store: RedisJobStore) -> None:
    job = make_job()
    store.create(job)
    store.begin_attempt(job.id)
    assert store.finish(job.id, JobStatus.succeeded, result_key="results/x.json")
    status, attempts = store.begin_attempt(job.id)
    assert status is JobStatus.succeeded and attempts == 1


def test_cancellation_wins_over_a_late_worker(store: RedisJobStore) -> None:
    job = make_job()
    store.create(job)
    store.begin_attempt(job.id)
    assert store.finish(job.id, JobStatus.cancelled)
    assert store.set_progress(job.id, "classification", 1, 2) is JobStatus.cancelled
    assert not store.finish(job.id, JobStatus.succeeded, result_key="k")
    assert store.get(job.id).status is JobStatus.cancelled


def test_status_counts_follow_transitions(store: RedisJobStore) -> None:
    a, b = make_job(), make_job()
    store.create(a)
    store.create(b)
    store.begin_attempt(a.id)
    store.finish(a.id, JobStatus.failed, error="boom")
    counts = store.status_counts()
    assert counts["queued"] == 1 and counts["failed"] == 1 and counts["running"] == 0
    store.delete(b.id)
    assert store.status_counts()["queued"] == 0


def test_clients_list_only_their_jobs_with_filter_and_paging(store: RedisJobStore) -> None:
    mine = [make_job("alice") for _ in range(5)]
    for j in mine:
        store.create(j)
    store.create(make_job("bob"))
    store.begin_attempt(mine[0].id)
    page, total = store.list_for_client("alice", status=None, offset=0, limit=2)
    assert total == 5 and len(page) == 2 and all(j.client == "alice" for j in page)
    running, n = store.list_for_client("alice", status=JobStatus.running, offset=0, limit=10)
    assert n == 1 and running[0].id == mine[0].id


def test_idempotency_key_returns_the_first_job(store: RedisJobStore) -> None:
    assert store.claim_idempotency_key("alice", "k1", "fp", "job-1") == ("job-1", "fp")
    assert store.claim_idempotency_key("alice", "k1", "fp2", "job-2") == ("job-1", "fp")
    assert store.claim_idempotency_key("bob", "k1", "fp", "job-3") == ("job-3", "fp")


def test_batches_and_retention_index(store: RedisJobStore) -> None:
    store.create_batch(Batch(id="b1", client="alice", created_at=1.0, job_ids=["x"], references=["r"]))
    assert store.get_batch("b1").job_ids == ["x"]
    job = make_job()
    store.create(job)
    store.begin_attempt(job.id)
    store.finish(job.id, JobStatus.succeeded, result_key="k")
    assert store.finished_before(time.time() + 1) == [job.id]
    assert store.finished_before(time.time() - 3600) == []
    assert store.finish(job.id, JobStatus.expired)
    assert store.get(job.id).status is JobStatus.expired
