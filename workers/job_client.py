"""The job system's small client interface, used by the API to submit and read jobs.

Submission order makes a failure leave nothing behind: inputs are stored,
then the record is created, then the task is enqueued; if enqueueing fails the
record and any input this submission newly wrote are removed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Celery

from core.jobs import AnalysisKind, Batch, Job, JobSpec, JobStatus, StoredImage
from core.settings import Settings
from pipeline.imaging import CheckedImage
from workers.celery_app import RUN_JOB_TASK
from workers.job_store import WORKER_KEY_PREFIX, RedisJobStore, new_id, utcnow
from workers.storage import ObjectStore
from workers.webhooks import AccountWebhooks, Notifier, notify_safely

log = logging.getLogger(__name__)


class SubmitError(RuntimeError):
    """The broker or the storage refused the submission; nothing was kept."""


class IdempotencyConflict(ValueError):
    """The Idempotency-Key was used before with a different request body."""


@dataclass
class Submission:
    kind: AnalysisKind
    spec: JobSpec  # the request's parameters, of its kind's model; its images are attached on submission
    images: list[tuple[CheckedImage, str | None]] = field(default_factory=list)  # (image, title)
    reference: str | None = None
    callback_url: str | None = None  # checked already (workers/webhooks.py check_url)

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.kind.encode())
        # The spec's JSON without its images, keys sorted: the same bytes as when specs were plain dicts.
        h.update(json.dumps(self.spec.model_dump(mode="json", exclude={"images"}), sort_keys=True).encode())
        for image, title in self.images:
            h.update(hashlib.sha256(image.data).digest())
            h.update((title or "").encode())
        if self.callback_url:  # only when given, so fingerprints of requests without one stay as they were
            h.update(b"callbackUrl:" + self.callback_url.encode())
        return h.hexdigest()


def input_key(client: str, image: CheckedImage) -> str:
    return f"inputs/{client}/{hashlib.sha256(image.data).hexdigest()}.{image.extension}"


def visible_to(job: Job | None, client: str) -> Job | None:
    """The job if `client` owns it, else None: another client's job is indistinguishable from a missing one."""
    return job if job is not None and job.client == client else None


class JobClient:
    def __init__(self, settings: Settings, store: ObjectStore, jobs: RedisJobStore, celery: Celery):
        self.settings = settings
        self.store = store
        self.jobs = jobs
        self.celery = celery
        self.webhooks = AccountWebhooks(jobs.r, jobs.prefix)
        self.notifier = Notifier(jobs, celery, settings)

    def submit(
        self,
        client: str,
        submission: Submission,
        *,
        interactive: bool,
        batch_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[Job, bool]:
        """Store, record and enqueue one job. Returns (job, created); created is False for a replay."""
        job_id = new_id()
        if idempotency_key:
            fingerprint = submission.fingerprint()
            stored_id, stored_fp = self.jobs.claim_idempotency_key(client, idempotency_key, fingerprint, job_id)
            if stored_id != job_id:
                if stored_fp != fingerprint:
                    raise IdempotencyConflict("Idempotency-Key was already used with a different request")
                existing = self.jobs.get(stored_id)
                if existing is not None:
                    return existing, False
                job_id = stored_id  # the first submission failed before its record: take its place
        try:
            return self._submit(client, submission, job_id, interactive, batch_id), True
        except Exception:
            if idempotency_key:
                self.jobs.release_idempotency_key(client, idempotency_key)
            raise

    def _submit(self, client: str, sub: Submission, job_id: str, interactive: bool, batch_id: str | None) -> Job:
        written: list[str] = []
        queue = self.settings.queue_interactive if interactive else self.settings.queue_batch
        try:
            # The account's default callbackUrl serves requests that name none; a batch's items are
            # covered by the batch's own event, so only an item's own callbackUrl fires for it.
            callback_url = sub.callback_url or (None if batch_id else self.webhooks.default_url(client))
            images = []
            for image, title in sub.images:
                key = input_key(client, image)
                if not self.store.exists(key):
                    written.append(key)
                # Always write: re-touching a shared input keeps it alive for this job's retention time.
                self.store.put_bytes(key, image.data, image.content_type)
                images.append(StoredImage(key=key, title=title, content_type=image.content_type,
                                          width=image.width, height=image.height))
            job = Job(
                id=job_id, client=client, kind=sub.kind, status=JobStatus.queued, created_at=utcnow(),
                queue=queue, spec=sub.spec.model_copy(update={"images": images}), total=len(images),
                batch_id=batch_id, reference=sub.reference, callback_url=callback_url,
            )
            self.jobs.create(job)
        except Exception as exc:
            self._remove_inputs(written)
            raise SubmitError(f"storage unavailable: {exc}") from exc
        try:
            self.celery.send_task(RUN_JOB_TASK, args=[job.id], queue=queue, task_id=job.id)
        except Exception as exc:
            self.jobs.delete(job.id)
            self._remove_inputs(written)
            raise SubmitError(f"broker unavailable: {exc}") from exc
        return job

    def _remove_inputs(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self.store.delete(key)
            except Exception as exc:
                log.warning("could not remove input %s after a failed submission: %s", key, exc)

    # --- reading ---
    def get(self, client: str, job_id: str) -> Job | None:
        """The job if it belongs to this client; another client's job reads as absent."""
        return visible_to(self.jobs.get(job_id), client)

    def result(self, job: Job) -> dict[str, Any]:
        return json.loads(self.result_bytes(job))

    def result_bytes(self, job: Job) -> bytes:
        """The stored report as written (compact UTF-8 JSON): served as is, never parsed and re-encoded."""
        assert job.result_key is not None
        return self.store.get_bytes(job.result_key)

    def cancel(self, client: str, job_id: str) -> Job | None:
        job = self.get(client, job_id)
        if job is None:
            return None
        if self.jobs.finish(job_id, JobStatus.cancelled, error="cancelled by the client"):
            notify_safely(self.notifier.job_finished, job_id)
        return self.jobs.get(job_id)

    def list(self, client: str, *, status: JobStatus | None, offset: int, limit: int) -> tuple[list[Job], int]:
        return self.jobs.list_for_client(client, status=status, offset=offset, limit=limit)

    def create_batch(self, client: str, batch_id: str, job_ids: list[str], references: list[str | None],
                     callback_url: str | None = None) -> Batch:
        batch = Batch(id=batch_id, client=client, created_at=utcnow(), job_ids=job_ids, references=references,
                      callback_url=callback_url or self.webhooks.default_url(client))
        self.jobs.create_batch(batch)
        if batch.callback_url:  # its jobs may all have finished before this record existed
            notify_safely(self.notifier.batch_changed, batch.id)
        return batch

    def get_batch(self, client: str, batch_id: str) -> Batch | None:
        batch = self.jobs.get_batch(batch_id)
        return batch if batch is not None and batch.client == client else None

    # --- operations ---
    def workers(self) -> list[dict[str, Any]]:
        r = self.jobs.r
        keys = sorted(r.scan_iter(match=WORKER_KEY_PREFIX + "*", count=100))
        return [json.loads(v) for v in r.mget(keys) if v] if keys else []

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting per queue; only knowable here when the broker is Redis."""
        url = self.settings.effective_broker_url
        if not url.startswith(("redis://", "rediss://", "unix://")):
            return {}
        r = self.jobs.r if url == self.settings.effective_redis_url else redis.Redis.from_url(url)
        queues = self.settings.worker_queues
        return {q: int(r.llen(q)) for q in queues}

    def ping_broker(self) -> None:
        with self.celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)

    def ping_storage(self) -> None:
        self.store.ping()
