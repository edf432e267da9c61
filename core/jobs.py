"""Contracts about jobs that the API and the workers share: the job and batch records, and each
analysis kind's job spec.

A job record is one Redis hash (`workers.job_store.RedisJobStore`) whose layout the store's Lua scripts
also read and write: a field per attribute, as text; None is no field at all; enums are their
values; floats their shortest exact decimal (`repr`), so a timestamp survives the round trip to
the microsecond; the spec is one JSON string. `Job.to_hash` writes that layout and
`Job.model_validate` reads it back (text to numbers by pydantic's coercion).
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum, StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_serializer, field_validator
from pydantic.alias_generators import to_camel


class AnalysisKind(StrEnum):
    """What a job does: the analysis endpoint (or batch item kind) it came from and the handler that runs it.

    A StrEnum, so it formats as its value wherever it lands (metrics labels, log lines).
    """

    diagnosis = "diagnosis-support"
    severity_local = "severity-assessment/automatic/local"
    severity_global = "severity-assessment/automatic/global"
    severity_manual = "severity-assessment/manual"


class JobErrorKind(str, Enum):
    """Why a job failed; the kind, never the message's wording, decides what the API answers."""

    input = "input"  # its images cannot be analysed (unreadable, no longer stored): the client's to fix
    internal = "internal"  # a bug or a broken model
    worker_lost = "worker_lost"  # the workers running it kept dying (killed, out of memory)
    outage = "outage"  # storage or the broker stayed unreachable through every retry

    @property
    def http_status(self) -> int:
        """The status a synchronous request answers a job that failed this way."""
        return {JobErrorKind.input: 422, JobErrorKind.outage: 503}.get(self, 500)


class JobStatus(str, Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    expired = "expired"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.expired})


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


# --- job specs: the request with its images replaced by object-store keys ---

class _SpecPart(BaseModel):
    """Spec JSON keeps the request's camelCase keys (`bodySite`, `contentType`), as stored since the start."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)


class StoredImage(_SpecPart):
    """One input image as the object store holds it."""

    key: str
    title: str | None = None
    content_type: str
    width: int
    height: int


class CatalogueCondition(_SpecPart):
    code: str  # a catalogue code: the report renders the condition from the catalogue


class TextCondition(_SpecPart):
    text: str  # the client's own wording, for systems that score any finding (nsil)


class SeveritySite(_SpecPart):
    body_site: str | None = None
    items: dict[str, float]  # the clinical answers the client gave, by item code
    image: int | None = None  # index into the spec's images; None: no photo (a questionnaire)


class DiagnosisSpec(_SpecPart):
    images: list[StoredImage] = Field(default_factory=list)  # attached at submission


class SeveritySpec(_SpecPart):
    system: str  # the scoring system's code
    mode: Literal["local", "global", "manual"]
    condition: CatalogueCondition | TextCondition | None = None
    sites: list[SeveritySite] = Field(min_length=1)
    images: list[StoredImage] = Field(default_factory=list)  # attached at submission


JobSpec = DiagnosisSpec | SeveritySpec

SPEC_MODELS: dict[AnalysisKind, type[DiagnosisSpec] | type[SeveritySpec]] = {
    AnalysisKind.diagnosis: DiagnosisSpec,
    AnalysisKind.severity_local: SeveritySpec,
    AnalysisKind.severity_global: SeveritySpec,
    AnalysisKind.severity_manual: SeveritySpec,
}


# --- records ---

class Job(BaseModel):
    id: str
    client: str
    kind: AnalysisKind
    status: JobStatus
    created_at: float
    queue: str = ""
    spec: JobSpec  # the model of its kind (`SPEC_MODELS`)
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    error: str | None = None
    error_kind: JobErrorKind | None = None  # set with `error` when the job failed
    stage: str | None = None
    done: int = 0
    total: int = 0
    result_key: str | None = None
    batch_id: str | None = None
    reference: str | None = None
    run: str | None = None  # the lease holder's run token; after success, the run that won
    lease_until: float | None = None
    lost: int = 0  # runs whose worker died (their lease lapsed)
    callback_url: str | None = None  # where its finished event goes (workers/webhooks.py)

    @field_validator("spec", mode="before")
    @classmethod
    def _spec_of_its_kind(cls, value: Any, info: ValidationInfo) -> Any:
        """The kind picks the spec model (a spec carries no kind of its own); the hash holds it as JSON."""
        kind = info.data.get("kind")
        if kind is None:  # the kind itself was invalid: that error is reported already
            return value
        model = SPEC_MODELS[kind]
        if isinstance(value, model):
            return value
        return model.model_validate_json(value) if isinstance(value, str) else model.model_validate(value)

    @field_serializer("spec", when_used="json")
    def _spec_as_json(self, spec: JobSpec) -> str:
        return spec.model_dump_json()

    def to_hash(self) -> dict[str, str]:
        """The Redis hash fields (see the module docstring); `str` of a JSON-mode float is its `repr`."""
        return {name: str(value) for name, value in self.model_dump(mode="json", exclude_none=True).items()}

    def public(self) -> dict[str, Any]:
        """The `GET /jobs/{id}` representation."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "status": self.status.value,
            "progress": {"stage": self.stage, "done": self.done, "total": self.total},
            "createdAt": iso(self.created_at),
            "startedAt": iso(self.started_at),
            "finishedAt": iso(self.finished_at),
            "attempts": self.attempts,
            "error": self.error,
            "batchId": self.batch_id,
            "reference": self.reference,
        }


class Batch(BaseModel):
    """A batch record, stored as one JSON string."""

    id: str
    client: str
    created_at: float
    job_ids: list[str] = Field(default_factory=list)
    references: list[str | None] = Field(default_factory=list)
    callback_url: str | None = None
