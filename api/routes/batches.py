from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Annotated, Any, AsyncIterator

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from api.analysis_intake import submission_from_body
from api.analysis_route import AnalysisRoute, submit
from api.callbacks import checked_callback
from api.deps import ClientDep, JobClientDep, JobReaderDep, SettingsDep
from api.errors import ApiError, not_found
from api.job_reader import SAFETY_READ_S, JobReader, wait_event
from api.schemas import BatchItem, BatchRequest, error_responses
from core.jobs import Job, JobStatus, iso
from core.settings import Settings
from workers.job_client import JobClient, Submission
from workers.job_store import new_id

router = APIRouter(prefix="/batches", tags=["batches"], route_class=AnalysisRoute,
                   responses=error_responses(401, 404, 413, 503))


@router.post("", status_code=202)
async def create_batch(body: BatchRequest, client: ClientDep, jobs: JobClientDep,
                       settings: SettingsDep):
    """Many analyses in one call. Each item is checked on its own: bad ones are reported, good ones run."""
    if len(body.items) > settings.max_batch_items:
        raise ApiError.one(413, f"at most {settings.max_batch_items} items per batch; send several batches",
                           type="too_many_items", loc=["body", "items"])
    callback_url = await run_in_threadpool(checked_callback, body.callbackUrl, settings, ["body", "callbackUrl"])
    accepted, rejected = await run_in_threadpool(_check_items, body.items, settings)  # decodes every image
    if not accepted:
        raise ApiError(422, [d for r in rejected for d in r["detail"]])

    batch_id = new_id()
    submitted: list[tuple[int, Job]] = []
    for i, sub in accepted:
        job, _ = await submit(jobs, client, sub, interactive=False, batch_id=batch_id)
        submitted.append((i, job))
    batch = await run_in_threadpool(
        jobs.create_batch, client, batch_id, [j.id for _, j in submitted], [j.reference for _, j in submitted],
        callback_url,
    )
    return JSONResponse(
        {
            "id": batch.id,
            "jobs": [{"index": i, "id": j.id, "reference": j.reference, "status": j.status.value} for i, j in submitted],
            "rejected": rejected,
        },
        status_code=202,
        headers={"Location": f"/batches/{batch.id}"},
    )


def _check_items(items: list[BatchItem], settings: Settings) -> tuple[list[tuple[int, Submission]], list[dict[str, Any]]]:
    """Each item on its own: (index, submission) of the good ones, the rejection of each bad one."""
    accepted: list[tuple[int, Submission]] = []
    rejected: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        try:
            sub = submission_from_body(item.kind, item.body, settings, ["body", "items", i, "body"])
        except ApiError as exc:
            rejected.append({"index": i, "reference": item.reference, "status": exc.status, "detail": exc.items})
            continue
        sub.reference = item.reference
        accepted.append((i, sub))
    return accepted, rejected


@router.get("/{batch_id}")
async def get_batch(batch_id: str, client: ClientDep, jobs: JobClientDep):
    batch = await run_in_threadpool(jobs.get_batch, client, batch_id)
    if batch is None:
        raise not_found("batch")
    records = [j for j in await run_in_threadpool(jobs.jobs.get_many, batch.job_ids) if j is not None]
    counts = Counter(j.status.value for j in records)
    return {
        "id": batch.id,
        "createdAt": iso(batch.created_at),
        "total": len(batch.job_ids),
        "counts": {s.value: counts.get(s.value, 0) for s in JobStatus},
        "done": all(j.status.terminal for j in records),
        "jobs": [j.public() for j in records],
    }


@router.get("/{batch_id}/results")
async def batch_results(batch_id: str, client: ClientDep, jobs: JobClientDep, reader: JobReaderDep,
                        timeout: Annotated[float, Query(ge=0, le=3600)] = 300.0):
    """Newline-delimited JSON, one line per job as it finishes; ends when all are done or the timeout passes."""
    batch = await run_in_threadpool(jobs.get_batch, client, batch_id)
    if batch is None:
        raise not_found("batch")
    return StreamingResponse(_stream(jobs, reader, batch.job_ids, timeout), media_type="application/x-ndjson")


async def _stream(jobs: JobClient, reader: JobReader, job_ids: list[str], timeout: float) -> AsyncIterator[bytes]:
    """Each job's line as soon as its end is announced (api/job_reader.py), not on a timer."""
    pending = list(job_ids)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with reader.watching(pending) as ended:
        while pending:
            ended.clear()
            records = await run_in_threadpool(jobs.jobs.get_many, pending)
            still = []
            for job_id, job in zip(pending, records):
                if job is None or not job.status.terminal:
                    if job is not None:
                        still.append(job_id)
                    continue
                yield await run_in_threadpool(_line, jobs, job)
            pending = still
            left = deadline - loop.time()
            if not pending or left <= 0:
                break
            await wait_event(ended, min(left, SAFETY_READ_S))


def _line(jobs: JobClient, job: Job) -> bytes:
    """One NDJSON line; a report goes in as its stored bytes (a JSON value, spliced rather than re-encoded)."""
    head: dict[str, Any] = {"id": job.id, "reference": job.reference, "status": job.status.value}
    if job.status is not JobStatus.succeeded:
        return (json.dumps(head | {"error": job.error}) + "\n").encode()
    return json.dumps(head).encode()[:-1] + b', "result": ' + jobs.result_bytes(job) + b"}\n"
