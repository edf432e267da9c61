"""The lease keeper on a real Redis: renewal, sweeping dead workers' jobs, hand-backs across a Redis outage."""

from __future__ import annotations

import time

import pytest
import redis

from core.jobs import Job, JobStatus
from dermq.embedded import free_port
from workers.jobs import RedisJobStore, Sweep, new_id
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
