"""Per-process worker state: stores, the model behind its batcher, metrics and housekeeping threads.

The worker entry point (`dermq worker`) sets it up once with `init_runtime(settings, app)`: the
settings it started with and the Celery app it built from them, which the runtime publishes
through (webhook deliveries, resent jobs). Tasks reach it with `get_runtime()`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, Sequence

import numpy as np
import torch
from celery import Celery

from core import __version__
from core.jobs import JobStatus
from core.settings import Settings
from pipeline.catalogue import load_catalogue
from pipeline.classify import ClassifierOutput
from pipeline.diagnosis import DiagnosisPipeline
from pipeline.gate import GateProbs
from pipeline.quality import QualityConfig
from pipeline.segmentation import BatchedSegmenter, LearnedSegmenter, Segmenter
from pipeline.severity.assessment import SeverityPipeline
from workers import metrics
from workers.batcher import DynamicBatcher
from workers.celery_app import task_ids_in_redis_broker
from workers.job_store import WORKER_KEY_PREFIX, RedisJobStore, Sweep
from workers.leases import LeaseKeeper, Resend
from workers.model_cache import (
    LoadedModel,
    LoadedSegmenter,
    ModelSource,
    load_classifier_from,
    load_segmenter_from,
    resolve_source,
)
from workers.model_registry import TASKS
from workers.serving_shape import serving_shape
from workers.storage import ObjectStore, create_store
from workers.webhooks import Notifier, notify_safely

log = logging.getLogger(__name__)

HEARTBEAT_S = 10
# A replaced model's batcher is closed this long after the swap, so jobs already holding it finish.
RETIRE_AFTER_S = 120.0


class ModelSet:
    """One generation of loaded models and the pipelines built on them; replaced whole on reload."""

    def __init__(self, settings: Settings, classifier: LoadedModel, segmenter: LoadedSegmenter):
        self.classifier = classifier
        self.segmenter = segmenter
        quality = QualityConfig(min_score=settings.quality_min_score)
        model = classifier.classifier
        self.shape = serving_shape(settings, model.device)

        def forward(items: Sequence[torch.Tensor]) -> list[ClassifierOutput]:
            return model.predict(torch.stack(list(items)))

        self.batcher: DynamicBatcher[torch.Tensor, ClassifierOutput] = DynamicBatcher(
            forward,
            max_batch_size=self.shape.batch_max_size,
            max_wait_s=self.shape.batch_max_wait_ms / 1000.0,
            on_batch=metrics.batch_observer("classification"),
        )
        self.diagnosis = DiagnosisPipeline(
            load_catalogue(),
            classifier.bundle.manifest,
            preprocess=model.preprocess,
            predict=self.batcher.map,
            submit=self.batcher.submit_all,  # quality views are made while the batch runs
            quality=quality,
            heatmap_top_k=settings.heatmap_top_k,
            heatmap_max_side=settings.heatmap_max_side,
            models=self.describe(),
        )
        # The U-Net, like the classifier, batched across the jobs in flight; the classical method has no network.
        self.segmenter_batcher: DynamicBatcher[torch.Tensor, np.ndarray] | None = None
        served: Segmenter = segmenter.segmenter
        if isinstance(served, LearnedSegmenter):
            learned = served
            self.segmenter_batcher = DynamicBatcher(
                lambda items: learned.predict(torch.stack(list(items))),
                max_batch_size=self.shape.batch_max_size,
                max_wait_s=self.shape.batch_max_wait_ms / 1000.0,
                on_batch=metrics.batch_observer("segmentation"),
                name="dermq-segmenter-batcher",
            )
            served = BatchedSegmenter(learned, lambda x: self.segmenter_batcher.map([x])[0])
        self.severity = SeverityPipeline(served, quality=quality, models=self.describe(),
                                         gate=self._gate if model.has_gate else None)

    def _gate(self, rgb: np.ndarray) -> GateProbs | None:
        """The learned image gate for one severity image: one classifier forward pass through the batcher."""
        return GateProbs.maybe(self.batcher.map([self.classifier.classifier.preprocess(rgb)])[0].gate)

    @property
    def sources(self) -> dict[str, ModelSource | None]:
        return {"classification": self.classifier.source, "segmentation": self.segmenter.source}

    def describe(self) -> list[dict[str, Any]]:
        return [self.classifier.describe(), self.segmenter.describe()]

    def close(self) -> None:
        self.batcher.close()
        if self.segmenter_batcher is not None:
            self.segmenter_batcher.close()


class WorkerRuntime:
    def __init__(self, settings: Settings, app: Celery | None = None):
        self.settings = settings
        self._app = app
        self.hostname = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._models: ModelSet | None = None
        self._models_lock = threading.Lock()
        self.model_error: str | None = None
        self._failed_sources: dict[str, ModelSource] = {}
        self._resend: Resend | None = None

    @cached_property
    def store(self) -> ObjectStore:
        return create_store(self.settings)

    @cached_property
    def jobs(self) -> RedisJobStore:
        return RedisJobStore.from_url(self.settings.effective_redis_url, ttl_s=self.settings.job_ttl_s)

    @cached_property
    def leases(self) -> LeaseKeeper:
        return LeaseKeeper(self.jobs, self._send_again, lease_s=self.settings.lease_s,
                           max_lost=self.settings.max_deliveries)

    @property
    def app(self) -> Celery:
        """The Celery app this worker runs and publishes through (built by the entry point from its settings)."""
        if self._app is None:
            raise RuntimeError("this worker runtime was given no Celery app to publish tasks with")
        return self._app

    @cached_property
    def notifier(self) -> Notifier:
        return Notifier(self.jobs, self.app, self.settings)

    def _send_again(self, job_id: str, countdown: float, retries: int) -> None:
        if self._resend is None:
            raise RuntimeError("the worker was not started with a way to publish tasks")
        self._resend(job_id, countdown, retries)

    # --- models ---
    @property
    def models(self) -> ModelSet:
        """The current generation; a job takes it once and uses it to the end."""
        with self._models_lock:
            if self._models is None:
                self._models = self._load(self._wanted(), previous=None)
            return self._models

    @property
    def diagnosis(self) -> DiagnosisPipeline:
        return self.models.diagnosis

    @property
    def severity(self) -> SeverityPipeline:
        return self.models.severity

    def _wanted(self) -> dict[str, ModelSource]:
        return {task: resolve_source(self.settings, self.store, task) for task in TASKS}

    def _load(self, wanted: dict[str, ModelSource], previous: ModelSet | None) -> ModelSet:
        """Load what changed; unchanged models are reused from ``previous``."""
        before = previous.sources if previous is not None else {}
        classifier = (previous.classifier if previous and before["classification"] == wanted["classification"]
                      else load_classifier_from(wanted["classification"], self.settings, self.store))
        segmenter = (previous.segmenter if previous and before["segmentation"] == wanted["segmentation"]
                     else load_segmenter_from(wanted["segmentation"], self.settings, self.store))
        return ModelSet(self.settings, classifier, segmenter)

    def reload_models(self) -> bool:
        """Switch to newly selected bundles; a bundle that fails to load is refused and the
        current models keep serving. Returns True when a new generation took over."""
        current = self.models
        try:
            wanted = self._wanted()
        except Exception as exc:  # storage briefly unreachable: try again next poll
            log.warning("cannot read the model selection: %s", exc)
            return False
        changed = {t: s for t, s in wanted.items() if current.sources[t] != s}
        if not changed or all(self._failed_sources.get(t) == s for t, s in changed.items()):
            return False
        try:
            fresh = self._load(wanted, previous=current)
        except Exception as exc:
            self._failed_sources.update(changed)
            self.model_error = f"refused {', '.join(map(str, changed.values()))}: {exc}"
            log.error("model reload refused, still serving the previous models: %s", self.model_error)
            return False
        with self._models_lock:
            self._models = fresh
        self._failed_sources.clear()
        self.model_error = None
        log.info("now serving %s", [f"{m['name']}@{m['version']}" for m in fresh.describe()])
        timer = threading.Timer(RETIRE_AFTER_S, current.close)
        timer.daemon = True
        timer.start()
        return True

    def describe(self) -> dict[str, Any]:
        models = self.models
        return {
            "worker": self.hostname,
            "version": __version__,
            "device": str(models.classifier.classifier.device),
            "models": models.describe(),
            "modelError": self.model_error,
            "batchMaxSize": models.shape.batch_max_size,
            "batchMaxWaitMs": models.shape.batch_max_wait_ms,
            "concurrency": models.shape.concurrency,
            "modelThreads": torch.get_num_threads(),
        }

    # --- lifecycle ---
    def start(self, resend: Resend | None = None) -> None:
        """Load everything before taking the first task, then start the background threads.

        ``resend`` publishes a job's task again; the lease keeper uses it to recover jobs.
        """
        self._resend = resend
        _ = self.models
        if self.settings.worker_metrics_port:
            metrics.serve(self.settings.worker_metrics_port, self.settings.worker_metrics_host)
        loops = [self._heartbeat_loop, self._retention_loop, self._lease_loop]
        if self.settings.model_poll_s > 0:
            loops.append(self._model_poll_loop)
        for target in loops:
            threading.Thread(target=target, daemon=True, name=target.__name__).start()

    def stop(self) -> None:
        self._stop.set()
        try:
            self.jobs.r.delete(WORKER_KEY_PREFIX + self.hostname)
        except Exception:  # the broker may already be gone at shutdown
            pass

    def _beat(self) -> None:
        self.jobs.r.set(WORKER_KEY_PREFIX + self.hostname, json.dumps(self.describe()), ex=3 * HEARTBEAT_S)

    def _heartbeat_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._beat()
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)
            self._stop.wait(HEARTBEAT_S)

    def _lease_loop(self) -> None:
        """Renew this worker's leases every lease_s / 6; sweep everyone's lapsed leases every lease_sweep_s;
        look for lost messages every lease_s."""
        renew_every = self.settings.lease_s / 6
        next_sweep = next_lost_scan = time.monotonic()
        while not self._stop.wait(min(renew_every, self.settings.lease_sweep_s)):
            try:
                self.leases.renew_all()
            except Exception as exc:
                log.warning("lease renewal failed: %s", exc)
            if time.monotonic() >= next_lost_scan:
                next_lost_scan = time.monotonic() + self.settings.lease_s
                self._recover_lost_messages()
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self.settings.lease_sweep_s
                try:
                    swept = self.leases.sweep()
                except Exception as exc:
                    log.warning("lease sweep failed: %s", exc)
                    continue
                for job_id, outcome in swept:
                    if outcome is Sweep.failed:  # its workers kept dying: an end like any other
                        notify_safely(self.notifier.job_finished, job_id)

    def _recover_lost_messages(self) -> None:
        """One worker per lease_s (whichever takes the turn) compares queued jobs with the broker's messages."""
        if self._app is None:
            return
        try:
            turn = f"{self.jobs.prefix}:lost-message-scan"
            if self.jobs.r.set(turn, self.hostname, nx=True, ex=max(1, round(self.settings.lease_s))):
                self.leases.recover_lost_messages(
                    lambda: task_ids_in_redis_broker(self.app, self.settings.worker_queues))
        except Exception as exc:
            log.warning("lost-message scan failed: %s", exc)

    def _model_poll_loop(self) -> None:
        while not self._stop.wait(self.settings.model_poll_s):
            before = self.model_error
            if self.reload_models() or self.model_error != before:
                try:
                    self._beat()  # tell /device-information now, not at the next heartbeat
                except Exception as exc:
                    log.warning("heartbeat failed: %s", exc)

    def _retention_loop(self) -> None:
        while not self._stop.wait(self.settings.retention_sweep_s):
            try:
                sweep_expired(self.jobs, self.store, self.settings.job_ttl_s)
            except Exception as exc:
                log.warning("retention sweep failed: %s", exc)


def sweep_expired(jobs: RedisJobStore, store: ObjectStore, ttl_s: float, now: float | None = None) -> int:
    """Remove results and inputs older than the retention time; their jobs read 'expired'."""
    now = time.time() if now is None else now
    cutoff = now - ttl_s
    expired = jobs.finished_before(cutoff)
    for job_id in expired:
        job = jobs.get(job_id)
        if job is not None and job.result_key:
            store.delete(job.result_key)
        if job is not None:
            jobs.finish(job_id, JobStatus.expired)
    jobs.forget_finished(expired)
    # Inputs are content-addressed and shared by jobs: each submission re-writes (touches) them,
    # so an input untouched for the retention time belongs to no live job.
    store.delete_older_than("inputs/", datetime.fromtimestamp(cutoff, tz=timezone.utc))
    return len(expired)


_runtime: WorkerRuntime | None = None
_runtime_lock = threading.Lock()


def init_runtime(settings: Settings, app: Celery) -> WorkerRuntime:
    """Set up this process's runtime: the worker entry point's settings and the app it built from them."""
    global _runtime
    with _runtime_lock:
        if _runtime is not None:
            raise RuntimeError("the worker runtime is already set up in this process")
        _runtime = WorkerRuntime(settings, app)
        return _runtime


def get_runtime() -> WorkerRuntime:
    """This process's runtime, as the worker entry point set it up (`init_runtime`)."""
    with _runtime_lock:
        if _runtime is None:
            raise RuntimeError("no worker runtime in this process: start workers with `dermq worker`")
        return _runtime
