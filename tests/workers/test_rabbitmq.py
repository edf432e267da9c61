"""RabbitMQ works as the broker too: a real worker process consumes over AMQP (skipped without RabbitMQ)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.jobs import AnalysisKind, DiagnosisSpec, JobStatus
from core.settings import Settings
from pipeline.imaging import check_image
from support import SAMPLE_IMAGES
from workers.celery_app import create_celery
from workers.job_client import JobClient, Submission
from workers.job_store import RedisJobStore
from workers.storage import create_store

AMQP_URL = os.environ.get("DERMQ_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

pytestmark = pytest.mark.slow


def rabbitmq_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not rabbitmq_reachable(), reason="no RabbitMQ on 127.0.0.1:5672")
def test_job_runs_through_rabbitmq(redis_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=redis_url, broker_url=AMQP_URL,
                        queue_interactive="dermq-amqp-test.interactive", queue_batch="dermq-amqp-test.batch")
    env = {**os.environ, "DERMQ_DATA_DIR": str(tmp_path), "DERMQ_REDIS_URL": redis_url,
           "DERMQ_BROKER_URL": AMQP_URL, "DERMQ_WORKER_METRICS_PORT": "0",
           "DERMQ_QUEUE_INTERACTIVE": settings.queue_interactive, "DERMQ_QUEUE_BATCH": settings.queue_batch}
    worker = subprocess.Popen([sys.executable, "-m", "dermq.cli", "worker", "--concurrency", "1"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        jobs = JobClient(settings, create_store(settings), RedisJobStore.from_url(redis_url, ttl_s=3600),
                         create_celery(settings))
        image = check_image(SAMPLE_IMAGES[0].read_bytes(), declared_type=None, max_pixels=10**7)
        job, created = jobs.submit("amqp-client", Submission(kind=AnalysisKind.diagnosis, spec=DiagnosisSpec(), images=[(image, None)]),
                                   interactive=True)
        assert created
        deadline = time.monotonic() + 120
        while (record := jobs.get("amqp-client", job.id)).status in (JobStatus.queued, JobStatus.running):
            assert worker.poll() is None, "worker exited"
            assert time.monotonic() < deadline, "job not processed over AMQP"
            time.sleep(0.2)
        assert record.status is JobStatus.succeeded, record.error
        assert jobs.result(record)["resourceType"] == "DiagnosticReport"
    finally:
        worker.terminate()
        worker.wait(30)
