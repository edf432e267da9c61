from __future__ import annotations

import time

import pytest

from support import SAMPLE_IMAGES, attachment

pytestmark = pytest.mark.slow


def wait_done(api, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_respond_async_polling_and_result(api) -> None:
    r = api.post("/diagnosis-support", json={"payload": [attachment(SAMPLE_IMAGES[6])]},
                 headers={"Prefer": "respond-async"})
    assert r.status_code == 202
    body = r.json()
    assert r.headers["location"] == f"/jobs/{body['id']}" and body["status"] == "queued"
    early = api.get(f"/jobs/{body['id']}/result")
    assert early.status_code in (200, 409)  # 409 with the status while it is still running
    job = wait_done(api, body["id"])
    assert job["status"] == "succeeded" and job["kind"] == "diagnosis-support"
    assert job["attempts"] == 1 and job["startedAt"] and job["finishedAt"]
    assert job["progress"]["stage"] == "report"
    result = api.get(f"/jobs/{body['id']}/result").json()
    assert result["identifier"]["value"] == body["id"]
    listed = api.get("/jobs", params={"status": "succeeded", "limit": 500}).json()
    assert body["id"] in [j["id"] for j in listed["items"]]
    assert all(j["status"] == "succeeded" for j in listed["items"])


def test_unknown_job_is_404(api) -> None:
    assert api.get("/jobs/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api.get("/jobs/00000000-0000-0000-0000-000000000000/result").status_code == 404


def test_synchronous_wait_runs_out_into_202(api) -> None:
    """Past its wait (DERMQ_SYNC_TIMEOUT_S, or a shorter RFC 7240 `Prefer: wait=`) the API answers 202, never hangs."""
    started = time.monotonic()
    r = api.post("/diagnosis-support", json={"payload": [attachment(SAMPLE_IMAGES[7])]},
                 headers={"Prefer": "wait=0"})
    assert r.status_code == 202 and r.headers["location"] == f"/jobs/{r.json()['id']}"
    assert time.monotonic() - started < 5
    assert wait_done(api, r.json()["id"])["status"] == "succeeded"


def test_cancel_a_queued_job(api) -> None:
    # A backlog in front of it keeps the last job queued long enough to cancel it.
    items = [{"kind": "diagnosis-support", "body": {"payload": [attachment(p)]}} for p in SAMPLE_IMAGES[:16]]
    batch = api.post("/batches", json={"items": items}).json()
    last = batch["jobs"][-1]["id"]
    before = api.get(f"/jobs/{last}").json()["status"]
    r = api.delete(f"/jobs/{last}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert before == "queued"
    # It stays cancelled after the worker reaches its message, and it never ran.
    for job in batch["jobs"][:-1]:
        wait_done(api, job["id"])
    time.sleep(1)
    job = api.get(f"/jobs/{last}").json()
    assert job["status"] == "cancelled" and job["attempts"] == 0
    assert api.get(f"/jobs/{last}/result").status_code == 409
    assert api.delete(f"/jobs/{last}").status_code == 409


def test_idempotency_key(api) -> None:
    body = {"payload": [attachment(SAMPLE_IMAGES[8])]}
    headers = {"Prefer": "respond-async", "Idempotency-Key": f"key-{time.time()}"}
    first = api.post("/diagnosis-support", json=body, headers=headers).json()
    again = api.post("/diagnosis-support", json=body, headers=headers).json()
    assert first["id"] == again["id"]
    other_body = {"payload": [attachment(SAMPLE_IMAGES[9])]}
    conflict = api.post("/diagnosis-support", json=other_body, headers=headers)
    assert conflict.status_code == 409 and conflict.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_interactive_requests_overtake_a_batch_backlog(api) -> None:
    items = [{"kind": "diagnosis-support", "body": {"payload": [attachment(SAMPLE_IMAGES[i % 40])]}}
             for i in range(40)]
    batch = api.post("/batches", json={"items": items}).json()
    r = api.post("/diagnosis-support", json={"payload": [attachment(SAMPLE_IMAGES[10])]})
    assert r.status_code == 200
    counts = api.get(f"/batches/{batch['id']}").json()["counts"]
    assert counts["queued"] > 0, f"the interactive request should finish before the batch backlog: {counts}"
    for job in batch["jobs"]:
        wait_done(api, job["id"])
