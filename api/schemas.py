"""Request bodies, camelCase as in the reference API."""

from __future__ import annotations

from typing import Literal

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


AnalysisKind = Literal["diagnosis-support"]


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
