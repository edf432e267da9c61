"""Retention: finished jobs past their time lose result and inputs and read 'expired'."""

from __future__ import annotations

import os
import time
from pathlib import Path

import redis

from workers.jobs import Job, JobStatus, RedisJobStore, new_id
from workers.runtime import sweep_expired
from workers.storage import LocalObjectStore


def test_sweep_expires_old_jobs_and_removes_their_objects(redis_client: redis.Redis, tmp_path: Path) -> None:
    jobs = RedisJobStore(redis_client, ttl_s=60, prefix=f"t-{new_id()[:8]}")
    store = LocalObjectStore(tmp_path)
    old, fresh = new_id(), new_id()
    for job_id in (old, fresh):
        jobs.create(Job(id=job_id, client="alice", kind="diagnosis-support", status=JobStatus.queued,
                        created_at=time.time(), queue="q", spec={"images": []}))
        jobs.begin_attempt(job_id, lease_s=30, max_lost=3)
        store.put_json(f"results/alice/{job_id}.json", {"id": job_id})
        jobs.finish(job_id, JobStatus.succeeded, result_key=f"results/alice/{job_id}.json")
    store.put_bytes("inputs/alice/old.jpg", b"x")
    store.put_bytes("inputs/alice/new.jpg", b"y")
    past = time.time() - 3600
    os.utime(tmp_path / "inputs/alice/old.jpg", (past, past))
    redis_client.zadd(f"{jobs.prefix}:finished", {old: past})  # finished an hour ago

    assert sweep_expired(jobs, store, ttl_s=60) == 1
    assert jobs.get(old).status is JobStatus.expired and jobs.get(fresh).status is JobStatus.succeeded
    assert not store.exists(f"results/alice/{old}.json") and store.exists(f"results/alice/{fresh}.json")
    assert not store.exists("inputs/alice/old.jpg") and store.exists("inputs/alice/new.jpg")
    assert sweep_expired(jobs, store, ttl_s=60) == 0
