"""Job records on a real Redis."""

from __future__ import annotations

import json
import time

import pytest
import redis

from core.jobs import (
    AnalysisKind,
    Batch,
    CatalogueCondition,
    DiagnosisSpec,
    Job,
    JobErrorKind,
    JobStatus,
    SeveritySite,
    SeveritySpec,
    StoredImage,
)
from workers.job_store import Begin, RedisJobStore, Sweep, new_id


@pytest.fixture()
def store(redis_client: redis.Redis) -> RedisJobStore:
    return RedisJobStore(redis_client, ttl_s=3600, prefix=f"test-{new_id()[:8]}")


IMAGE = StoredImage(key="inputs/a/b.jpg", title=None, content_type="image/jpeg", width=640, height=480)


def make_job(client: str = "alice", **kw) -> Job:
    return Job(**{"id": new_id(), "client": client, "kind": "diagnosis-support", "status": JobStatus.queued,
                  "created_at": time.time(), "queue": "q", "spec": DiagnosisSpec(images=[IMAGE]), **kw})


def test_roundtrip_and_public_view(store: RedisJobStore) -> None:
    job = make_job(reference="ref-1")
    store.create(job)
    got = store.get(job.id)
    assert got is not None and got.spec == job.spec and got.status is JobStatus.queued
    public = got.public()
    assert public["status"] == "queued" and public["reference"] == "ref-1"
    assert public["createdAt"].endswith("Z") and public["startedAt"] is None
    assert store.get(new_id()) is None


def test_every_field_survives_the_round_trip(store: RedisJobStore) -> None:
    spec = SeveritySpec(system="apasi", mode="global", condition=CatalogueCondition(code="EA90"),
                        sites=[SeveritySite(body_site="armLeft", items={"surface": 2.5}, image=0),
                               SeveritySite(body_site="legLeft", items={}, image=1)],
                        images=[IMAGE, IMAGE.model_copy(update={"key": "inputs/a/c.png", "title": "leg"})])
    full = Job(id=new_id(), client="alice", kind=AnalysisKind.severity_global, status=JobStatus.failed,
               created_at=1733212345.123456, queue="dermq.batch", spec=spec, started_at=1733212346.000001,
               finished_at=1733212399.987654, attempts=2, error="boom", error_kind=JobErrorKind.worker_lost,
               stage="assessment", done=1, total=2, result_key="results/x.json", batch_id=new_id(),
               reference="ref", run="r" * 32, lease_until=1733212401.5, lost=1, callback_url="https://8.8.8.8/hook")
    bare = make_job(created_at=1733212345.123456)  # every optional field None
    for job in (full, bare):
        store.create(job)
        assert store.get(job.id) == job
    raw = store.r.hgetall(store._job(bare.id))
    assert "started_at" not in raw and "error_kind" not in raw and raw["created_at"] == "1733212345.123456"


# A record as the hand-written codec wrote it (json.dumps of the spec dict, repr of floats, str of ints,
# enum values, no field for None), here with the fields the Lua scripts add while the job runs.
TODAYS_RECORD = {
    "id": "4b9e5b5e-0000-4000-8000-000000000001", "client": "alice", "kind": "severity-assessment/manual",
    "status": "failed", "created_at": "1733212345.123456", "queue": "dermq.interactive",
    "spec": json.dumps({"system": "dlqi", "mode": "manual", "condition": None,
                        "sites": [{"bodySite": "armLeft", "items": {"q1": 3.0}, "image": None}],
                        "images": []}),
    "attempts": "3", "done": "0", "total": "0", "lost": "3", "started_at": "1733212346.25",
    "finished_at": "1733212350.5", "error_kind": "worker_lost", "run": "a" * 32,
    "error": "the worker running this job stopped 3 times (killed or out of memory); giving up",
    "callback_url": "https://8.8.8.8/hook",
}


def test_a_record_in_todays_layout_reads_and_is_written_the_same(store: RedisJobStore) -> None:
    store.r.hset(store._job(TODAYS_RECORD["id"]), mapping=TODAYS_RECORD)
    job = store.get(TODAYS_RECORD["id"])
    assert job == Job(
        id=TODAYS_RECORD["id"], client="alice", kind=AnalysisKind.severity_manual, status=JobStatus.failed,
        created_at=1733212345.123456, queue="dermq.interactive",
        spec=SeveritySpec(system="dlqi", mode="manual", sites=[SeveritySite(body_site="armLeft", items={"q1": 3})]),
        attempts=3, lost=3, started_at=1733212346.25, finished_at=1733212350.5, error_kind=JobErrorKind.worker_lost,
        run="a" * 32, error=TODAYS_RECORD["error"], callback_url="https://8.8.8.8/hook")
    written = job.to_hash()
    assert json.loads(written.pop("spec")) == json.loads(TODAYS_RECORD["spec"])
    assert written == {k: v for k, v in TODAYS_RECORD.items() if k != "spec"}


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


def test_unleased_queued_lists_only_old_queued_jobs_no_worker_holds(store: RedisJobStore) -> None:
    old = [make_job(created_at=time.time() - 120) for _ in range(4)]
    fresh = make_job()
    for job in (*old, fresh):
        store.create(job)
    waiting, claimed, running, expired = old
    store.claim(claimed.id, lease_s=30)  # a worker holds its message
    store.begin_attempt(running.id, **LEASE)
    store.r.delete(store._job(expired.id))  # its record expired
    assert store.unleased_queued(older_than_s=60) == [waiting.id]
    assert store.r.zscore(store._queued, expired.id) is None  # the expired id left the index
    # A job that left the queue leaves the index; a fresh one joins it once old enough.
    store.finish(waiting.id, JobStatus.cancelled)
    assert store.unleased_queued(older_than_s=0) == [fresh.id]


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
    batch = Batch(id="b1", client="alice", created_at=1733212345.123456, job_ids=["x", "y"], references=["r", None],
                  callback_url="https://8.8.8.8/hook")
    store.create_batch(batch)
    assert store.get_batch("b1") == batch
    # A batch as `json.dumps(asdict(batch))` stored it reads the same.
    store.r.set(f"{store.prefix}:batch:b0", json.dumps({"id": "b0", "client": "bob", "created_at": 1.0,
                                                         "job_ids": [], "references": [], "callback_url": None}))
    assert store.get_batch("b0") == Batch(id="b0", client="bob", created_at=1.0)
    job = make_job()
    store.create(job)
    store.begin_attempt(job.id, **LEASE)
    store.finish(job.id, JobStatus.succeeded, result_key="k")
    assert store.finished_before(time.time() + 1) == [job.id]
    assert store.finished_before(time.time() - 3600) == []
    assert store.finish(job.id, JobStatus.expired)
    assert store.get(job.id).status is JobStatus.expired


# The statuses of the paging tests' jobs, oldest first: every status, mixed.
MIXED = [JobStatus.queued, JobStatus.running, JobStatus.succeeded, JobStatus.failed, JobStatus.succeeded,
         JobStatus.cancelled, JobStatus.expired]


def _mixed_jobs(store: RedisJobStore, n: int) -> list[Job]:
    """`n` jobs of alice's with the statuses of MIXED in turn, newest first (one of bob's besides)."""
    jobs, start = [], time.time() - n
    for i in range(n):
        job = make_job(created_at=start + i)  # distinct scores: the order is defined
        store.create(job)
        status = MIXED[i % len(MIXED)]
        if status is JobStatus.running:
            store.begin_attempt(job.id, **LEASE)
        elif status is JobStatus.expired:
            store.finish(job.id, JobStatus.succeeded)
            store.finish(job.id, JobStatus.expired)
        elif status is not JobStatus.queued:
            store.finish(job.id, status)
        jobs.append(job.model_copy(update={"status": status}))
    store.create(make_job("bob", created_at=start + 0.5))
    return jobs[::-1]


PAGES = [(0, 10), (10, 10), (20, 10), (3, 4), (24, 1), (25, 5), (40, 3), (0, 500)]


@pytest.mark.parametrize("status", [None, *JobStatus], ids=lambda s: s.value if s else "any")
def test_pages_match_the_filtered_newest_first_list(store: RedisJobStore, status: JobStatus | None) -> None:
    newest_first = _mixed_jobs(store, 25)
    matching = [j.id for j in newest_first if status is None or j.status is status]
    assert matching or status is None
    for offset, limit in PAGES:
        page, total = store.list_for_client("alice", status=status, offset=offset, limit=limit)
        assert [j.id for j in page] == matching[offset:offset + limit], (offset, limit)
        assert total == len(matching) and all(j.status is (status or j.status) for j in page)


@pytest.mark.parametrize("status", [None, JobStatus.succeeded])
def test_paging_reads_only_the_records_of_the_page(store: RedisJobStore, monkeypatch: pytest.MonkeyPatch,
                                                    status: JobStatus | None) -> None:
    newest_first = _mixed_jobs(store, 25)
    read: list[list[str]] = []
    get_many = store.get_many
    monkeypatch.setattr(store, "get_many", lambda ids: read.append(list(ids)) or get_many(ids))
    page, _ = store.list_for_client("alice", status=status, offset=2, limit=3)
    assert read == [[j.id for j in page]] and len(page) == 3
    assert [j.id for j in page] == [j.id for j in newest_first if status in (None, j.status)][2:5]


def test_a_vanished_record_is_skipped_and_old_ids_leave_the_index(store: RedisJobStore) -> None:
    newest_first = _mixed_jobs(store, 7)  # one of each status
    gone = newest_first[1]
    store.r.delete(store._job(gone.id))  # evicted, or deleted by hand
    page, total = store.list_for_client("alice", status=None, offset=0, limit=3)
    assert [j.id for j in page] == [newest_first[0].id, newest_first[2].id] and total == 7
    page, total = store.list_for_client("alice", status=gone.status, offset=0, limit=3)
    assert page == [] and total == 0
    # A record past its TTL expired on its own: its id goes from the index, so the total counts live jobs.
    expired = make_job(created_at=time.time() - store.record_ttl - 60)
    store.create(expired)
    store.r.delete(store._job(expired.id))
    assert store.list_for_client("alice", status=None, offset=0, limit=1)[1] == 7
    assert store.r.zscore(store._client_jobs("alice"), expired.id) is None
    with pytest.raises(ValueError, match="limit"):
        store.list_for_client("alice", status=None, offset=0, limit=0)
