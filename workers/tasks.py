"""The one Celery task: run a job by id, safely under at-least-once delivery.

- Idempotent: a redelivered job that already finished (or was cancelled) is acknowledged and dropped.
- Poison jobs: every delivery is counted on the job record; one that keeps
  killing its worker fails after `max_deliveries` instead of looping forever.
- Transient outages (storage or Redis briefly unreachable): the message is
  requeued after a pause and the delivery is not counted against the job.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import redis
from celery import signals
from celery.exceptions import Reject

from pipeline.diagnosis import ImageInput
from pipeline.imaging import ImageRejected, decode_image
from workers import metrics
from workers.celery_app import RUN_JOB_TASK, celery_app
from workers.jobs import Job, JobStatus
from workers.runtime import WorkerRuntime, get_runtime
from workers.storage import ObjectNotFound, StorageUnavailable

log = logging.getLogger(__name__)

TRANSIENT = (StorageUnavailable, redis.ConnectionError, redis.TimeoutError)
TRANSIENT_PAUSE_S = 2.0


class JobCancelled(Exception):
    """Raised from a progress callback when the job is no longer running."""


Handler = Callable[[WorkerRuntime, Job, Callable[[str, int, int], None]], dict[str, Any]]


def load_images(rt: WorkerRuntime, job: Job) -> list[ImageInput]:
    return [
        ImageInput(rgb=decode_image(rt.store.get_bytes(img["key"]), max_pixels=rt.settings.max_image_pixels),
                   title=img.get("title"))
        for img in job.spec["images"]
    ]


def run_diagnosis(rt: WorkerRuntime, job: Job, progress: Callable[[str, int, int], None]) -> dict[str, Any]:
    pipeline = rt.diagnosis  # taken once: a model reload mid-job does not mix generations
    progress("decode", 0, len(job.spec["images"]))
    return pipeline.run(job.id, load_images(rt, job), progress)


def run_severity(rt: WorkerRuntime, job: Job, progress: Callable[[str, int, int], None]) -> dict[str, Any]:
    pipeline = rt.severity
    progress("decode", 0, len(job.spec["images"]))
    return pipeline.run(job.id, job.spec, load_images(rt, job), progress)


HANDLERS: dict[str, Handler] = {
    "diagnosis-support": run_diagnosis,
    "severity-assessment/automatic/local": run_severity,
    "severity-assessment/automatic/global": run_severity,
    "severity-assessment/manual": run_severity,
}


class _Progress:
    """Writes progress to the job record, times stages, and stops the job once it is cancelled."""

    def __init__(self, rt: WorkerRuntime, job: Job):
        self.rt, self.job = rt, job
        self.stage: str | None = None
        self.since = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            self.stage, self.since = stage, time.perf_counter()
        if self.rt.jobs.set_progress(self.job.id, stage, done, total) is not JobStatus.running:
            raise JobCancelled(self.job.id)

    def close(self) -> None:
        if self.stage is not None:
            metrics.STAGE_SECONDS.labels(self.job.kind, self.stage).observe(time.perf_counter() - self.since)


def execute_job(rt: WorkerRuntime, job_id: str) -> JobStatus | None:
    """Run one delivery of a job; returns the job's status afterwards (None if the record is gone)."""
    jobs = rt.jobs
    status, attempts = jobs.begin_attempt(job_id)
    if status is None or status.terminal:
        log.info("job %s is %s; delivery dropped", job_id, status.value if status else "gone")
        return status
    if attempts > rt.settings.max_deliveries:
        jobs.finish(job_id, JobStatus.failed,
                    error=f"the job was delivered {attempts} times and its worker died each time; giving up")
        metrics.JOBS_FINISHED.labels("unknown", "failed").inc()
        return JobStatus.failed
    job = jobs.get(job_id)
    assert job is not None
    handler = HANDLERS.get(job.kind)
    if handler is None:
        jobs.finish(job_id, JobStatus.failed, error=f"no handler for job kind {job.kind!r}")
        return JobStatus.failed
    progress = _Progress(rt, job)
    try:
        report = handler(rt, job, progress)
    except JobCancelled:
        return JobStatus.cancelled
    except TRANSIENT:
        raise
    except ObjectNotFound as exc:
        return _fail(rt, job, f"input image is no longer stored ({exc}); resubmit the request")
    except ImageRejected as exc:
        return _fail(rt, job, f"image could not be processed: {exc}")
    except Exception as exc:  # a bug or a bad model must fail the job, not loop it
        log.exception("job %s failed", job_id)
        return _fail(rt, job, f"internal error: {type(exc).__name__}: {exc}")
    finally:
        progress.close()
    key = f"results/{job.client}/{job.id}.json"
    rt.store.put_json(key, report)
    if not jobs.finish(job_id, JobStatus.succeeded, result_key=key):
        rt.store.delete(key)  # cancelled while finishing: leave nothing behind
        current = jobs.get(job_id)
        return current.status if current else None
    metrics.JOBS_FINISHED.labels(job.kind, "succeeded").inc()
    return JobStatus.succeeded


def _fail(rt: WorkerRuntime, job: Job, error: str) -> JobStatus:
    rt.jobs.finish(job.id, JobStatus.failed, error=error)
    metrics.JOBS_FINISHED.labels(job.kind, "failed").inc()
    return JobStatus.failed


@celery_app.task(name=RUN_JOB_TASK)
def run_job(job_id: str) -> None:
    rt = get_runtime()
    try:
        execute_job(rt, job_id)
    except TRANSIENT as exc:
        log.warning("job %s hit a transient outage (%s); requeueing", job_id, exc)
        try:
            rt.jobs.release_attempt(job_id)
        except TRANSIENT:
            pass  # Redis itself is down: the delivery stays counted, which only tightens the limit
        time.sleep(TRANSIENT_PAUSE_S)
        raise Reject(exc, requeue=True) from exc


@signals.worker_init.connect
def _on_worker_init(**_: Any) -> None:
    get_runtime().start()


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    get_runtime().stop()
