"""Retention: finished jobs past their time lose result and inputs and read 'expired'; the runtime publishes
through the Celery app the worker entry point gave it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import redis

import workers.runtime
from core.jobs import Job, JobStatus
from core.settings import Settings
from workers.celery_app import create_celery
from workers.job_store import RedisJobStore, new_id
from workers.runtime import WorkerRuntime, get_runtime, init_runtime, sweep_expired
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


def test_the_runtime_publishes_through_the_app_the_entry_point_gave_it(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:1/3")
    with pytest.raises(RuntimeError, match="no Celery app"):
        _ = WorkerRuntime(settings).app  # never one from the global settings behind its back
    monkeypatch.setattr(workers.runtime, "_runtime", None)
    with pytest.raises(RuntimeError, match="dermq worker"):
        get_runtime()
    app = create_celery(settings)
    rt = init_runtime(settings, app)
    assert get_runtime() is rt and rt.app is app and rt.notifier.celery is app
    with pytest.raises(RuntimeError, match="already"):
        init_runtime(settings, create_celery(settings))


def test_severity_jobs_segment_through_the_segmenters_own_batcher(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    from pipeline.segmentation import BatchedSegmenter, LearnedSegmenter

    def batches() -> float:
        return REGISTRY.get_sample_value("dermq_worker_batch_size_count", {"task": "segmentation"}) or 0.0

    models = WorkerRuntime(Settings(data_dir=tmp_path, device="cpu")).models
    try:
        served = models.severity.segmenter
        assert isinstance(served, BatchedSegmenter) and isinstance(models.segmenter.segmenter, LearnedSegmenter)
        rgb = np.full((120, 160, 3), (180, 120, 100), np.uint8)
        before = batches()
        batched = served.segment(rgb)
        assert batches() == before + 1  # one model call, through the batcher
        assert np.allclose(batched.prob, models.segmenter.segmenter.segment(rgb).prob, atol=1e-6)
    finally:
        models.close()
