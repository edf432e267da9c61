"""The worker's Celery tasks: run a job by id, safely under at-least-once delivery, and deliver webhooks.

Both are shared tasks: they belong to no app at import time and register on the app the worker
entry point (`dermq worker`) builds from its settings, which imports this module; only workers
import it, never the API. At run time a task publishes through its own app (`self.app`) or the
one the runtime was given (`WorkerRuntime.app`).

- Leased: a run holds its job's lease (`workers.leases`); a duplicate delivery of a
  leased job is dropped, a finished (or cancelled) one is acknowledged and dropped.
- Poison jobs: a job whose worker keeps dying fails after `max_deliveries` lost
  workers instead of looping forever; only lapsed leases count, not deliveries.
- Transient outages (storage or Redis briefly unreachable, the store refusing
  writes): the job is handed back and retried through Celery's retry, with capped
  exponential backoff, and fails with the outage as its reason after
  `transient_retries`.
- Results are written under the run's own key, so a late duplicate can neither
  overwrite nor delete the result of the run that won.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Callable

import redis
from celery import Task, shared_task, signals
from celery.exceptions import Reject, Retry
from celery.utils.time import get_exponential_backoff_interval
from kombu.exceptions import OperationalError

from core.jobs import AnalysisKind, Job, JobErrorKind, JobStatus, SeveritySpec
from core.settings import Settings
from pipeline.diagnosis import ImageInput
from pipeline.imaging import ImageRejected, decode
from workers import metrics
from workers.celery_app import DELIVER_WEBHOOK_TASK, RUN_JOB_TASK
from workers.job_store import Begin
from workers.runtime import WorkerRuntime, get_runtime
from workers.storage import ObjectNotFound, StorageUnavailable
from workers.webhooks import (
    EVENT_STATUSES,
    AccountWebhooks,
    Delivery,
    DeliveryLog,
    attempt_delivery,
    notify_safely,
)

log = logging.getLogger(__name__)

TRANSIENT = (StorageUnavailable, redis.ConnectionError, redis.TimeoutError, OperationalError)


class JobCancelled(Exception):
    """Raised from a progress callback when the run no longer owns a running job."""


class TransientFailure(Exception):
    """A run stopped by an outage; its lease is still held so the task can hand the job back."""

    def __init__(self, run: str, cause: BaseException):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.run = run
        self.cause = cause


Handler = Callable[[WorkerRuntime, Job, Callable[[str, int, int], None]], dict[str, Any]]


def decode_stored(settings: Settings, data: bytes, *, title: str | None = None,
                  reduce_to: int | None = None) -> ImageInput:
    """A stored image as the pipelines take it: the intake's size limits, at the working resolution
    (``reduce_to``: see `pipeline.imaging.decode`)."""
    decoded = decode(data, max_pixels=settings.max_image_pixels, min_side=settings.min_image_side,
                     max_aspect_ratio=settings.max_aspect_ratio, max_side=settings.decode_max_side,
                     reduce_to=reduce_to)
    return ImageInput(rgb=decoded.rgb, title=title, source_shape=decoded.source_shape)


def image_loaders(rt: WorkerRuntime, job: Job, reduce_to: int | None = None) -> list[Callable[[], ImageInput]]:
    """One loader per image of the job: each fetches and decodes its image when the pipeline comes to it."""

    def load(key: str, title: str | None) -> ImageInput:
        return decode_stored(rt.settings, rt.store.get_bytes(key), title=title, reduce_to=reduce_to)

    return [functools.partial(load, img.key, img.title) for img in job.spec.images]


def run_diagnosis(rt: WorkerRuntime, job: Job, progress: Callable[[str, int, int], None]) -> dict[str, Any]:
    pipeline = rt.diagnosis  # taken once: a model reload mid-job does not mix generations
    # Decoded one at a time inside the pipeline; reduced, since diagnosis returns nothing at the image's
    # own size (its heat maps are 384 px).
    return pipeline.run(job.id, image_loaders(rt, job, reduce_to=rt.settings.diagnosis_decode_side), progress)


def run_severity(rt: WorkerRuntime, job: Job, progress: Callable[[str, int, int], None]) -> dict[str, Any]:
    pipeline = rt.severity
    spec = job.spec
    assert isinstance(spec, SeveritySpec)  # the job's kind chose the model (core.jobs.SPEC_MODELS)
    return pipeline.run(job.id, spec, image_loaders(rt, job), progress)  # each decoded at its site's turn


HANDLERS: dict[AnalysisKind, Handler] = {
    AnalysisKind.diagnosis: run_diagnosis,
    AnalysisKind.severity_local: run_severity,
    AnalysisKind.severity_global: run_severity,
    AnalysisKind.severity_manual: run_severity,
}


# Progress reaches the job record at most this often (clients poll every 0.5-1 s); the rest of a fast
# job's reports stay in memory, and the finishing step writes the last one.
PROGRESS_WRITE_S = 0.1


class _Progress:
    """Writes progress to the job record, times stages, and stops a run that lost its job."""

    def __init__(self, rt: WorkerRuntime, job: Job, run: str):
        self.rt, self.job, self.run = rt, job, run
        self.stage: str | None = None
        self.since = time.perf_counter()
        self.last: tuple[str, int, int] | None = None  # the latest report, written or not
        self.written_at: float | None = None
        # Seconds per stage over the whole run: a pipeline that takes images one at a time comes back
        # to a stage once per image, and the metric is a stage's share of one job.
        self.spent: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if stage != self.stage:
            self._lap(now)
            self.stage, self.since = stage, now
        self.last = (stage, done, total)
        if not self.rt.leases.holds(self.job.id, self.run):  # in memory: checked at every report
            raise JobCancelled(self.job.id)
        if self.written_at is not None and now - self.written_at < PROGRESS_WRITE_S:
            return
        self.written_at = now
        # The write also tells whether the job is still running: a cancellation stops the run here.
        if self.rt.jobs.set_progress(self.job.id, stage, done, total, run=self.run) is not JobStatus.running:
            raise JobCancelled(self.job.id)

    def _lap(self, now: float) -> None:
        if self.stage is not None:
            self.spent[self.stage] = self.spent.get(self.stage, 0.0) + now - self.since

    def close(self) -> None:
        self._lap(time.perf_counter())
        self.stage = None
        for stage, seconds in self.spent.items():
            metrics.STAGE_SECONDS.labels(self.job.kind, stage).observe(seconds)
        self.spent.clear()


def result_prefix(job: Job) -> str:
    return f"results/{job.client}/{job.id}/"


def result_key(job: Job, run: str) -> str:
    return f"{result_prefix(job)}{run}.json"


def execute_job(rt: WorkerRuntime, job_id: str) -> JobStatus | None:
    """Run one delivery of a job; returns the job's status afterwards (None if the record is gone).

    Raises `TransientFailure` (lease still held) when an outage stopped the run.
    """
    attempt = rt.leases.begin(job_id)
    if attempt.outcome is not Begin.started:
        log.info("job %s: delivery dropped (%s, %s)", job_id, attempt.outcome.value,
                 attempt.status.value if attempt.status else "no record")
        if attempt.outcome is Begin.finished and attempt.status is JobStatus.failed:
            metrics.JOBS_FINISHED.labels("unknown", "failed").inc()
        return attempt.status
    run = attempt.run
    assert run is not None
    transient = False
    try:
        return _run(rt, job_id, run)
    except TRANSIENT as exc:
        transient = True
        raise TransientFailure(run, exc) from exc
    finally:
        if not transient:
            rt.leases.release(job_id, run)


def _run(rt: WorkerRuntime, job_id: str, run: str) -> JobStatus | None:
    job = rt.jobs.get(job_id)
    if job is None:
        return None
    handler = HANDLERS.get(job.kind)
    if handler is None:
        return _fail(rt, job, run, f"no handler for job kind {job.kind!r}", JobErrorKind.internal)
    progress = _Progress(rt, job, run)
    try:
        report = handler(rt, job, progress)
    except JobCancelled:
        current = rt.jobs.get(job_id)
        return current.status if current else None
    except TRANSIENT:
        raise
    except ObjectNotFound as exc:
        return _fail(rt, job, run, f"input image is no longer stored ({exc}); resubmit the request", JobErrorKind.input)
    except ImageRejected as exc:
        return _fail(rt, job, run, f"image could not be processed: {exc}", JobErrorKind.input)
    except Exception as exc:  # a bug or a bad model must fail the job, not loop it
        log.exception("job %s failed", job_id)
        return _fail(rt, job, run, f"internal error: {type(exc).__name__}: {exc}", JobErrorKind.internal)
    finally:
        progress.close()
    key = result_key(job, run)
    try:
        rt.store.put_json(key, report)
    except ValueError as exc:  # not JSON (NaN/Infinity): a bug, never a report that cannot be read back
        log.exception("job %s produced an unstorable report", job_id)
        return _fail(rt, job, run, f"internal error: the report could not be stored: {exc}", JobErrorKind.internal)
    if not rt.jobs.finish(job_id, JobStatus.succeeded, result_key=key, run=run, progress=progress.last):
        rt.store.delete(key)  # cancelled, or taken over after a lost lease: only our own key goes
        current = rt.jobs.get(job_id)
        return current.status if current else None
    if job.attempts > 1:  # an earlier run may have stored its report and died before it could finish
        for stale in rt.store.list(result_prefix(job)):
            if stale.key != key:
                rt.store.delete(stale.key)
    metrics.JOBS_FINISHED.labels(job.kind, "succeeded").inc()
    return JobStatus.succeeded


def _fail(rt: WorkerRuntime, job: Job, run: str, error: str, kind: JobErrorKind) -> JobStatus | None:
    if rt.jobs.finish(job.id, JobStatus.failed, error=error, error_kind=kind, run=run):
        metrics.JOBS_FINISHED.labels(job.kind, "failed").inc()
        return JobStatus.failed
    current = rt.jobs.get(job.id)
    return current.status if current else None


def retry_countdown(rt: WorkerRuntime, retries: int) -> float:
    settings = rt.settings
    return float(get_exponential_backoff_interval(settings.transient_backoff_s, retries,
                                                  settings.transient_backoff_max_s, full_jitter=False))


@shared_task(name=RUN_JOB_TASK, bind=True)
def run_job(self: Task, job_id: str) -> None:
    rt = get_runtime()
    try:
        status = execute_job(rt, job_id)
    except TransientFailure as failure:
        _retry_later(self, rt, job_id, failure)
        return
    if status in EVENT_STATUSES:  # also for a redelivery of a finished job: its first run may have died first
        notify_safely(rt.notifier.job_finished, job_id)


def _retry_later(task: Task, rt: WorkerRuntime, job_id: str, failure: TransientFailure) -> None:
    """Hand the job back and publish a delayed retry; fail it once the retries are spent."""
    retries = task.request.retries
    if retries >= rt.settings.transient_retries:
        log.error("job %s: giving up after %d retries (%s)", job_id, retries, failure)
        try:
            rt.jobs.finish(job_id, JobStatus.failed, run=failure.run, error_kind=JobErrorKind.outage,
                           error=f"storage or broker unavailable after {retries} retries: {failure}")
        except TRANSIENT:
            rt.leases.defer(job_id, failure.run, countdown=retry_countdown(rt, retries), retries=retries)
            return
        rt.leases.release(job_id, failure.run)
        notify_safely(rt.notifier.job_finished, job_id)
        return
    countdown = retry_countdown(rt, retries)
    log.warning("job %s hit an outage (%s); retry %d in %.0f s", job_id, failure, retries + 1, countdown)
    try:
        rt.leases.hand_back(job_id, failure.run, countdown=countdown)
    except TRANSIENT:
        # Redis is away: the keeper holds the lease and hands the job back once Redis answers.
        rt.leases.defer(job_id, failure.run, countdown=countdown, retries=retries + 1)
        return
    try:
        task.retry(exc=failure.cause, countdown=countdown, max_retries=None)
    except Retry:
        raise
    except Reject as exc:
        # The retry could not be published: the record is queued with a deadline, so a sweep resends it.
        log.warning("job %s: retry not published (%s); the lease sweep will resend it", job_id, exc)


def resend(job_id: str, countdown: float, retries: int) -> None:
    """Publish a job's task again (the lease keeper's way to recover a job)."""
    rt = get_runtime()
    job = rt.jobs.get(job_id)
    if job is not None:
        rt.app.send_task(RUN_JOB_TASK, args=[job_id], queue=job.queue, task_id=job_id,
                         countdown=countdown or None, retries=retries)


@signals.worker_init.connect
def _on_worker_init(**_: Any) -> None:
    get_runtime().start(resend)


@signals.task_received.connect
def _on_task_received(request: Any = None, **_: Any) -> None:
    """Claim a job as soon as its message arrives, before a thread is free to run it (see `workers.leases`)."""
    if request is None or request.name != RUN_JOB_TASK or not request.args:
        return
    try:
        get_runtime().leases.claim(request.args[0])
    except Exception as exc:  # Redis away: the broker's visibility timeout remains the backstop
        log.warning("could not claim job %s: %s", request.args[0], exc)


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    get_runtime().stop()


@shared_task(name=DELIVER_WEBHOOK_TASK, bind=True)
def deliver_webhook(self: Task, payload: dict[str, Any]) -> None:
    """One delivery attempt of a webhook event; retried through Celery with the backoff `attempt_delivery` chose."""
    rt = get_runtime()
    delivery = Delivery.model_validate(payload)
    retries = self.request.retries
    log_ = DeliveryLog(rt.jobs)
    if not log_.claim_attempt(delivery.event_id, retries + 1):
        return
    countdown = attempt_delivery(delivery, retries + 1, settings=rt.settings, accounts=AccountWebhooks(rt.jobs.r),
                                 log_=log_, retries=retries)
    if countdown is not None:
        raise self.retry(countdown=countdown, max_retries=None)
