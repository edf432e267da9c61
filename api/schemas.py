"""Request bodies, camelCase as in the reference API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ContentAttachment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: str = Field(..., min_length=1, description="Plain base64 image bytes, no data: prefix.")
    title: str | None = Field(None, max_length=500)
    contentType: str | None = Field(None, description="Optional; the bytes decide, a contradiction is a 422.")


class PayloadItem(BaseModel):
    contentAttachment: ContentAttachment


class DiagnosisRequest(BaseModel):
    payload: list[PayloadItem] = Field(..., min_length=1)


# --- severity assessment ---
Answer = float | int | bool | str  # the reference clients send answers as numbers or numeric strings


class QuestionnaireResponse(BaseModel):
    item: dict[str, Answer] = Field(default_factory=dict)


class ScoringSystemAnswers(BaseModel):
    questionnaireResponse: QuestionnaireResponse = Field(default_factory=QuestionnaireResponse)


class Coding(BaseModel):
    model_config = ConfigDict(extra="ignore")

    system: str | None = None
    code: str | None = None
    display: str | None = None


class ConditionConclusion(BaseModel):
    text: str | None = Field(None, max_length=500)
    coding: list[Coding] | None = None


class KnownCondition(BaseModel):
    conclusion: ConditionConclusion


class LocalSeverityRequest(BaseModel):
    payload: PayloadItem
    bodySite: str
    knownCondition: KnownCondition
    scoringSystem: dict[str, ScoringSystemAnswers]


class SitePayload(PayloadItem):
    bodySite: str
    questionnaireResponse: QuestionnaireResponse = Field(default_factory=QuestionnaireResponse)


class GlobalSeverityRequest(BaseModel):
    payload: list[SitePayload] = Field(..., min_length=1)
    knownCondition: KnownCondition
    scoringSystem: dict[str, ScoringSystemAnswers]


class ManualSeverityRequest(BaseModel):
    bodySite: str | None = None
    knownCondition: KnownCondition | None = None
    scoringSystem: dict[str, ScoringSystemAnswers]


AnalysisKind = Literal[
    "diagnosis-support",
    "severity-assessment/automatic/local",
    "severity-assessment/automatic/global",
    "severity-assessment/manual",
]


class BatchItem(BaseModel):
    kind: AnalysisKind
    body: dict
    reference: str | None = Field(None, max_length=200)


class BatchRequest(BaseModel):
    items: list[BatchItem] = Field(..., min_length=1)


class LoginResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in_minutes: int


# --- errors: one shape whatever the status (api/errors.py) ---
class ErrorItem(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class ErrorResponse(BaseModel):
    detail: list[ErrorItem]


ERROR_DESCRIPTIONS = {
    401: "Missing, invalid or expired bearer token",
    404: "No such resource for this client",
    409: "Conflict: the job is in a state that forbids this, or the Idempotency-Key was used with another body",
    413: "Too large: request body, image bytes or pixels, images per request or items per batch",
    503: "A dependency (broker, job store, object storage) is briefly unavailable; see Retry-After",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses an operation can answer, each in the error shape."""
    return {status: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[status]} for status in statuses}
