"""FHIR R4 Bundles of finished reports (SPEC §2.10): the conversion on real reports, and the API's
content negotiation over HTTP against the running service (real Redis, worker, storage).

Every bundle is validated with the `fhir.resources` models (R4B, the R4 technical correction: the same
Bundle, DiagnosticReport, Observation, Media and Device), which check element names, types and
cardinality; `check_bundle` adds the rules those models do not enforce (references resolve, unique
fullUrls, value sets of status, obs-6).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from PIL import Image

from api.fhir import FHIR_JSON, ICD11, LOINC, to_bundle, wants_fhir
from support import SAMPLE_IMAGES, Service, attachment

FHIR = {"Accept": FHIR_JSON}
PERCENT = {"unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
OBSERVATION_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error",
                      "unknown"}


def blank_attachment() -> dict:
    """A flat grey picture: decodes fine, fails the quality gate (mediaValidity.isValid false)."""
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (128, 128, 128)).save(buf, "PNG")
    return {"contentAttachment": {"data": base64.b64encode(buf.getvalue()).decode(), "contentType": "image/png"}}


def local_body(image, site: str, condition: str, code: str, items: dict | None = None) -> dict:
    return {"payload": attachment(image), "bodySite": site, "knownCondition": {"conclusion": {"text": condition}},
            "scoringSystem": {code: {"questionnaireResponse": {"item": items or {}}}}}


REQUESTS: dict[str, tuple[str, Any]] = {
    "diagnosis": ("/diagnosis-support", lambda: {"payload": [attachment(SAMPLE_IMAGES[0], title="Lesion close-up"),
                                                             attachment(SAMPLE_IMAGES[1]), blank_attachment()]}),
    "diagnosis-invalid": ("/diagnosis-support", lambda: {"payload": [blank_attachment()]}),
    "apasi": ("/severity-assessment/automatic/local",
              lambda: local_body(SAMPLE_IMAGES[2], "armLeft", "psoriasis", "apasi", {"surface": 30})),
    "aihs4": ("/severity-assessment/automatic/local",
              lambda: local_body(SAMPLE_IMAGES[2], "genital", "hidradenitis suppurativa", "aihs4")),
    "asalt": ("/severity-assessment/automatic/local",
              lambda: local_body(SAMPLE_IMAGES[6], "scalp", "alopecia areata", "asalt")),
    "global": ("/severity-assessment/automatic/global", lambda: {
        "payload": [{**attachment(img), "bodySite": site, "questionnaireResponse": {"item": {"surface": area}}}
                    for site, area, img in [("armLeft", 20, SAMPLE_IMAGES[2]), ("legLeft", 40, SAMPLE_IMAGES[4])]],
        "knownCondition": {"conclusion": {"text": "Psoriasis"}}, "scoringSystem": {"apasi": {}}}),
    "manual": ("/severity-assessment/manual", lambda: {"bodySite": "armLeft", "scoringSystem": {"pasi": {
        "questionnaireResponse": {"item": {"surface": 5, "erythema": 1, "induration": 2, "desquamation": 3}}}}}),
}


@pytest.fixture(scope="module")
def reports(service: Service) -> Iterator[dict[str, httpx.Response]]:
    """Each request once, answered synchronously as plain JSON: the real reports the tests convert."""
    with service.client() as client:
        out = {}
        for name, (path, body) in REQUESTS.items():
            r = client.post(path, json=body())
            assert r.status_code == 200, r.text
            out[name] = r
        yield out


# --- checking a bundle ---
def references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for v in value.values():
            yield from references(v)
    elif isinstance(value, list):
        for v in value:
            yield from references(v)


def check_bundle(bundle: dict) -> dict[str, dict]:
    """Validate a bundle; returns its resources by fullUrl."""
    Bundle.model_validate(bundle)  # names, types, cardinality, primitive formats (R4B models)
    assert bundle["type"] == "collection"
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(urls)) == len(urls)  # bdl-7
    assert all(u.startswith("urn:uuid:") and len(u) == 45 for u in urls)
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    assert set(references(bundle)) <= set(by_url)  # every reference resolves inside the bundle
    assert bundle["entry"][0]["resource"]["resourceType"] == "DiagnosticReport"
    for resource in by_url.values():
        if resource["resourceType"] == "Observation":
            assert resource["status"] in OBSERVATION_STATUS
            values = [k for k in resource if k.startswith("value")]
            assert len(values) + ("dataAbsentReason" in resource) <= 1  # obs-6 (and value[x] is one)
            for component in resource.get("component", []):
                assert len([k for k in component if k.startswith("value")]) + ("dataAbsentReason" in component) == 1
        elif resource["resourceType"] == "Media":
            assert resource["status"] == "completed" and resource["content"]["data"]
        elif resource["resourceType"] == "DiagnosticReport":
            assert resource["status"] in {"registered", "partial", "preliminary", "final"}
    return by_url


def report_of(by_url: dict[str, dict]) -> dict:
    (report,) = [r for r in by_url.values() if r["resourceType"] == "DiagnosticReport"]
    return report


def members(by_url: dict[str, dict], resource: dict, key: str = "hasMember") -> list[dict]:
    return [by_url[ref["reference"]] for ref in resource.get(key, [])]


def local_code(resource: dict) -> str:
    return resource["code"]["coding"][0]["code"]


def icd(observation: dict) -> str:
    (coding,) = observation["code"]["coding"]
    assert coding["system"] == ICD11 and coding["version"] == "2025-01" and coding["display"]
    return coding["code"]


# --- content negotiation ---
@pytest.mark.parametrize("accept, fhir", [
    (FHIR_JSON, True), (f"{FHIR_JSON}; fhirVersion=4.0", True), (f"{FHIR_JSON}, */*;q=0.1", True),
    (f"application/json;q=0.5, {FHIR_JSON}", True), (None, False), ("application/json", False), ("*/*", False),
    (f"application/json, {FHIR_JSON}", False), (f"{FHIR_JSON};q=0", False), (f"{FHIR_JSON};q=0.4, application/json", False),
])
def test_accept_header_negotiation(accept: str | None, fhir: bool) -> None:
    assert wants_fhir(accept) is fhir


# --- the conversion, on real reports ---
slow = pytest.mark.slow  # these need the running service


@slow
@pytest.mark.parametrize("name", list(REQUESTS))
def test_every_report_converts_to_a_valid_bundle(reports, name: str) -> None:
    plain = reports[name].json()
    bundle = to_bundle(plain)
    by_url = check_bundle(bundle)
    report = report_of(by_url)
    assert report["identifier"][0]["value"] == f"urn:uuid:{plain['identifier']['value']}"
    assert report["issued"] == plain["issued"] == bundle["timestamp"] and report["status"] == plain["status"]
    assert to_bundle(plain) == bundle  # stable: the same report always gives the same entries and references
    devices = [r for r in by_url.values() if r["resourceType"] == "Device"]
    assert [d["deviceName"][0]["name"] for d in devices] == [m["name"] for m in plain["device"]["models"]]


@slow
def test_diagnosis_bundle_carries_the_report(reports) -> None:
    plain = reports["diagnosis"].json()
    by_url = check_bundle(to_bundle(plain))
    report = report_of(by_url)
    assert report["code"]["coding"] == [{"system": LOINC, "code": "100063-7", "display": "Primary skin concern"}]
    assert report["category"][0]["coding"][0]["code"] == "IMG"
    results = members(by_url, report, "result")
    conditions = [o for o in results if o["code"]["coding"][0]["system"] == ICD11]
    # One Observation per condition of the aggregated conclusion, same order, code and probability.
    assert [(icd(o), o["valueQuantity"]["value"]) for o in conditions] == [
        (c["code"]["coding"][0]["code"], c["probability"]) for c in plain["conclusion"]]
    assert all({k: v for k, v in o["valueQuantity"].items() if k != "value"} == PERCENT for o in conditions)
    top = plain["conclusion"][0]["code"]
    assert report["conclusionCode"][0]["coding"][0]["code"] == top["coding"][0]["code"]
    assert top["text"] in report["conclusion"]
    indicators = {local_code(o): o["valueQuantity"]["value"] for o in results
                  if o["code"]["coding"][0]["system"] != ICD11 and "valueQuantity" in o}
    assert indicators == {**plain["clinicalIndicator"], **plain["performanceIndicator"]}

    panels = [o for o in results if local_code(o) == "imagingAnalysis"]
    assert len(panels) == len(plain["imagingAnalysis"]) == 3
    heat_maps = {m["link"]["reference"]: m for m in report["media"]}
    for i, (panel, analysis) in enumerate(zip(panels, plain["imagingAnalysis"])):
        validity, *rest = members(by_url, panel)
        assert local_code(validity) == "mediaValidity"
        assert validity["valueBoolean"] is analysis["mediaValidity"]["isValid"]
        score = next(c for c in validity["component"] if c["code"]["coding"][0]["code"] == "qualityScore")
        assert score["valueQuantity"]["value"] == analysis["mediaValidity"]["quality"]["score"]
        assert score["interpretation"][0]["text"] == analysis["mediaValidity"]["quality"]["interpretation"]
        assert [(icd(o), o["valueQuantity"]["value"]) for o in rest if o["code"]["coding"][0]["system"] == ICD11] == [
            (c["code"]["coding"][0]["code"], c["probability"]) for c in analysis["conclusion"]]
        # Every heat map as a Media: the same image bytes and size, tied to its condition by code.
        maps = [c for c in analysis["conclusion"] if (c.get("explainability") or {}).get("heatMap")]
        media = [by_url[ref] for ref, m in heat_maps.items() if m["comment"].startswith(f"Image {i + 1}:")]
        assert len(media) == len(maps) and (len(maps) == 5 or not analysis["mediaValidity"]["isValid"])
        for m, c in zip(media, maps):
            heat_map = c["explainability"]["heatMap"]
            assert m["content"] == {"contentType": heat_map["contentType"], "data": heat_map["data"],
                                    "title": heat_map["title"]}
            assert (m["width"], m["height"]) == (heat_map["width"], heat_map["height"])
            assert m["reasonCode"][0]["coding"][0]["code"] == c["code"]["coding"][0]["code"]
    assert panels[2]["hasMember"] and members(by_url, panels[2])[0]["valueBoolean"] is False  # the grey picture


@slow
def test_no_valid_image_gives_absent_values(reports) -> None:
    plain = reports["diagnosis-invalid"].json()
    assert plain["conclusion"] == [] and plain["clinicalIndicator"]["malignancy"] is None
    by_url = check_bundle(to_bundle(plain))
    report = report_of(by_url)
    assert "conclusionCode" not in report and "No image was valid" in report["conclusion"]
    aggregate = [o for o in members(by_url, report, "result") if local_code(o) != "imagingAnalysis"]
    assert not any(o["code"]["coding"][0]["system"] == ICD11 for o in aggregate)
    nulls = {k for k, v in {**plain["clinicalIndicator"], **plain["performanceIndicator"]}.items() if v is None}
    assert nulls and {local_code(o) for o in aggregate if "dataAbsentReason" in o} == nulls


def score_of(by_url: dict[str, dict]) -> dict:
    (score,) = members(by_url, report_of(by_url), "result")
    return score


@slow
def test_local_severity_bundle_carries_score_items_and_masks(reports) -> None:
    plain = reports["apasi"].json()
    entry = plain["patientEvolution"]["apasi"]
    by_url = check_bundle(to_bundle(plain))
    report, score = report_of(by_url), score_of(by_url)
    assert local_code(report) == local_code(score) == "apasi"
    assert score["valueQuantity"]["value"] == entry["score"]["value"]
    interpretation = score["interpretation"][0]
    assert interpretation["text"] == entry["score"]["interpretation"]["category"]
    assert interpretation["coding"][0]["code"] == str(entry["score"]["interpretation"]["intensity"])
    components = {c["code"]["coding"][0]["code"]: c for c in score["component"]}
    assert components["globalScoreContribution"]["valueQuantity"]["value"] == \
        entry["score"]["additionalData"]["globalScoreContribution"]["value"]
    known = components["knownCondition"]["valueCodeableConcept"]["coding"][0]
    assert (known["system"], known["code"]) == (ICD11, plain["knownCondition"]["conclusion"]["coding"][0]["code"])

    validity, *items = members(by_url, score)
    assert validity["valueBoolean"] is plain["mediaValidity"]["isValid"]
    assert {local_code(o): o["valueQuantity"]["value"] for o in items} == {k: v["value"] for k, v in entry["item"].items()}
    for o in items:
        given = "aiConfidence" not in entry["item"][local_code(o)].get("additionalData", {})
        assert o["method"]["text"] == ("Clinician input" if given else "AI estimate from the image")
        if not given:
            (confidence,) = o["component"]
            assert confidence["valueQuantity"]["value"] == \
                entry["item"][local_code(o)]["additionalData"]["aiConfidence"]["value"]
            assert "device" in o
    media = {by_url[m["link"]["reference"]]["content"]["title"]: by_url[m["link"]["reference"]] for m in report["media"]}
    assert {t: m["content"]["data"] for t, m in media.items()} == {
        a["title"]: a["data"] for a in entry["media"]["attachment"].values()}


@slow
def test_detections_hang_off_the_item_they_count(reports) -> None:
    plain = reports["aihs4"].json()
    entry = plain["patientEvolution"]["aihs4"]
    by_url = check_bundle(to_bundle(plain))
    items = {local_code(o): o for o in members(by_url, score_of(by_url))[1:]}
    found = [(code, d["valueQuantity"]["value"], [c["valueQuantity"]["value"] for c in d["component"]])
             for code, o in items.items() for d in members(by_url, o)]
    expected = [(d["code"]["coding"][0]["code"], d["confidence"], [d["box"][k] for k in ("x1", "y1", "x2", "y2")])
                for d in entry["media"]["detection"]]
    assert expected and sorted(found) == sorted(expected)


@slow
def test_scores_without_items_and_manual_answers(reports) -> None:
    plain = reports["asalt"].json()
    assert plain["patientEvolution"]["asalt"]["item"] is None
    by_url = check_bundle(to_bundle(plain))
    assert [local_code(o) for o in members(by_url, score_of(by_url))] == ["mediaValidity"]
    assert len(report_of(by_url)["media"]) == len(plain["patientEvolution"]["asalt"]["media"]["attachment"])

    plain = reports["manual"].json()
    by_url = check_bundle(to_bundle(plain))
    items = members(by_url, score_of(by_url))
    assert [(local_code(o), o["valueQuantity"]["value"], o["interpretation"][0]["text"], o["method"]["text"])
            for o in items] == [(k, v["value"], v["interpretation"], "Clinician input")
                                for k, v in plain["patientEvolution"]["pasi"]["item"].items()]
    score = plain["patientEvolution"]["pasi"]["score"]
    assert f"{score['value']} ({score['interpretation']['category']})" in report_of(by_url)["conclusion"]


@slow
def test_global_severity_has_one_score_per_body_site(reports) -> None:
    plain = reports["global"].json()
    entry = plain["patientEvolution"]["apasi"]
    by_url = check_bundle(to_bundle(plain))
    total = score_of(by_url)
    assert total["valueQuantity"]["value"] == entry["score"]["value"]
    sites = members(by_url, total)
    assert [s["bodySite"]["coding"][0]["code"] for s in sites] == [s["code"] for s in entry["bodySite"]]
    for site, plain_site in zip(sites, entry["bodySite"]):
        assert site["valueQuantity"]["value"] == plain_site["score"]["value"]
        validity, *items = members(by_url, site)
        assert validity["valueBoolean"] is plain_site["mediaValidity"]["isValid"]
        assert {local_code(o): o["valueQuantity"]["value"] for o in items} == {
            k: v["value"] for k, v in plain_site["item"].items()}
        assert all(o["bodySite"] == site["bodySite"] for o in items)
    assert len(report_of(by_url)["media"]) == sum(len(s["media"]["attachment"]) for s in entry["bodySite"])


# --- over HTTP ---
@slow
@pytest.mark.parametrize("name", list(REQUESTS))
def test_result_endpoint_negotiates(api, reports, name: str) -> None:
    sync = reports[name]
    job_id = sync.json()["identifier"]["value"]
    r = api.get(f"/jobs/{job_id}/result", headers=FHIR)
    assert r.status_code == 200 and r.headers["content-type"] == FHIR_JSON and r.headers["vary"] == "Accept"
    bundle = r.json()
    check_bundle(bundle)
    assert bundle == to_bundle(sync.json())
    # Without FHIR in Accept: byte for byte the plain report the synchronous answer gave.
    for headers in ({}, {"Accept": "application/json"}, {"Accept": "*/*"}):
        plain = api.get(f"/jobs/{job_id}/result", headers=headers)
        assert plain.headers["content-type"] == "application/json" and plain.content == sync.content


@slow
@pytest.mark.parametrize("name", ["diagnosis", "apasi", "manual"])
def test_synchronous_answer_in_fhir(api, name: str) -> None:
    path, body = REQUESTS[name]
    r = api.post(path, json=body(), headers=FHIR)
    assert r.status_code == 200 and r.headers["content-type"] == FHIR_JSON, r.text
    bundle = r.json()
    report = report_of(check_bundle(bundle))
    job_id = report["identifier"][0]["value"].removeprefix("urn:uuid:")
    plain = api.get(f"/jobs/{job_id}/result")
    assert plain.status_code == 200 and bundle == to_bundle(plain.json())


@slow
def test_errors_stay_plain_json(api) -> None:
    r = api.get("/jobs/00000000-0000-4000-8000-000000000000/result", headers=FHIR)
    assert r.status_code == 404 and r.headers["content-type"] == "application/json" and r.json()["detail"]
    r = api.post("/diagnosis-support", json={"payload": []}, headers=FHIR)
    assert r.status_code == 422 and r.headers["content-type"] == "application/json" and r.json()["detail"]
    # Asynchronous: still the plain 202 hand-over.
    r = api.post("/severity-assessment/manual", json=REQUESTS["manual"][1](), headers={**FHIR, "Prefer": "respond-async"})
    assert r.status_code == 202 and r.headers["content-type"] == "application/json"
