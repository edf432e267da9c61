"""At-least-once delivery with real worker processes: a job survives its worker being SIGKILLed."""

from __future__ import annotations

import signal
import time

import pytest

from support import SAMPLE_IMAGES, attachment

pytestmark = pytest.mark.slow


def test_job_completes_after_its_worker_is_killed(service, api) -> None:
    stack = service.stack
    payload = {"payload": [attachment(p) for p in SAMPLE_IMAGES[20:36]]}
    job_id = api.post("/diagnosis-support", json=payload, headers={"Prefer": "respond-async"}).json()["id"]
    deadline = time.monotonic() + 60
    while api.get(f"/jobs/{job_id}").json()["status"] != "running":
        assert time.monotonic() < deadline, "job never started"
        time.sleep(0.01)
    victim = stack.worker_procs[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    assert api.get(f"/jobs/{job_id}").json()["status"] == "running"
    stack.worker_procs.remove(victim)
    stack.start_worker()
    deadline = time.monotonic() + 120
    while (job := api.get(f"/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"job was not redelivered: {job}"
        time.sleep(0.25)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    assert len(api.get(f"/jobs/{job_id}/result").json()["imagingAnalysis"]) == 16
