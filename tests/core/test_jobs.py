"""The job contracts: error kinds, the spec of each analysis kind, and the record's hash layout."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from core.jobs import (
    SPEC_MODELS,
    AnalysisKind,
    CatalogueCondition,
    DiagnosisSpec,
    Job,
    JobErrorKind,
    JobStatus,
    SeveritySite,
    SeveritySpec,
    StoredImage,
    TextCondition,
)


def test_each_kind_has_its_status() -> None:
    assert {k: k.http_status for k in JobErrorKind} == {
        JobErrorKind.input: 422, JobErrorKind.internal: 500, JobErrorKind.worker_lost: 500, JobErrorKind.outage: 503}
    assert JobErrorKind("worker_lost") is JobErrorKind.worker_lost  # read back from the record's string


def test_an_analysis_kind_formats_as_its_value() -> None:
    """Metrics labels and log lines take `str()` of the kind."""
    assert str(AnalysisKind.diagnosis) == f"{AnalysisKind.diagnosis}" == "diagnosis-support"


def severity(**changes) -> dict:
    spec = {"system": "apasi", "mode": "local", "condition": {"code": "EA90"},
            "sites": [{"bodySite": "armLeft", "items": {"surface": 2}, "image": 0}]}
    return {**spec, **changes}


def test_a_severity_spec_reads_the_stored_json_keys() -> None:
    spec = SeveritySpec.model_validate(severity(images=[
        {"key": "inputs/c/x.jpg", "title": "arm", "contentType": "image/jpeg", "width": 10, "height": 20}]))
    assert spec.sites == [SeveritySite(body_site="armLeft", items={"surface": 2.0}, image=0)]
    assert spec.condition == CatalogueCondition(code="EA90")
    assert spec.images == [StoredImage(key="inputs/c/x.jpg", title="arm", content_type="image/jpeg", width=10, height=20)]
    assert SeveritySpec.model_validate(severity(condition={"text": "Non-specific finding"})).condition == TextCondition(
        text="Non-specific finding")
    assert SeveritySpec.model_validate(severity(condition=None)).condition is None
    dumped = spec.model_dump(mode="json")
    assert set(dumped["sites"][0]) == {"bodySite", "items", "image"}
    assert set(dumped["images"][0]) == {"key", "title", "contentType", "width", "height"}


def test_a_severity_spec_without_its_system_is_rejected() -> None:
    data = severity()
    del data["system"]
    with pytest.raises(ValidationError, match="system"):
        SeveritySpec.model_validate(data)


@pytest.mark.parametrize("bad", [
    {"mode": "sideways"},
    {"sites": []},
    {"sites": [{"bodySite": "armLeft", "items": {"surface": "lots"}}]},
    {"condition": {"coding": "EA90"}},
    {"images": [{"key": "inputs/c/x.jpg"}]},  # an image without its type and size
])
def test_a_severity_spec_rejects_what_no_request_makes(bad: dict) -> None:
    with pytest.raises(ValidationError):
        SeveritySpec.model_validate(severity(**bad))


def test_each_kind_validates_its_own_spec_model() -> None:
    assert set(SPEC_MODELS) == set(AnalysisKind)
    base = {"id": "j", "client": "c", "status": "queued", "created_at": 1.0}
    assert isinstance(Job.model_validate({**base, "kind": "diagnosis-support", "spec": {}}).spec, DiagnosisSpec)
    local = Job.model_validate({**base, "kind": "severity-assessment/automatic/local", "spec": json.dumps(severity())})
    assert isinstance(local.spec, SeveritySpec) and local.spec.system == "apasi"
    with pytest.raises(ValidationError, match="system"):  # a severity job needs its severity spec
        Job.model_validate({**base, "kind": "severity-assessment/manual", "spec": {}})
    with pytest.raises(ValidationError):  # a model of another kind is not taken for this one's
        Job(**base, kind=AnalysisKind.severity_global, spec=DiagnosisSpec())
    with pytest.raises(ValidationError, match="kind"):
        Job.model_validate({**base, "kind": "no-such-analysis", "spec": {}})


def test_the_hash_holds_text_without_none_fields_and_keeps_the_public_view() -> None:
    job = Job(id="j", client="c", kind=AnalysisKind.severity_manual, status=JobStatus.failed,
              created_at=1733212345.123456, queue="q", finished_at=1733212399.1, attempts=2, error="boom",
              error_kind=JobErrorKind.input, reference="ref",
              spec=SeveritySpec(system="dlqi", mode="manual", sites=[SeveritySite(body_site="armLeft", items={})]))
    fields = job.to_hash()
    assert {k: v for k, v in fields.items() if k != "spec"} == {
        "id": "j", "client": "c", "kind": "severity-assessment/manual", "status": "failed",
        "created_at": "1733212345.123456", "queue": "q", "finished_at": "1733212399.1", "attempts": "2",
        "error": "boom", "error_kind": "input", "done": "0", "total": "0", "reference": "ref", "lost": "0"}
    assert json.loads(fields["spec"]) == {"system": "dlqi", "mode": "manual", "condition": None, "images": [],
                                          "sites": [{"bodySite": "armLeft", "items": {}, "image": None}]}
    assert Job.model_validate(fields) == job
    assert job.public() == {
        "id": "j", "kind": "severity-assessment/manual", "status": "failed",
        "progress": {"stage": None, "done": 0, "total": 0}, "createdAt": "2024-12-03T07:52:25.123456Z",
        "startedAt": None, "finishedAt": "2024-12-03T07:53:19.100000Z", "attempts": 2, "error": "boom",
        "batchId": None, "reference": "ref"}
