"""The port of the reference client's response parser, checked against the contract digest."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_client.checks import Checks  # noqa: E402
from reference_client.parser import ParserError, parse_diagnosis, parse_login, parse_severity  # noqa: E402
from reference_client.scenarios import ALL, BY_NAME, remove_by_dot_path, local_valid_body  # noqa: E402


def code(key: str, text: str) -> dict:
    return {"text": text, "coding": [{"code": key, "display": None, "system": None, "systemDisplay": "dermq",
                                      "version": None}]}


def extra(key: str, text: str, value: float) -> dict:
    return {"value": value, "code": code(key, text)}


def image(title: str = "Segmentation") -> dict:
    return {"title": title, "contentType": "image/jpeg", "data": "AAAA", "height": 509, "width": 945,
            "colorModel": "RGB"}


def media_validity() -> dict:
    return {"isValid": True,
            "quality": {"acceptable": True, "score": 90.0, "interpretation": "Excellent"},
            "domain": {"isDermatological": True, "additionalData": {"aiConfidence": extra("aiConfidence", "t", 99.0)}},
            "modality": {"value": "Clinical", "additionalData": {
                "aiConfidenceClinical": extra("aiConfidenceClinical", "t", 90.0),
                "aiConfidenceDermoscopic": extra("aiConfidenceDermoscopic", "t", 10.0)}}}


def severity_report() -> dict:
    return {
        "resourceType": "DiagnosticReport", "status": "preliminary", "issued": "2026-01-29T13:16:38.666795",
        "analysisDuration": 0.19751, "mediaValidity": media_validity(),
        "patientEvolution": {
            "apasi": {
                "score": {"value": 1.6, "interpretation": {"category": "Mild", "intensity": 1},
                          "additionalData": {"globalScoreContribution": extra("globalScoreContribution", "c", 1.6)}},
                "item": {"erythema": {"code": code("erythema", "Erythema"), "value": 2,
                                      "additionalData": {"aiConfidence": extra("aiConfidence", "t", 95.4)}},
                         "surface": {"code": code("surface", "Surface area score"), "value": 1}},
                "media": {"attachment": {"maskRaw": image("Lesion mask raw")},
                          "detection": [{"confidence": 80.0, "code": code("wheal", "Wheal"),
                                         "box": {"x1": 1, "y1": 2, "x2": 30, "y2": 40}}]},
            },
            "easi": None, "uas7": None,  # null keys outside the reference codes are skipped
        },
    }


def diagnosis_report() -> dict:
    indicators = {"hasCondition": 99.9, "pigmentedLesion": 0.5, "malignancy": 0.2, "urgentReferral": 0.6,
                  "highPriorityReferral": 1.5}
    icd = {"system": "https://icd.who.int/browse/2025-01/mms/en", "systemDisplay": "ICD-11", "version": "2025-01",
           "code": "EA90", "display": "Psoriasis"}
    concl = {"code": {"coding": [icd], "text": "Psoriasis"}, "probability": 94.9}
    return {"resourceType": "DiagnosticReport", "status": "preliminary", "issued": "2026-02-13T14:58:27.466367",
            "analysisDuration": 1.1, "performanceIndicator": {"sensitivity": 66.9, "specificity": 98.5, "entropy": 8.4},
            "clinicalIndicator": indicators, "conclusion": [concl],
            "imagingAnalysis": [{"mediaValidity": media_validity(), "performanceIndicator": {"entropy": 8.4},
                                 "clinicalIndicator": dict(indicators),
                                 "conclusion": [{**concl, "explainability": {"heatMap": image("Heat map")}},
                                                {**concl, "explainability": None}]}]}


def test_minimal_valid_reports_parse_without_warnings():
    s = parse_severity(severity_report())
    assert s.warnings == []
    inst = s.value["patientEvolution"]["apasi"]
    assert inst["score"]["intensity"] == 1 and inst["item"]["erythema"]["value"] == 2.0
    assert set(s.value["patientEvolution"]) == {"apasi"}
    d = parse_diagnosis(diagnosis_report())
    assert d.warnings == [] and d.value["failedMedia"] == []
    login = parse_login({"access_token": "x", "token_type": "Bearer", "expires_in_minutes": 60})
    assert login.warnings == [] and login.value["expiresInMinutes"] == 60


def _without(report: dict, path: str) -> dict:
    report = copy.deepcopy(report)
    *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
    ref = report
    for k in parents:
        ref = ref[k]
    del ref[last]
    return report


def _with(report: dict, path: str, value) -> dict:
    report = copy.deepcopy(report)
    *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
    ref = report
    for k in parents:
        ref = ref[k]
    ref[last] = value
    return report


PE = "patientEvolution.apasi"


@pytest.mark.parametrize("path", [
    "resourceType", "status", "analysisDuration",
    f"{PE}.score", f"{PE}.score.value", f"{PE}.score.interpretation.category",
    f"{PE}.item.erythema.code", f"{PE}.item.erythema.code.text",
    f"{PE}.item.erythema.code.coding.0.code", f"{PE}.item.erythema.code.coding.0.systemDisplay",
    f"{PE}.item.erythema.additionalData.aiConfidence.value", f"{PE}.item.erythema.additionalData.aiConfidence.code",
    f"{PE}.score.additionalData.globalScoreContribution.code",
    f"{PE}.score.additionalData.globalScoreContribution.value",
    *(f"{PE}.media.attachment.maskRaw.{k}" for k in ("title", "contentType", "data", "height", "width", "colorModel")),
    f"{PE}.media.detection.0.confidence", f"{PE}.media.detection.0.code", f"{PE}.media.detection.0.box.x2",
    "mediaValidity.quality.interpretation", "mediaValidity.isValid", "mediaValidity.domain.additionalData.aiConfidence",
    "mediaValidity.modality.value", "mediaValidity.modality.additionalData.aiConfidenceDermoscopic",
])
def test_removing_a_required_severity_field_throws(path):
    with pytest.raises(ParserError):
        parse_severity(_without(severity_report(), path))


@pytest.mark.parametrize("path, value", [
    (f"{PE}.score.value", None),
    (f"{PE}.score.interpretation.intensity", 4),
    (f"{PE}.score.interpretation.intensity", "high"),
    (f"{PE}.item.erythema.code", "Erythema"),
    (f"{PE}.media.detection.0.code", "wheal"),  # a detection code must be a Code object
    (f"{PE}.media.attachment.maskRaw.height", None),
    ("mediaValidity.modality.value", "clinical"),
    ("patientEvolution.easi", {"score": {"value": 1, "interpretation": {"category": "Mild", "intensity": 1}},
                               "item": None}),  # a populated key outside the reference ScoringSystemCode list
    ("issued", "yesterday-ish"),
])
def test_wrong_severity_values_throw(path, value):
    with pytest.raises(ParserError):
        parse_severity(_with(severity_report(), path, value))


@pytest.mark.parametrize("path", [
    f"{PE}.item",  # `item` must be present (null is fine)
    f"{PE}.item.erythema.value",  # cast to float after the warning
    f"{PE}.item.erythema.code.coding.0.display",  # nullable
    f"{PE}.item.erythema.code.coding.0.version",
    "issued",
    "patientEvolution",
])
def test_absent_nullable_keys_warn(path):
    parsed = parse_severity(_without(severity_report(), path))
    assert parsed.warnings, path


def test_null_and_optional_parts_are_accepted_quietly():
    report = _with(severity_report(), f"{PE}.item", None)
    report = _with(report, f"{PE}.media", {})
    report = _without(report, "mediaValidity")
    report = _without(report, f"{PE}.score.additionalData")
    parsed = parse_severity(report)
    assert parsed.warnings == [] and parsed.value["patientEvolution"]["apasi"]["item"] is None
    assert parsed.value["patientEvolution"]["apasi"]["media"] == {"attachment": None, "detection": []}
    # intensity 0 (None) is a valid case; ints where floats are declared coerce
    assert parse_severity(_with(severity_report(), f"{PE}.score.interpretation.intensity", 0)).warnings == []
    assert parse_severity(_with(severity_report(), "analysisDuration", 1)).value["analysisDuration"] == 1.0


@pytest.mark.parametrize("path", [
    "performanceIndicator.entropy", "performanceIndicator.sensitivity", "clinicalIndicator.malignancy",
    "imagingAnalysis.0.mediaValidity", "imagingAnalysis.0.performanceIndicator.entropy",
    "imagingAnalysis.0.clinicalIndicator.hasCondition", "imagingAnalysis.0.conclusion.0.code.text",
    "imagingAnalysis.0.conclusion.0.explainability.heatMap.colorModel", "conclusion.0.probability",
])
def test_removing_a_required_diagnosis_field_throws(path):
    with pytest.raises(ParserError):
        parse_diagnosis(_without(diagnosis_report(), path))


def test_diagnosis_nulls_and_absent_explainability():
    with pytest.raises(ParserError):  # a null performance indicator throws
        parse_diagnosis(_with(diagnosis_report(), "performanceIndicator.specificity", None))
    parsed = parse_diagnosis(_without(diagnosis_report(), "imagingAnalysis.0.conclusion.1.explainability"))
    assert parsed.warnings  # the key must be on every conclusion (null is tolerated)


def test_login_needs_all_three_fields():
    for key in ("access_token", "token_type", "expires_in_minutes"):
        body = {"access_token": "x", "token_type": "Bearer", "expires_in_minutes": 60}
        del body[key]
        with pytest.raises(ParserError):
            parse_login(body)


def test_scenarios_and_checks_are_consistent():
    assert {s.system for s in ALL if s.kind == "local"} == {
        "apasi", "aeasi", "ascorad", "auas", "aihs4", "aladin", "agppga", "asalt", "avasi", "awosi", "nsil"}
    assert BY_NAME["local[asalt armLeft]"].expected_status == 422
    body = local_valid_body("auas", "AAAA")
    emptied = remove_by_dot_path(body, "scoringSystem.auas.questionnaireResponse.item.pruritus")
    assert emptied["scoringSystem"] == {"auas": {"questionnaireResponse": {"item": {}}}} and body != emptied
    checks = Checks()
    c = checks.scenario("s")
    c("a", True)
    c("b", False, "clinical")
    c.eq("c", 1, 2)
    assert checks.tally()["contract"] == {"passed": 1, "total": 2}
    assert checks.tally()["clinical"] == {"passed": 0, "total": 1}
    assert [f.description for f in checks.failures("s")] == ["c"]
