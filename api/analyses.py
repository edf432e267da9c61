"""Every analysis kind: its request model and how a body becomes a `Submission`.

Endpoints and batch items share this table, so a batch item of kind
"severity-assessment/manual" is checked exactly like a POST to that endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from api import severity
from api.errors import ApiError, error_item
from api.intake import Loc, diagnosis_submission
from api.schemas import DiagnosisRequest, GlobalSeverityRequest, LocalSeverityRequest, ManualSeverityRequest
from dermq.settings import Settings
from workers.client import Submission


@dataclass(frozen=True)
class AnalysisKind:
    model: type[BaseModel]
    to_submission: Callable[[Any, Settings, Loc], Submission]


ANALYSES: dict[str, AnalysisKind] = {
    "diagnosis-support": AnalysisKind(DiagnosisRequest, diagnosis_submission),
    severity.LOCAL: AnalysisKind(LocalSeverityRequest, severity.local_submission),
    severity.GLOBAL: AnalysisKind(GlobalSeverityRequest, severity.global_submission),
    severity.MANUAL: AnalysisKind(ManualSeverityRequest, severity.manual_submission),
}


def submission_from_body(kind: str, body: Any, settings: Settings, loc: Loc) -> Submission:
    """For batch items, whose bodies arrive unparsed: validate with the kind's model, errors under `loc`."""
    analysis = ANALYSES[kind]
    try:
        req = analysis.model.model_validate(body)
    except ValidationError as exc:
        raise ApiError(422, [error_item(e["msg"], type=e["type"], loc=[*loc, *e["loc"]]) for e in exc.errors()]) from None
    return analysis.to_submission(req, settings, loc)
