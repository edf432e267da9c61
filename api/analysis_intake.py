"""Every analysis kind: its request model and how a body becomes a `Submission`.

Endpoints and batch items share this table, so a batch item of kind
"severity-assessment/manual" is checked exactly like a POST to that endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from api import severity_intake
from api.errors import ApiError, error_item
from api.intake import Loc, diagnosis_submission
from api.schemas import (
    DiagnosisRequest,
    GlobalSeverityRequest,
    LocalSeverityRequest,
    ManualSeverityRequest,
)
from core.jobs import AnalysisKind
from core.settings import Settings
from workers.job_client import Submission


@dataclass(frozen=True)
class AnalysisIntake:
    """How one kind's request body is validated and becomes a `Submission`."""

    model: type[BaseModel]
    to_submission: Callable[[Any, Settings, Loc], Submission]


INTAKES: dict[AnalysisKind, AnalysisIntake] = {
    AnalysisKind.diagnosis: AnalysisIntake(DiagnosisRequest, diagnosis_submission),
    AnalysisKind.severity_local: AnalysisIntake(LocalSeverityRequest, severity_intake.local_submission),
    AnalysisKind.severity_global: AnalysisIntake(GlobalSeverityRequest, severity_intake.global_submission),
    AnalysisKind.severity_manual: AnalysisIntake(ManualSeverityRequest, severity_intake.manual_submission),
}


def submission_from_body(kind: str, body: Any, settings: Settings, loc: Loc) -> Submission:
    """For batch items, whose bodies arrive unparsed: validate with the kind's model, errors under `loc`."""
    analysis = INTAKES[AnalysisKind(kind)]
    try:
        req = analysis.model.model_validate(body)
    except ValidationError as exc:
        raise ApiError(422, [error_item(e["msg"], type=e["type"], loc=[*loc, *e["loc"]]) for e in exc.errors()]) from None
    return analysis.to_submission(req, settings, loc)
