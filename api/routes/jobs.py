from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.analysis_route import report_response, result_or_error
from api.deps import ClientDep, JobClientDep, JobReaderDep
from api.errors import ApiError, not_found
from api.schemas import FHIR_ALTERNATIVE, error_responses
from core.jobs import JobStatus
from core.reports import DiagnosticReport, SeverityReport

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=error_responses(401, 404, 409, 503))


@router.get("")
async def list_jobs(client: ClientDep, jobs: JobClientDep, status: JobStatus | None = None,
                    offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 50):
    items, total = await run_in_threadpool(jobs.list, client, status=status, offset=offset, limit=limit)
    return {"items": [j.public() for j in items], "total": total, "offset": offset, "limit": limit}


@router.get("/{job_id}")
async def get_job(job_id: str, client: ClientDep, reader: JobReaderDep):
    # The polled endpoint: read on the event loop (no thread hop), see api/job_reader.py.
    job = await reader.get(client, job_id)
    if job is None:
        raise not_found("job")
    return job.public()


@router.get("/{job_id}/result", response_model=DiagnosticReport | SeverityReport, responses=FHIR_ALTERNATIVE)
async def get_result(job_id: str, request: Request, client: ClientDep, jobs: JobClientDep):
    job = await run_in_threadpool(jobs.get, client, job_id)
    if job is None:
        raise not_found("job")
    return await report_response(request, await run_in_threadpool(result_or_error, jobs, job))


@router.delete("/{job_id}")
async def cancel_job(job_id: str, client: ClientDep, jobs: JobClientDep):
    job = await run_in_threadpool(jobs.get, client, job_id)
    if job is None:
        raise not_found("job")
    if job.status.terminal:
        raise ApiError.one(409, f"job is already {job.status.value}", type="job_finished", loc=["path", "id"])
    job = await run_in_threadpool(jobs.cancel, client, job_id)
    if job is not None and job.status is not JobStatus.cancelled:
        raise ApiError.one(409, f"job is already {job.status.value}", type="job_finished", loc=["path", "id"])
    return job.public() if job else None
