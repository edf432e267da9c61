"""Per-process worker state: stores, the model behind its batcher, metrics and housekeeping threads."""

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

import torch

from dermq import __version__
from dermq.settings import Settings, get_settings
from pipeline.catalogue import load_catalogue
from pipeline.classify import ClassifierOutput
from pipeline.diagnosis import DiagnosisPipeline
from pipeline.quality import QualityConfig
from workers import metrics
from workers.batcher import DynamicBatcher
from workers.jobs import WORKER_KEY_PREFIX, JobStatus, RedisJobStore
from workers.model_cache import LoadedModel, load_classifier
from workers.storage import ObjectStore, create_store

log = logging.getLogger(__name__)

HEARTBEAT_S = 10


class WorkerRuntime:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.hostname = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()

    @cached_property
    def store(self) -> ObjectStore:
        return create_store(self.settings)

    @cached_property
    def jobs(self) -> RedisJobStore:
        return RedisJobStore.from_url(self.settings.effective_redis_url, ttl_s=self.settings.job_ttl_s)

    @cached_property
    def model(self) -> LoadedModel:
        return load_classifier(self.settings, self.store)

    @cached_property
    def batcher(self) -> DynamicBatcher[torch.Tensor, ClassifierOutput]:
        classifier = self.model.classifier

        def forward(items: Sequence[torch.Tensor]) -> list[ClassifierOutput]:
            return classifier.predict(torch.stack(list(items)))

        return DynamicBatcher(
            forward,
            max_batch_size=self.settings.batch_max_size,
            max_wait_s=self.settings.batch_max_wait_ms / 1000.0,
            on_batch=metrics.observe_batch,
        )

    @cached_property
    def diagnosis(self) -> DiagnosisPipeline:
        return DiagnosisPipeline(
            load_catalogue(),
            self.model.bundle.manifest,
            preprocess=self.model.classifier.preprocess,
            predict=self.batcher.map,
            quality=QualityConfig(min_score=self.settings.quality_min_score),
            heatmap_top_k=self.settings.heatmap_top_k,
            heatmap_max_side=self.settings.heatmap_max_side,
            models=[self.model.describe()],
        )

    def describe(self) -> dict[str, Any]:
        return {
            "worker": self.hostname,
            "version": __version__,
            "device": str(self.model.classifier.device),
            "models": [self.model.describe()],
            "batchMaxSize": self.settings.batch_max_size,
            "batchMaxWaitMs": self.settings.batch_max_wait_ms,
            "concurrency": self.settings.worker_concurrency,
        }

    # --- lifecycle ---
    def start(self) -> None:
        """Load everything before taking the first task, then start the background threads."""
        _ = self.diagnosis
        if self.settings.worker_metrics_port:
            metrics.serve(self.settings.worker_metrics_port)
        for target in (self._heartbeat_loop, self._retention_loop):
            threading.Thread(target=target, daemon=True, name=target.__name__).start()

    def stop(self) -> None:
        self._stop.set()
        try:
            self.jobs.r.delete(WORKER_KEY_PREFIX + self.hostname)
        except Exception:  # the broker may already be gone at shutdown
            pass

    def _heartbeat_loop(self) -> None:
        payload = json.dumps(self.describe())
        while not self._stop.is_set():
            try:
                self.jobs.r.set(WORKER_KEY_PREFIX + self.hostname, payload, ex=3 * HEARTBEAT_S)
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)
            self._stop.wait(HEARTBEAT_S)

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


def get_runtime() -> WorkerRuntime:
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = WorkerRuntime(get_settings())
        return _runtime
