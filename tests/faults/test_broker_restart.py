"""Fault suite: the broker goes away under a running batch and comes back.

- Redis restart: Redis (broker and job store; its own server, append-only) is
  stopped for 10 s while two supervised worker processes run a batch of 12 jobs,
  then started again on the same port and files. The fault comes when the short
  jobs are done and the long ones still run, so each worker holds unacknowledged
  messages while it waits on Redis for more: the state in which kombu used to
  crash a worker on connection loss. While Redis is away every poll of
  GET /jobs/{id} answers 503 with Retry-After, never 500. Afterwards the workers
  are the same processes (they reconnected by themselves: the supervisor had
  nothing to restart) and every job has succeeded: none lost.
- RabbitMQ connection loss: a test cannot restart the machine's RabbitMQ, so the
  broker closes every connection of the stack (rabbitmqctl, in a vhost of the
  test's own) three times from the moment only long jobs run, each time once it has
  reconnected; the worker reconnects and finishes every job. Skipped without RabbitMQ or a permitted rabbitmqctl.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from dermq.embedded import free_port, redis_server_binary, wait_for
from support import SAMPLE_IMAGES, Service, attachment, redis_answers, running_service

pytestmark = pytest.mark.slow

JOBS = 12
LONG = 16  # images in every third job (the most a request may carry)
# Long jobs take the largest photos (5 MP: about 0.15 s each to decode and analyse), short ones the
# smallest, so the long jobs still run well after the short ones are done: that is when the fault comes.
BY_SIZE = sorted(SAMPLE_IMAGES, key=lambda p: p.stat().st_size)
OUTAGE_S = 10
FINISH_S = 120  # after the broker is back, for the jobs it interrupted to be delivered again and run


class RedisServer:
    """A private redis-server that the test stops and starts again on the same port and files."""

    def __init__(self, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.port = workdir, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.workdir),
             "--appendonly", "yes", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: redis_answers(self.url), 20, "redis-server", self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def submit_batch(api: httpx.Client, count: int = JOBS) -> list[str]:
    """Every third job is long (the LONG largest photos), the others short (one small image)."""
    return [api.post("/diagnosis-support", json={"payload": [attachment(p) for p in BY_SIZE[-LONG:]]
                                                 if i % 3 == 0 else [attachment(BY_SIZE[i])]},
                     headers={"Prefer": "respond-async"}).json()["id"] for i in range(count)]


def wait_until_only_long_jobs_run(api: httpx.Client, ids: list[str]) -> None:
    """The moment for the fault: workers have finished their short jobs and wait on the broker for
    more while holding the long ones unacknowledged (see workers/celery_app.py `_RedisChannel`)."""
    deadline = time.monotonic() + 90
    while True:
        statuses = [api.get(f"/jobs/{i}").json()["status"] for i in ids]
        short_done = all(s not in ("queued", "running") for i, s in enumerate(statuses) if i % 3)
        if short_done and "running" in statuses:
            return
        assert not short_done, f"the long jobs finished before the fault: {statuses}"
        assert time.monotonic() < deadline, statuses
        time.sleep(0.05)


def wait_until_finished(api: httpx.Client, ids: list[str]) -> list[dict]:
    deadline = time.monotonic() + FINISH_S
    while True:
        jobs = [api.get(f"/jobs/{i}").json() for i in ids]
        if all(j["status"] not in ("queued", "running") for j in jobs):
            return jobs
        assert time.monotonic() < deadline, [j for j in jobs if j["status"] in ("queued", "running")]
        time.sleep(0.5)


def assert_all_succeeded(api: httpx.Client, jobs: list[dict]) -> None:
    assert [j["status"] for j in jobs] == ["succeeded"] * len(jobs), [j["error"] for j in jobs]
    for job in jobs:
        assert api.get(f"/jobs/{job['id']}/result").json()["resourceType"] == "DiagnosticReport"


def assert_same_workers(service: Service, pids: list[int]) -> None:
    stack = service.stack
    assert [p.pid for p in stack.worker_procs] == pids, f"a worker died and was restarted: {dict(stack.restarts)}"
    assert all(p.poll() is None for p in stack.worker_procs)
    assert not stack.restarts, dict(stack.restarts)


def test_a_redis_restart_mid_batch_loses_no_job_and_no_worker(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        with running_service(server.url, tmp_path / "data", workers=2, DERMQ_WORKER_CONCURRENCY="4") as service:
            service.stack.supervise()  # as `dermq up` runs it: a worker that died would be restarted
            pids = [p.pid for p in service.stack.worker_procs]
            with service.client() as api:
                ids = submit_batch(api)
                wait_until_only_long_jobs_run(api, ids)
                server.stop()
                answers = []
                outage_ends = time.monotonic() + OUTAGE_S
                while time.monotonic() < outage_ends:
                    answers.append(api.get(f"/jobs/{ids[len(answers) % JOBS]}"))
                    time.sleep(0.2)
                server.start()
                assert len(answers) >= 10
                assert {r.status_code for r in answers} == {503}, [r.text for r in answers if r.status_code != 503]
                assert all(int(r.headers["Retry-After"]) > 0 for r in answers)
                assert {r.json()["detail"][0]["type"] for r in answers} == {"unavailable"}
                jobs = wait_until_finished(api, ids)
                assert api.get("/jobs", params={"limit": 100}).json()["total"] == JOBS, "no job lost, none doubled"
                assert_all_succeeded(api, jobs)
            assert_same_workers(service, pids)
    finally:
        server.stop()


def rabbitmqctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)


def wait_until_connected(vhost: str, timeout_s: float = 60) -> None:
    """Until some process of the stack holds an AMQP connection to the vhost (after a close: has reconnected)."""
    deadline = time.monotonic() + timeout_s
    while True:
        listed = rabbitmqctl("list_connections", "--no-table-headers", "vhost")
        assert listed.returncode == 0, listed.stderr
        if vhost in listed.stdout.split():
            return
        assert time.monotonic() < deadline, f"nothing reconnected to {vhost} within {timeout_s} s"
        time.sleep(0.2)


@pytest.fixture()
def amqp_vhost() -> Iterator[str]:
    """A RabbitMQ vhost of this test's own: its connections can be closed without touching anyone else's."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("no rabbitmqctl")
    vhost = f"dermq-faults-{os.getpid()}"
    if rabbitmqctl("add_vhost", vhost).returncode != 0:
        pytest.skip("RabbitMQ is not running here, or rabbitmqctl is not permitted")
    try:
        assert rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*").returncode == 0
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        rabbitmqctl("delete_vhost", vhost)


def test_amqp_connections_closed_mid_batch_are_reestablished(amqp_vhost: str, tmp_path: Path) -> None:
    vhost = amqp_vhost.rsplit("/", 1)[1]
    server = RedisServer(tmp_path / "redis")  # job records in a Redis of the test's own: nothing else sweeps them
    server.start()
    try:
        # Four job threads: the short jobs run beside the two long ones, not behind them.
        with running_service(server.url, tmp_path / "data", DERMQ_BROKER_URL=amqp_vhost,
                             DERMQ_WORKER_CONCURRENCY="4") as service:
            service.stack.supervise()
            pids = [p.pid for p in service.stack.worker_procs]
            with service.client() as api:
                ids = submit_batch(api, JOBS // 2)  # one worker: half the batch keeps the test short
                wait_until_only_long_jobs_run(api, ids)
                for _ in range(3):
                    # Each close waits for the stack to be connected again: a close that found
                    # nobody (the worker still in its reconnect back-off) would test nothing.
                    wait_until_connected(vhost)
                    closed = rabbitmqctl("close_all_connections", "--vhost", vhost, "--limit", "100", "fault test")
                    assert closed.returncode == 0 and "Closed 0" not in closed.stdout, closed.stdout + closed.stderr
                assert_all_succeeded(api, wait_until_finished(api, ids))
            assert_same_workers(service, pids)
    finally:
        server.stop()
