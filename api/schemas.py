"""Request bodies, camelCase as in the reference API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.jobs import AnalysisKind


class ContentAttachment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: str = Field(..., min_length=1, description="Plain base64 image bytes, no data: prefix.")
    title: str | None = Field(None, max_length=500)
    contentType: str | None = Field(None, description="Optional; the bytes decide, a contradiction is a 422.")

    @field_validator("data")
    @classmethod
    def _plain_base64(cls, value: str) -> str:
        # A data: URI is the commonest mistake; reference clients expect this one value_error for it.
        if value.lstrip()[:5].lower() == "data:":
            raise ValueError("Only base64 data is allowed")
        return value


class PayloadItem(BaseModel):
    contentAttachment: ContentAttachment


class WithCallback(BaseModel):
    callbackUrl: str | None = Field(
        None, max_length=2048, description="Where dermq POSTs a signed event when the job (or batch) finishes "
        "(docs/webhooks.md); public http(s) addresses only. Unset: the account's default, if any.")


class DiagnosisRequest(WithCallback):
    payload: list[PayloadItem] = Field(..., min_length=1)


# --- severity assessment ---
Answer = float | int | bool | str  # the reference clients send answers as numbers or numeric strings


class QuestionnaireResponse(BaseModel):
    item: dict[str, Answer] = Field(default_factory=dict)


class ScoringSystemAnswers(BaseModel):
    questionnaireResponse: QuestionnaireResponse = Field(default_factory=QuestionnaireResponse)


class Coding(BaseModel):
    """One coding of the known condition; a coding is complete or absent (``coding: null`` with a text)."""

    model_config = ConfigDict(extra="ignore")

    code: str = Field(..., min_length=1, max_length=100)
    display: str = Field(..., max_length=500)
    system: str = Field(..., min_length=1, max_length=500, description="https://icd.who.int/browse/2025-01/mms/en")
    systemDisplay: str = Field(..., max_length=100, description="ICD-11")
    version: str | None = Field(None, max_length=100)


class ConditionConclusion(BaseModel):
    text: str = Field(..., min_length=1, max_length=500)
    coding: list[Coding] | None = None


class KnownCondition(BaseModel):
    conclusion: ConditionConclusion


class LocalSeverityRequest(WithCallback):
    payload: PayloadItem
    bodySite: str
    knownCondition: KnownCondition
    scoringSystem: dict[str, ScoringSystemAnswers]


class SitePayload(PayloadItem):
    bodySite: str
    questionnaireResponse: QuestionnaireResponse = Field(default_factory=QuestionnaireResponse)


class GlobalSeverityRequest(WithCallback):
    payload: list[SitePayload] = Field(..., min_length=1)
    knownCondition: KnownCondition
    scoringSystem: dict[str, ScoringSystemAnswers]


class ManualSeverityRequest(WithCallback):
    payload: list[PayloadItem] | None = Field(
        None, min_length=1, max_length=1, description="Optional photo of the site: checked like any image and "
        "stored with the job for the record; the questionnaire alone is scored.")
    bodySite: str
    knownCondition: KnownCondition | None = None
    scoringSystem: dict[str, ScoringSystemAnswers]


# A batch item's kind: the values of core.jobs.AnalysisKind (kept a Literal for its error messages).
BatchItemKind = Literal[tuple(kind.value for kind in AnalysisKind)]  # type: ignore[valid-type]


class BatchItem(BaseModel):
    kind: BatchItemKind
    body: dict
    reference: str | None = Field(None, max_length=200)


class BatchRequest(WithCallback):
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


# A finished report's other rendering (Accept: application/fhir+json, see docs/fhir.md).
FHIR_ALTERNATIVE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/fhir+json": {"schema": {"type": "object", "description": "A FHIR R4 Bundle (collection) of the report"}}}},
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses an operation can answer, each in the error shape."""
    return {status: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[status]} for status in statuses}
