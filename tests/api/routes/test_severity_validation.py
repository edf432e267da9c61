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
    "scoringSystem": {"apasi": {"questionnaireResponse": {"item": {"area": 30}}}},
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
    ("missing-input", changed(LOCAL, ["scoringSystem", "apasi", "questionnaireResponse", "item"], {}), ITEM + ["area"]),
    ("out-of-range", changed(LOCAL, ["scoringSystem", "apasi", "questionnaireResponse", "item", "area"], 150),
     ITEM + ["area"]),
    ("not-a-number", changed(LOCAL, ["scoringSystem", "apasi", "questionnaireResponse", "item", "area"], "lots"),
     ITEM + ["area"]),
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
    ("code-not-in-catalogue", changed(LOCAL, ["knownCondition", "conclusion", "coding"],
                                      [{"system": "https://icd.who.int/browse/2025-01/mms/en", "code": "ZZ99"}]),
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
                   {"area": -1})
    r = api.post("/severity-assessment/automatic/local", json=body)
    assert {tuple(d["loc"]) for d in r.json()["detail"]} == {("body", "bodySite"), tuple(ITEM + ["area"])}


def test_global_and_manual_reject(api) -> None:
    site = {**IMAGE, "bodySite": "trunkFront", "questionnaireResponse": {"item": {"area": 20}}}
    not_global = {"payload": [site], "knownCondition": {"conclusion": {"text": "acne"}},
                  "scoringSystem": {"aladin": {}}}
    r = api.post("/severity-assessment/automatic/global", json=not_global)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "scoringSystem", "aladin"]
    missing_area = {"payload": [site, {**IMAGE, "bodySite": "legLeft"}],
                    "knownCondition": {"conclusion": {"text": "psoriasis"}}, "scoringSystem": {"apasi": {}}}
    r = api.post("/severity-assessment/automatic/global", json=missing_area)
    assert r.status_code == 422
    assert [d["loc"] for d in r.json()["detail"]] == [["body", "payload", 1, "questionnaireResponse", "item", "area"]]
    r = api.post("/severity-assessment/manual", json={"scoringSystem": {"dlqi": {"questionnaireResponse": {
        "item": {"symptoms": 4}}}}})
    assert r.status_code == 422
    locs = [d["loc"][-1] for d in r.json()["detail"]]
    assert "symptoms" in locs and "treatment" in locs  # out of range, and the nine unanswered items
    r = api.post("/severity-assessment/manual", json={"scoringSystem": {"apasi": {}}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "scoringSystem", "apasi"]
