"""Severity requests that cannot be scored are a 422 at the offending field, and leave nothing behind."""

from __future__ import annotations

import copy

import pytest

from support import SAMPLE_IMAGES, attachment

pytestmark = pytest.mark.slow

IMAGE = attachment(SAMPLE_IMAGES[0])
LOCAL = {
    "payload": IMAGE,
    "bodySite": "armLeft",
    "knownCondition": {"conclusion": {"text": "psoriasis"}},
    "scoringSystem": {"apasi": {"questionnaireResponse": {"item": {"surface": 30}}}},
}
ITEM = ["body", "scoringSystem", "apasi", "questionnaireResponse", "item"]


def changed(base: dict, path: list, value) -> dict:
    body = copy.deepcopy(base)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


SALT = changed(changed(LOCAL, ["scoringSystem"], {"asalt": {}}), ["knownCondition", "conclusion", "text"],
               "alopecia areata")
CASES = [
    ("unknown-system", changed(LOCAL, ["scoringSystem"], {"zzz": {}}), ["body", "scoringSystem", "zzz"]),
    ("two-systems", changed(LOCAL, ["scoringSystem", "aeasi"], {}), ["body", "scoringSystem"]),
    ("no-system", changed(LOCAL, ["scoringSystem"], {}), ["body", "scoringSystem"]),
    ("manual-system-here", changed(LOCAL, ["scoringSystem"], {"pasi": {}}), ["body", "scoringSystem", "pasi"]),
    ("missing-input", changed(LOCAL, ["scoringSystem", "apasi", "questionnaireResponse", "item"], {}),
     ITEM + ["surface"]),
    ("out-of-range", changed(LOCAL, ["scoringSystem", "apasi", "questionnaireResponse", "item", "surface"], 150),
     ITEM + ["surface"]),
    ("not-a-number", changed(LOCAL, ["scoringSystem", "apasi", "questionnaireResponse", "item", "surface"], "lots"),
     ITEM + ["surface"]),
    ("unknown-item", changed(LOCAL, ["scoringSystem", "apasi", "questionnaireResponse", "item", "mood"], 1),
     ITEM + ["mood"]),
    ("ai-item-out-of-range", changed(LOCAL, ["scoringSystem", "apasi", "questionnaireResponse", "item", "erythema"], 9),
     ITEM + ["erythema"]),
    ("unknown-body-site", changed(LOCAL, ["bodySite"], "wing"), ["body", "bodySite"]),
    ("hair-loss-off-the-head", SALT, ["body", "bodySite"]),
    ("coding-without-code", changed(LOCAL, ["knownCondition", "conclusion", "coding"],
                                    [{"system": "https://icd.who.int/browse/2025-01/mms/en"}]),
     ["body", "knownCondition", "conclusion", "coding", 0, "code"]),
    ("coding-without-system", changed(LOCAL, ["knownCondition", "conclusion", "coding"], [{"code": "EA90"}]),
     ["body", "knownCondition", "conclusion", "coding", 0, "system"]),
    ("code-not-in-catalogue", changed(LOCAL, ["knownCondition", "conclusion", "coding"], [{
        "system": "https://icd.who.int/browse/2025-01/mms/en", "systemDisplay": "ICD-11", "code": "ZZ99",
        "display": "Dragon pox"}]),
     ["body", "knownCondition", "conclusion", "coding", 0, "code"]),
    ("unknown-condition-text", changed(LOCAL, ["knownCondition", "conclusion", "text"], "dragon pox"),
     ["body", "knownCondition", "conclusion", "text"]),
    ("condition-not-scored", changed(LOCAL, ["knownCondition", "conclusion", "text"], "melanoma of skin"),
     ["body", "knownCondition", "conclusion"]),
    ("missing-body-site", {k: v for k, v in LOCAL.items() if k != "bodySite"}, ["body", "bodySite"]),
]


def stored_objects(service) -> set[str]:
    root = service.settings.effective_storage_dir
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.mark.parametrize("name, body, loc", CASES, ids=[c[0] for c in CASES])
def test_local_rejects(service, api, name, body, loc) -> None:
    before_objects = stored_objects(service)
    before_jobs = api.get("/jobs", params={"limit": 500}).json()["total"]
    r = api.post("/severity-assessment/automatic/local", json=body)
    assert r.status_code == 422, r.text
    assert loc in [d["loc"] for d in r.json()["detail"]], r.json()
    assert stored_objects(service) == before_objects
    assert api.get("/jobs", params={"limit": 500}).json()["total"] == before_jobs


def test_every_problem_is_reported_at_once(api) -> None:
    body = changed(changed(LOCAL, ["bodySite"], "wing"), ["scoringSystem", "apasi", "questionnaireResponse", "item"],
                   {"surface": -1})
    r = api.post("/severity-assessment/automatic/local", json=body)
    assert {tuple(d["loc"]) for d in r.json()["detail"]} == {("body", "bodySite"), tuple(ITEM + ["surface"])}


def test_global_and_manual_reject(api) -> None:
    site = {**IMAGE, "bodySite": "trunkFront", "questionnaireResponse": {"item": {"surface": 20}}}
    not_global = {"payload": [site], "knownCondition": {"conclusion": {"text": "acne"}},
                  "scoringSystem": {"aladin": {}}}
    r = api.post("/severity-assessment/automatic/global", json=not_global)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "scoringSystem", "aladin"]
    missing_surface = {"payload": [site, {**IMAGE, "bodySite": "legLeft"}],
                    "knownCondition": {"conclusion": {"text": "psoriasis"}}, "scoringSystem": {"apasi": {}}}
    r = api.post("/severity-assessment/automatic/global", json=missing_surface)
    assert r.status_code == 422
    assert [d["loc"] for d in r.json()["detail"]] == [["body", "payload", 1, "questionnaireResponse", "item", "surface"]]
    r = api.post("/severity-assessment/manual", json={"bodySite": "armLeft", "scoringSystem": {"dlqi": {
        "questionnaireResponse": {"item": {"question1": 4}}}}})
    assert r.status_code == 422
    locs = [d["loc"][-1] for d in r.json()["detail"]]
    assert "question1" in locs and "question10" in locs  # out of range, and the nine unanswered items
    r = api.post("/severity-assessment/manual", json={"bodySite": "armLeft", "scoringSystem": {"apasi": {}}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "scoringSystem", "apasi"]


ICD11_CODING = {"code": "2C30", "display": "Cutaneous melanoma", "system": "https://icd.who.int/browse/2025-01/mms/en",
                "systemDisplay": "ICD-11", "version": "2025-01"}
MANUAL = {
    "payload": [IMAGE],
    "bodySite": "armRight",
    # A questionnaire is not tied to the condition: DLQI of a melanoma patient is scored.
    "knownCondition": {"conclusion": {"text": "Melanoma", "coding": [ICD11_CODING]}},
    "scoringSystem": {"dlqi": {"questionnaireResponse": {"item": {f"question{i}": 1 for i in range(1, 11)}}}},
}
CODING = ["knownCondition", "conclusion", "coding", 0]


def without(base: dict, path: list) -> dict:
    body = copy.deepcopy(base)
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


ONE_MISSING = [
    ("bodySite", ["bodySite"]),
    ("image-data", ["payload", 0, "contentAttachment", "data"]),
    *((f"coding-{key}", [*CODING, key]) for key in ("code", "display", "system", "systemDisplay")),
    ("conclusion-text", ["knownCondition", "conclusion", "text"]),
    ("item", ["scoringSystem", "dlqi", "questionnaireResponse", "item", "question7"]),
]


def test_manual_takes_the_reference_clients_body(api) -> None:
    r = api.post("/severity-assessment/manual", json=MANUAL)
    assert r.status_code == 200, r.text
    entry = r.json()["patientEvolution"]["dlqi"]
    assert entry["score"]["value"] == 10
    # Exactly the items sent, each coded and read.
    assert set(entry["item"]) == {f"question{i}" for i in range(1, 11)}
    assert all(item["interpretation"] and item["code"]["coding"][0]["code"] == key
               for key, item in entry["item"].items())


@pytest.mark.parametrize("name, path", ONE_MISSING, ids=[m[0] for m in ONE_MISSING])
def test_one_missing_field_is_one_error(api, name, path) -> None:
    r = api.post("/severity-assessment/manual", json=without(MANUAL, path))
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [{"type": "missing", "loc": ["body", *path], "msg": "Field required"}]


@pytest.mark.parametrize("url, body, loc", [
    ("/severity-assessment/manual", MANUAL, ["body", "payload", 0, "contentAttachment", "data"]),
    ("/severity-assessment/automatic/local", LOCAL, ["body", "payload", "contentAttachment", "data"]),
    ("/diagnosis-support", {"payload": [IMAGE]}, ["body", "payload", 0, "contentAttachment", "data"]),
], ids=["manual", "local", "diagnosis"])
def test_a_data_uri_is_one_value_error(api, url, body, loc) -> None:
    body = copy.deepcopy(body)
    target = body["payload"][0] if isinstance(body["payload"], list) else body["payload"]
    target["contentAttachment"]["data"] = "data:image/jpeg;base64," + target["contentAttachment"]["data"]
    r = api.post(url, json=body)
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert (error["type"], error["loc"], error["msg"]) == ("value_error", loc, "Value error, Only base64 data is allowed")


def test_a_text_only_condition_for_a_system_of_any_condition(api) -> None:
    body = {"payload": IMAGE, "bodySite": "armLeft",
            "knownCondition": {"conclusion": {"text": "Non-specific finding", "coding": None}},
            "scoringSystem": {"nsil": {}}}
    r = api.post("/severity-assessment/automatic/local", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["knownCondition"] == {"conclusion": {"text": "Non-specific finding"}}
    # The same text for a system tied to conditions is still refused.
    r = api.post("/severity-assessment/automatic/local", json=changed(body, ["scoringSystem"], {"apasi": {
        "questionnaireResponse": {"item": {"surface": 10}}}}))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "knownCondition", "conclusion", "text"]
