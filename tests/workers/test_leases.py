"""The lease keeper on a real Redis: renewal, sweeping dead workers' jobs, hand-backs across a Redis outage."""

from __future__ import annotations

import time

import pytest
import redis

from core.jobs import Job, JobStatus
from dermq.embedded import free_port
from workers.job_store import RedisJobStore, Sweep, new_id
from workers.leases import LeaseKeeper


@pytest.fixture()
def store(redis_client: redis.Redis) -> RedisJobStore:
    return RedisJobStore(redis_client, ttl_s=3600, prefix=f"lease-{new_id()[:8]}")


def queued(store: RedisJobStore) -> Job:
    job = Job(id=new_id(), client="alice", kind="diagnosis-support", status=JobStatus.queued,
              created_at=time.time(), queue="q", spec={"images": []})
    store.create(job)
    return job


def keeper(store: RedisJobStore, sent: list, lease_s: float = 0.3) -> LeaseKeeper:
    return LeaseKeeper(store, lambda job_id, countdown, retries: sent.append((job_id, countdown, retries)),
                       lease_s=lease_s, max_lost=3)


def test_renewal_outlives_the_lease_and_stops_a_cancelled_run(store: RedisJobStore) -> None:
    sent: list = []
    k = keeper(store, sent)
    job = queued(store)
    run = k.begin(job.id).run
    for _ in range(6):  # twice the lease, renewed as a worker's lease loop would
        time.sleep(0.1)
        k.renew_all()
    assert k.sweep() == [] and store.get(job.id).status is JobStatus.running and k.holds(job.id, run)
    store.finish(job.id, JobStatus.cancelled)
    k.renew_all()
    assert not k.holds(job.id, run)


def test_a_dead_workers_job_is_swept_and_sent_again(store: RedisJobStore) -> None:
    sent: list = []
    dead, alive = keeper(store, [], lease_s=0.05), keeper(store, sent)
    job = queued(store)
    dead.begin(job.id)  # its process is killed: nobody renews
    time.sleep(0.1)
    assert alive.sweep() == [(job.id, Sweep.requeued)]
    assert sent == [(job.id, 0.0, 0)] and store.get(job.id).status is JobStatus.queued
    assert store.get(job.id).lost == 1


def test_a_job_taken_but_not_started_by_a_dead_worker_is_sent_again(store: RedisJobStore) -> None:
    # The worker received the message and was killed before a thread ran it: no run, no lease, and the
    # broker would hold the message for its visibility timeout. The lapsed claim has the sweep resend it.
    sent: list = []
    dead, alive = keeper(store, [], lease_s=0.05), keeper(store, sent)
    job = queued(store)
    dead.claim(job.id)
    assert alive.sweep() == []  # claimed, within its deadline
    time.sleep(0.1)
    assert alive.sweep() == [(job.id, Sweep.resend)]
    assert sent == [(job.id, 0.0, 0)] and store.get(job.id).status is JobStatus.queued
    assert store.get(job.id).lost == 0  # the job never ran: no worker is counted lost


def test_a_living_workers_claim_is_renewed_until_its_run_begins(store: RedisJobStore) -> None:
    sent: list = []
    k = keeper(store, sent, lease_s=0.3)
    job = queued(store)
    k.claim(job.id)
    for _ in range(6):  # twice the claim's deadline, renewed as the lease loop would
        time.sleep(0.1)
        k.renew_all()
    assert k.sweep() == [] and sent == []
    run = k.begin(job.id).run
    assert run is not None and k._claimed == set()  # the run's lease replaces the claim
    store.finish(job.id, JobStatus.succeeded, run=run)
    k.claim(job.id)  # a late duplicate of a finished job's message claims nothing
    assert k._claimed == set() and k.sweep() == []


def test_a_job_whose_message_was_lost_is_sent_again_once(store: RedisJobStore) -> None:
    # A worker popped the message and was killed before recording it: no queue, unacked set or claim has it.
    sent: list = []
    k = keeper(store, sent, lease_s=0.05)
    lost, waiting = queued(store), queued(store)
    time.sleep(0.1)
    assert k.recover_lost_messages(lambda: {waiting.id}) == [lost.id]
    assert sent == [(lost.id, 0.0, 0)]
    assert k.recover_lost_messages(lambda: {waiting.id}) == []  # resent: it carries a deadline now
    time.sleep(0.15)  # the resent message was lost too: the sweep sends it once more
    assert k.sweep() == [(lost.id, Sweep.resend)]
    assert k.recover_lost_messages(lambda: None) == []  # a broker that cannot lose messages is not read


def test_a_hand_back_during_a_redis_outage_happens_once_redis_answers(store: RedisJobStore) -> None:
    sent: list = []
    k = keeper(store, sent, lease_s=30)
    job = queued(store)
    run = k.begin(job.id).run
    down = RedisJobStore(redis.Redis(port=free_port(), socket_connect_timeout=0.2), ttl_s=3600, prefix=store.prefix)
    k.jobs = down  # Redis is away: the hand-back cannot be written
    with pytest.raises(redis.ConnectionError):
        k.hand_back(job.id, run, countdown=2)
    k.defer(job.id, run, countdown=2, retries=1)
    k.renew_all()  # still away: nothing lost, the lease is kept
    assert k.holds(job.id, run) and sent == []
    k.jobs = store  # Redis is back
    k.renew_all()
    back = store.get(job.id)
    assert back.status is JobStatus.queued and back.lost == 0
    assert sent == [(job.id, 2, 1)] and not k.holds(job.id, run)
