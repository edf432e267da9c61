"""Severity assessment: one body site, several sites combined, or a clinician's questionnaire."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api import severity
from api.analysis import AnalysisRoute, respond
from api.deps import ClientDep, JobClientDep, SettingsDep
from api.schemas import GlobalSeverityRequest, LocalSeverityRequest, ManualSeverityRequest, error_responses

router = APIRouter(prefix="/severity-assessment", tags=["severity"], route_class=AnalysisRoute,
                   responses=error_responses(401, 409, 413, 503))
ACCEPTED = {202: {"description": "Accepted: poll the Location (Prefer: respond-async, or the wait ran out)."}}


@router.post("/automatic/local", responses=ACCEPTED)
async def automatic_local(body: LocalSeverityRequest, request: Request, client: ClientDep, jobs: JobClientDep,
                          settings: SettingsDep):
    """Score one body site from its image plus the clinical inputs the image cannot give."""
    submission = await run_in_threadpool(severity.local_submission, body, settings, ["body"])  # decodes the image
    return await respond(jobs, client, submission, request, settings.sync_timeout_s)


@router.post("/automatic/global", responses=ACCEPTED)
async def automatic_global(body: GlobalSeverityRequest, request: Request, client: ClientDep, jobs: JobClientDep,
                           settings: SettingsDep):
    """Score several body sites, each with its own image, and combine them with the system's regional weights."""
    submission = await run_in_threadpool(severity.global_submission, body, settings, ["body"])
    return await respond(jobs, client, submission, request, settings.sync_timeout_s)


@router.post("/manual", responses=ACCEPTED)
async def manual(body: ManualSeverityRequest, request: Request, client: ClientDep, jobs: JobClientDep,
                 settings: SettingsDep):
    """Score a clinician's questionnaire (no image)."""
    submission = await run_in_threadpool(severity.manual_submission, body, settings, ["body"])
    return await respond(jobs, client, submission, request, settings.sync_timeout_s)
