from __future__ import annotations

from fastapi import APIRouter, Request

from api.analysis import respond
from api.deps import ClientDep, JobClientDep, SettingsDep
from api.intake import diagnosis_submission
from api.schemas import DiagnosisRequest

router = APIRouter(tags=["diagnosis"])


@router.post(
    "/diagnosis-support",
    responses={202: {"description": "Accepted: poll the Location (Prefer: respond-async, or the wait ran out)."}},
)
async def diagnosis_support(body: DiagnosisRequest, request: Request, client: ClientDep, jobs: JobClientDep,
                            settings: SettingsDep):
    """Ranked ICD-11 differential diagnosis for one or more images of the same concern."""
    submission = diagnosis_submission(body, settings, ["body"])
    return await respond(jobs, client, submission, request, settings.sync_timeout_s)
