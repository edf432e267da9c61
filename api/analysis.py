"""The shared synchronous/asynchronous face of every analysis endpoint (SPEC §2.10)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.errors import ApiError
from workers.client import IdempotencyConflict, JobClient, SubmitError, Submission
from workers.jobs import Job, JobStatus


def _preferences(request: Request) -> dict[str, str]:
    """RFC 7240 `Prefer` header: `respond-async`, `wait=<seconds>`."""
    prefs: dict[str, str] = {}
    for token in request.headers.get("prefer", "").replace(";", ",").split(","):
        name, _, value = token.strip().partition("=")
        if name:
            prefs[name.lower()] = value.strip().strip('"')
    return prefs


def wait_budget(request: Request, default_s: float) -> float:
    """Seconds to wait for the report: 0 for respond-async, else min(wait=, the configured time)."""
    prefs = _preferences(request)
    if "respond-async" in prefs:
        return 0.0
    try:
        return max(0.0, min(default_s, float(prefs["wait"]))) if "wait" in prefs else default_s
    except ValueError:
        return default_s


def accepted(job: Job) -> JSONResponse:
    return JSONResponse(
        {"id": job.id, "status": job.status.value},
        status_code=202,
        headers={"Location": f"/jobs/{job.id}", "Retry-After": "1"},
    )


async def submit(jobs: JobClient, client: str, submission: Submission, *, idempotency_key: str | None = None,
                 interactive: bool = True, batch_id: str | None = None) -> tuple[Job, bool]:
    try:
        return await run_in_threadpool(
            jobs.submit, client, submission, interactive=interactive, batch_id=batch_id, idempotency_key=idempotency_key
        )
    except IdempotencyConflict as exc:
        raise ApiError.one(409, str(exc), type="idempotency_conflict", loc=["header", "Idempotency-Key"]) from None
    except SubmitError as exc:
        raise ApiError.one(503, f"service unavailable, try again shortly ({exc})", type="unavailable",
                           headers={"Retry-After": "5"}) from None


async def wait_for(jobs: JobClient, job_id: str, timeout_s: float) -> Job | None:
    """Poll the record until the job is terminal or the time is up (then None)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        job = await run_in_threadpool(jobs.jobs.get, job_id)
        if job is None or job.status.terminal:
            return job
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.25)


def result_or_error(jobs: JobClient, job: Job) -> dict[str, Any]:
    """The report of a succeeded job; the right error for any other status."""
    if job.status is JobStatus.succeeded:
        return jobs.result(job)
    if job.status is JobStatus.failed:
        raise ApiError.one(409, f"job failed: {job.error}", type="job_failed", loc=["path", "id"])
    raise ApiError.one(409, f"job is {job.status.value}", type=f"job_{job.status.value}", loc=["path", "id"])


async def respond(jobs: JobClient, client: str, submission: Submission, request: Request, sync_timeout_s: float):
    job, _ = await submit(jobs, client, submission, idempotency_key=request.headers.get("idempotency-key"))
    budget = wait_budget(request, sync_timeout_s)
    if budget <= 0:
        return accepted(job)
    finished = await wait_for(jobs, job.id, budget)
    if finished is None:
        return accepted(job)  # still working: never hang, hand over to polling
    if finished.status is JobStatus.failed:
        raise ApiError.one(500 if (finished.error or "").startswith("internal") else 422,
                           f"analysis failed: {finished.error}", type="job_failed", loc=["body"])
    return JSONResponse(await run_in_threadpool(result_or_error, jobs, finished))
