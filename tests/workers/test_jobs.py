"""Job records on a real Redis."""

from __future__ import annotations

import time

import pytest
import redis

from workers.jobs import Batch, Begin, Job, JobStatus, RedisJobStore, Sweep, new_id


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


LEASE = dict(lease_s=30.0, max_lost=3)


def test_a_run_holds_a_lease_and_a_duplicate_delivery_is_dropped(store: RedisJobStore) -> None:
    job = make_job()
    store.create(job)
    first = store.begin_attempt(job.id, **LEASE)
    assert first.outcome is Begin.started and first.attempts == 1 and first.run
    duplicate = store.begin_attempt(job.id, **LEASE)  # the broker's visibility timeout ran out
    assert duplicate.outcome is Begin.leased and duplicate.run is None
    got = store.get(job.id)
    assert got.attempts == 1 and got.lost == 0 and got.run == first.run and got.started_at is not None


def test_a_lapsed_lease_counts_a_lost_worker_and_the_next_run_takes_over(store: RedisJobStore) -> None:
    job = make_job()
    store.create(job)
    dead = store.begin_attempt(job.id, lease_s=0.05, max_lost=3)
    time.sleep(0.1)
    second = store.begin_attempt(job.id, **LEASE)
    assert second.outcome is Begin.started and second.run != dead.run
    assert store.get(job.id).lost == 1 and store.get(job.id).attempts == 2
    # The dead run's late writes are refused: it no longer owns the job.
    assert store.set_progress(job.id, "decode", 1, 2, run=dead.run) is None
    assert not store.finish(job.id, JobStatus.succeeded, result_key="late", run=dead.run)
    assert store.finish(job.id, JobStatus.succeeded, result_key="winner", run=second.run)
    assert store.get(job.id).result_key == "winner"


def test_renewal_keeps_a_long_run_and_fails_for_a_superseded_one(store: RedisJobStore) -> None:
    job = make_job()
    store.create(job)
    run = store.begin_attempt(job.id, lease_s=0.2, max_lost=3).run
    for _ in range(3):
        time.sleep(0.1)
        assert store.renew(job.id, run, lease_s=0.2)
    assert store.begin_attempt(job.id, **LEASE).outcome is Begin.leased
    assert not store.renew(job.id, "someone-else", lease_s=0.2)
    store.finish(job.id, JobStatus.cancelled)
    assert not store.renew(job.id, run, lease_s=0.2)


def test_sweep_requeues_lapsed_leases_then_fails_after_max_lost(store: RedisJobStore) -> None:
    job = make_job()
    store.create(job)
    for lost in (1, 2):
        store.begin_attempt(job.id, lease_s=0.01, max_lost=3)
        time.sleep(0.05)
        assert store.sweep_leases(max_lost=3) == [(job.id, Sweep.requeued)]
        assert store.get(job.id).status is JobStatus.queued and store.get(job.id).lost == lost
    store.begin_attempt(job.id, lease_s=0.01, max_lost=3)
    time.sleep(0.05)
    assert store.sweep_leases(max_lost=3) == [(job.id, Sweep.failed)]
    failed = store.get(job.id)
    assert failed.status is JobStatus.failed and "stopped 3 times" in failed.error
    assert store.sweep_leases(max_lost=3) == []
    assert store.status_counts()["failed"] == 1 and store.status_counts()["running"] == 0


def test_a_requeued_job_that_never_starts_is_resent_and_a_live_one_is_left_alone(store: RedisJobStore) -> None:
    live, lapsed = make_job(), make_job()
    for job in (live, lapsed):
        store.create(job)
    store.begin_attempt(live.id, **LEASE)
    store.begin_attempt(lapsed.id, lease_s=0.01, max_lost=3)
    time.sleep(0.05)
    assert store.sweep_leases(max_lost=3, resend_after_s=0.01) == [(lapsed.id, Sweep.requeued)]
    time.sleep(0.05)  # the requeued job's message was lost too: it must be sent again, not forgotten
    assert store.sweep_leases(max_lost=3, resend_after_s=30) == [(lapsed.id, Sweep.resend)]
    assert store.sweep_leases(max_lost=3) == []
    assert store.get(live.id).status is JobStatus.running


def test_hand_back_requeues_without_counting_a_lost_worker(store: RedisJobStore) -> None:
    job = make_job()
    store.create(job)
    run = store.begin_attempt(job.id, **LEASE).run
    assert not store.hand_back(job.id, "not-the-owner", deadline_s=10)
    assert store.hand_back(job.id, run, deadline_s=0.01)
    got = store.get(job.id)
    assert got.status is JobStatus.queued and got.lost == 0 and got.run is None
    time.sleep(0.05)  # the retry never arrived
    assert store.sweep_leases(max_lost=3) == [(job.id, Sweep.resend)]
    assert store.begin_attempt(job.id, **LEASE).outcome is Begin.started
    assert store.get(job.id).attempts == 2 and store.get(job.id).lost == 0


def test_terminal_jobs_are_not_restarted(store: RedisJobStore) -> None:
    job = make_job()
    store.create(job)
    run = store.begin_attempt(job.id, **LEASE).run
    assert store.finish(job.id, JobStatus.succeeded, result_key="results/x.json", run=run)
    again = store.begin_attempt(job.id, **LEASE)
    assert again.outcome is Begin.finished and again.status is JobStatus.succeeded and again.attempts == 1
    assert store.sweep_leases(max_lost=3) == []


def test_cancellation_wins_over_a_late_worker(store: RedisJobStore) -> None:
    job = make_job()
    store.create(job)
    run = store.begin_attempt(job.id, **LEASE).run
    assert store.finish(job.id, JobStatus.cancelled)
    assert store.set_progress(job.id, "classification", 1, 2, run=run) is JobStatus.cancelled
    assert not store.finish(job.id, JobStatus.succeeded, result_key="k", run=run)
    assert store.get(job.id).status is JobStatus.cancelled


def test_status_counts_follow_transitions(store: RedisJobStore) -> None:
    a, b = make_job(), make_job()
    store.create(a)
    store.create(b)
    store.begin_attempt(a.id, **LEASE)
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
    store.begin_attempt(mine[0].id, **LEASE)
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
    store.begin_attempt(job.id, **LEASE)
    store.finish(job.id, JobStatus.succeeded, result_key="k")
    assert store.finished_before(time.time() + 1) == [job.id]
    assert store.finished_before(time.time() - 3600) == []
    assert store.finish(job.id, JobStatus.expired)
    assert store.get(job.id).status is JobStatus.expired
