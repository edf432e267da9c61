from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api.analysis import AnalysisRoute, respond
from api.deps import ClientDep, JobClientDep, SettingsDep
from api.intake import diagnosis_submission
from api.schemas import DiagnosisRequest, error_responses

router = APIRouter(tags=["diagnosis"], route_class=AnalysisRoute, responses=error_responses(401, 409, 413, 503))


@router.post(
    "/diagnosis-support",
    responses={202: {"description": "Accepted: poll the Location (Prefer: respond-async, or the wait ran out)."}},
)
async def diagnosis_support(body: DiagnosisRequest, request: Request, client: ClientDep, jobs: JobClientDep,
                            settings: SettingsDep):
    """Ranked ICD-11 differential diagnosis for one or more images of the same concern."""
    submission = await run_in_threadpool(diagnosis_submission, body, settings, ["body"])  # decodes every image
    return await respond(jobs, client, submission, request, settings.sync_timeout_s)
