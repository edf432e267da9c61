from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api.analysis_route import AnalysisRoute, respond
from api.deps import ClientDep, JobClientDep, JobReaderDep, SettingsDep
from api.intake import diagnosis_submission
from api.schemas import FHIR_ALTERNATIVE, DiagnosisRequest, error_responses
from core.reports import DiagnosticReport

router = APIRouter(tags=["diagnosis"], route_class=AnalysisRoute, responses=error_responses(401, 409, 413, 503))


@router.post(
    "/diagnosis-support",
    response_model=DiagnosticReport,  # documents the report; the stored bytes are served as they are
    responses={202: {"description": "Accepted: poll the Location (Prefer: respond-async, or the wait ran out)."},
               **FHIR_ALTERNATIVE},
)
async def diagnosis_support(body: DiagnosisRequest, request: Request, client: ClientDep, jobs: JobClientDep,
                            reader: JobReaderDep, settings: SettingsDep):
    """Ranked ICD-11 differential diagnosis for one or more images of the same concern."""
    submission = await run_in_threadpool(diagnosis_submission, body, settings, ["body"])  # decodes every image
    return await respond(jobs, reader, client, submission, request, settings.sync_timeout_s)
