"""Severity assessment: one body site, several sites combined, or a clinician's questionnaire."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api import severity_intake
from api.analysis_route import AnalysisRoute, respond
from api.deps import ClientDep, JobClientDep, JobReaderDep, SettingsDep
from api.schemas import (
    FHIR_ALTERNATIVE,
    GlobalSeverityRequest,
    LocalSeverityRequest,
    ManualSeverityRequest,
    error_responses,
)
from core.reports import SeverityReport

router = APIRouter(prefix="/severity-assessment", tags=["severity"], route_class=AnalysisRoute,
                   responses=error_responses(401, 409, 413, 503))
ACCEPTED = {202: {"description": "Accepted: poll the Location (Prefer: respond-async, or the wait ran out)."},
            **FHIR_ALTERNATIVE}


@router.post("/automatic/local", response_model=SeverityReport, responses=ACCEPTED)
async def automatic_local(body: LocalSeverityRequest, request: Request, client: ClientDep, jobs: JobClientDep,
                          reader: JobReaderDep, settings: SettingsDep):
    """Score one body site from its image plus the clinical inputs the image cannot give."""
    submission = await run_in_threadpool(severity_intake.local_submission, body, settings, ["body"])  # decodes the image
    return await respond(jobs, reader, client, submission, request, settings.sync_timeout_s)


@router.post("/automatic/global", response_model=SeverityReport, responses=ACCEPTED)
async def automatic_global(body: GlobalSeverityRequest, request: Request, client: ClientDep, jobs: JobClientDep,
                          reader: JobReaderDep, settings: SettingsDep):
    """Score several body sites, each with its own image, and combine them with the system's regional weights."""
    submission = await run_in_threadpool(severity_intake.global_submission, body, settings, ["body"])
    return await respond(jobs, reader, client, submission, request, settings.sync_timeout_s)


@router.post("/manual", response_model=SeverityReport, responses=ACCEPTED)
async def manual(body: ManualSeverityRequest, request: Request, client: ClientDep, jobs: JobClientDep,
                          reader: JobReaderDep, settings: SettingsDep):
    """Score a clinician's questionnaire (no image)."""
    submission = await run_in_threadpool(severity_intake.manual_submission, body, settings, ["body"])
    return await respond(jobs, reader, client, submission, request, settings.sync_timeout_s)
