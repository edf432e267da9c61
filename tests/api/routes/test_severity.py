"""Every scoring system through the HTTP API: value, category and intensity against a hand computation.

Manual systems get literal answers whose score is worked out by hand in the comment. Automatic
systems estimate their AI items from a real image; the expectation is then computed here, by the
published formula, from the item values the report returns and the clinical inputs sent.
"""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image

from support import SAMPLE_IMAGES, attachment

pytestmark = pytest.mark.slow

ALL_SYSTEMS = {"apasi", "aeasi", "ascorad", "auas", "aihs4", "aladin", "agppga", "asalt", "avasi", "pasi", "easi",
               "scorad", "uas", "uas7", "ihs4", "gags", "dlqi", "pga", "pure4", "sevenPc", "uct", "salt"}


def region_items(region: str, signs: dict[str, float], area: float) -> dict[str, float]:
    return {**{f"{region}{k[0].upper()}{k[1:]}": v for k, v in signs.items()}, f"{region}Area": area}


MANUAL = [
    # PASI: head (2+1+1)x1x0.1=0.4, arms (3+2+2)x3x0.2=4.2, trunk (1+1+0)x2x0.3=1.2, legs (2+2+2)x4x0.4=9.6 -> 15.4
    ("pasi", {**region_items("head", {"erythema": 2, "induration": 1, "desquamation": 1}, 5),
              **region_items("upperLimbs", {"erythema": 3, "induration": 2, "desquamation": 2}, 35),
              **region_items("trunk", {"erythema": 1, "induration": 1, "desquamation": 0}, 15),
              **region_items("lowerLimbs", {"erythema": 2, "induration": 2, "desquamation": 2}, 60)},
     15.4, "Moderate to severe", 3),
    # EASI, adult: head 2x2x0.1=0.4, arms 5x2x0.2=2.0, trunk 0, legs 3x1x0.4=1.2 -> 3.6
    ("easi", {"age": 40,
              **region_items("head", {"erythema": 1, "oedema": 1, "excoriation": 0, "lichenification": 0}, 10),
              **region_items("upperLimbs", {"erythema": 2, "oedema": 1, "excoriation": 1, "lichenification": 1}, 20),
              **region_items("trunk", {"erythema": 0, "oedema": 0, "excoriation": 0, "lichenification": 0}, 0),
              **region_items("lowerLimbs", {"erythema": 1, "oedema": 1, "excoriation": 1, "lichenification": 0}, 5)},
     3.6, "Mild", 1),
    # SCORAD: 40/5 + 7x7/2 + (6+2) = 8 + 24.5 + 8 = 40.5
    ("scorad", {"extent": 40, "erythema": 2, "oedema": 1, "oozing": 0, "excoriation": 1, "lichenification": 1,
                "dryness": 2, "pruritus": 6, "sleeplessness": 2}, 40.5, "Moderate", 2),
    ("uas", {"wheals": 2, "itch": 1}, 3, "Moderate", 2),  # 2 + 1
    ("uas7", {"day1": 2, "day2": 3, "day3": 4, "day4": 2, "day5": 1, "day6": 0, "day7": 3}, 15, "Mild", 1),
    ("ihs4", {"nodules": 3, "abscesses": 1, "tunnels": 1}, 9, "Moderate", 2),  # 3 + 2x1 + 4x1
    # GAGS: 2x2 + 2x2 + 1x2 + 1x1 + 0x1 + 1x3 = 14
    ("gags", {"forehead": 2, "rightCheek": 2, "leftCheek": 1, "nose": 1, "chin": 0, "chestAndUpperBack": 1},
     14, "Mild", 1),
    # DLQI: 1+2+1+0+1+0+3+1+0+2 = 11
    ("dlqi", {"symptoms": 1, "embarrassment": 2, "shoppingHome": 1, "clothes": 0, "socialLeisure": 1, "sport": 0,
              "workStudy": 3, "relationships": 1, "sexualDifficulties": 0, "treatment": 2}, 11, "Very large effect", 3),
    ("pga", {"pga": 3}, 3, "Moderate", 2),
    ("pure4", {"dactylitis": "yes", "heelPain": "no", "buttockPain": True, "jointPainSwelling": 0}, 2, "Positive", 3),
    # 7-point checklist: size 2 + colour 2 + inflammation 1 = 5
    ("sevenPc", {"changeInSize": 1, "irregularShape": 0, "irregularColour": 1, "largestDiameter": 0,
                 "inflammation": 1, "oozing": 0, "changeInSensation": 0}, 5, "Suspicious", 3),
    ("uct", {"physicalSymptoms": 3, "qualityOfLife": 2, "treatmentInsufficient": 3, "overallControl": 2}, 10,
     "Poorly controlled", 3),
    # SALT: 0.40x50 + 0.18x20 + 0.18x10 + 0.24x0 = 25.4
    ("salt", {"vertexHairLoss": 50, "leftHairLoss": 20, "rightHairLoss": 10, "backHairLoss": 0}, 25.4, "Moderate", 2),
]


def answered(code: str, items: dict) -> dict:
    return {code: {"questionnaireResponse": {"item": items}}}


@pytest.mark.parametrize("code, items, value, category, intensity", MANUAL, ids=[m[0] for m in MANUAL])
def test_manual_system(api, code, items, value, category, intensity) -> None:
    r = api.post("/severity-assessment/manual", json={"scoringSystem": answered(code, items)})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["resourceType"] == "DiagnosticReport" and set(report["patientEvolution"]) == ALL_SYSTEMS
    assert [k for k, v in report["patientEvolution"].items() if v is not None] == [code]
    entry = report["patientEvolution"][code]
    assert entry["score"]["value"] == pytest.approx(value)
    assert entry["score"]["interpretation"] == {"category": category, "intensity": intensity}
    assert set(entry["item"]) == set(items)
    assert all("additionalData" not in item for item in entry["item"].values())  # the clinician's answers


def values(entry: dict) -> dict[str, float]:
    return {k: v["value"] for k, v in entry["item"].items()}


def area_score(percent: float) -> int:
    return sum(percent >= t for t in (1e-9, 10, 30, 50, 70, 90))


def local(api, code: str, site: str, condition: str, items: dict, image=SAMPLE_IMAGES[2], headers=None) -> dict:
    body = {"payload": attachment(image), "bodySite": site, "knownCondition": {"conclusion": {"text": condition}},
            "scoringSystem": answered(code, items)}
    r = api.post("/severity-assessment/automatic/local", json=body, headers=headers or {})
    assert r.status_code == 200, r.text
    report = r.json()
    assert [k for k, v in report["patientEvolution"].items() if v is not None] == [code]
    return report


AUTOMATIC = [
    # (code, site, condition, clinical inputs, expected local score and contribution from the item values v)
    ("apasi", "armLeft", "psoriasis", {"area": 30},
     lambda v: ((v["erythema"] + v["induration"] + v["desquamation"]) * 3, 0.2)),
    ("aeasi", "legLeft", "atopic eczema", {"area": 50, "age": 5},  # under 8: legs weigh 0.3
     lambda v: ((v["erythema"] + v["oedema"] + v["excoriation"] + v["lichenification"]) * 4, 0.3)),
    ("ascorad", "trunkFront", "atopic eczema", {"extent": 20, "pruritus": 5, "sleeplessness": 3},
     lambda v: (20 / 5 + 3.5 * sum(v[k] for k in ("erythema", "oedema", "oozing", "excoriation", "lichenification",
                                                  "dryness")) + 8, 1.0)),
    ("auas", "trunkBack", "urticaria", {"itch": 2}, lambda v: (v["wheals"] + 2, 1.0)),
    ("aihs4", "genital", "hidradenitis suppurativa", {},
     lambda v: (v["nodules"] + 2 * v["abscesses"] + 4 * v["tunnels"], 1.0)),
    ("aladin", "headLeft", "acne", {}, lambda v: (v["acneLesions"], 1.0)),
    ("agppga", "trunkFront", "generalised pustular psoriasis",  {},
     lambda v: (sum(m >= t for t in (1e-9, 1.5, 2.5, 3.5) for m in [(v["erythema"] + v["pustulation"] + v["scaling"]) / 3]), 1.0)),
    ("asalt", "headTop", "alopecia areata", {}, lambda v: (v["hairLoss"], 0.4)),  # vertex: 40 % of the scalp
    ("avasi", "handLeft", "vitiligo", {"handUnits": 2},
     lambda v: (2 * min((0, 10, 25, 50, 75, 90, 100), key=lambda lvl: abs(lvl - v["depigmentation"])) / 100, 1.0)),
]


@pytest.mark.parametrize("code, site, condition, clinical, expected", AUTOMATIC, ids=[a[0] for a in AUTOMATIC])
def test_automatic_system(api, code, site, condition, clinical, expected) -> None:
    report = local(api, code, site, condition, clinical)
    assert report["mediaValidity"]["isValid"] is True
    entry = report["patientEvolution"][code]
    v = values(entry)
    for k, answer in clinical.items():
        assert v[k] == answer and "additionalData" not in entry["item"][k]
    for k in set(v) - set(clinical):
        confidence = entry["item"][k]["additionalData"]["aiConfidence"]["value"]
        assert 0 <= confidence <= 100
    score, weight = expected(v)
    assert entry["score"]["value"] == pytest.approx(score, abs=0.051)
    assert entry["score"]["additionalData"]["globalScoreContribution"]["value"] == pytest.approx(weight * score,
                                                                                                abs=0.051)
    bands = api.get("/questionnaires", params={"code": code}).json()[0]["bands"]
    [band] = [b for b in bands if b["lower"] <= entry["score"]["value"] and (b["upper"] is None
                                                                           or entry["score"]["value"] < b["upper"])]
    assert entry["score"]["interpretation"] == {"category": band["category"], "intensity": band["intensity"]}
    if code in ("aihs4", "aladin", "auas"):
        assert all(set(d["box"]) == {"x1", "y1", "x2", "y2"} for d in entry["media"].get("detection", []))


def decode(att: dict) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(att["data"])))
    assert (img.height, img.width) == (att["height"], att["width"])
    return img


def test_masks_decode_and_agree(api) -> None:
    report = local(api, "apasi", "trunkBack", "psoriasis", {"area": 10}, image=SAMPLE_IMAGES[5])
    media = report["patientEvolution"]["apasi"]["media"]["attachment"]
    raw, binary, overlay = (decode(media[k]) for k in ("maskRaw", "maskBinary", "segmentation"))
    assert raw.mode == "L" and binary.mode == "L" and overlay.mode == "RGB"
    assert raw.size == binary.size == overlay.size
    raw_a, bin_a = np.asarray(raw), np.asarray(binary)
    assert set(np.unique(bin_a)) <= {0, 255} and 0 < (bin_a == 255).mean() < 1
    assert np.array_equal(bin_a == 255, raw_a >= 128)  # thresholded at 0.5
    for k in ("maskRaw", "maskBinary"):
        assert media[k]["contentType"] == "image/png" and media[k]["title"]


def test_global_combines_sites_with_regional_weights(api) -> None:
    sites = [("armLeft", 20, SAMPLE_IMAGES[2]), ("armRight", 10, SAMPLE_IMAGES[3]), ("legLeft", 40, SAMPLE_IMAGES[4])]
    body = {"payload": [{**attachment(img), "bodySite": site, "questionnaireResponse": {"item": {"area": area}}}
                        for site, area, img in sites],
            "knownCondition": {"conclusion": {"coding": [{"system": "https://icd.who.int/browse/2025-01/mms/en",
                                                          "code": "EA90"}]}},
            "scoringSystem": {"apasi": {}}}
    r = api.post("/severity-assessment/automatic/global", json=body)
    assert r.status_code == 200, r.text
    entry = r.json()["patientEvolution"]["apasi"]
    per_site = entry["bodySite"]
    assert [s["code"] for s in per_site] == ["armLeft", "armRight", "legLeft"]
    assert all(s["mediaValidity"]["isValid"] for s in per_site)
    shares = [s["score"]["additionalData"]["globalScoreContribution"]["value"] for s in per_site]
    assert sum(shares) == pytest.approx(entry["score"]["value"], abs=0.15)
    signs = [sum(values(s)[k] for k in ("erythema", "induration", "desquamation")) for s in per_site]
    # Arms: 30 % of the region (area score 3), severity weighted by each site's area; legs: 40 % (score 3).
    arms = 0.2 * 3 * (20 * signs[0] + 10 * signs[1]) / 30
    legs = 0.4 * 3 * signs[2]
    assert entry["score"]["value"] == pytest.approx(arms + legs, abs=0.051)


def test_async_and_batch(api) -> None:
    body = {"payload": attachment(SAMPLE_IMAGES[6]), "bodySite": "scalp",
            "knownCondition": {"conclusion": {"text": "alopecia areata"}}, "scoringSystem": {"asalt": {}}}
    r = api.post("/severity-assessment/automatic/local", json=body, headers={"Prefer": "respond-async"})
    assert r.status_code == 202 and r.headers["Location"] == f"/jobs/{r.json()['id']}"
    batch = api.post("/batches", json={"items": [
        {"kind": "severity-assessment/manual", "body": {"scoringSystem": answered("pga", {"pga": 1})}, "reference": "a"},
        {"kind": "severity-assessment/automatic/local", "body": body, "reference": "b"},
        {"kind": "severity-assessment/manual", "body": {"scoringSystem": answered("pga", {"pga": 7})}, "reference": "c"},
    ]})
    assert batch.status_code == 202 and [x["index"] for x in batch.json()["rejected"]] == [2]
    job_id = r.json()["id"]
    deadline = time.monotonic() + 60
    while api.get(f"/jobs/{job_id}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert api.get(f"/jobs/{job_id}/result").json()["patientEvolution"]["asalt"]["score"]["value"] >= 0
    lines = api.get(f"/batches/{batch.json()['id']}/results", timeout=60).text.strip().splitlines()
    assert len(lines) == 2


def test_discovery(api) -> None:
    sites = api.get("/body-sites").json()
    assert len(sites) == 34 and sites[0]["code"] == "headFront" and sites[0]["name"]["en_GB"]
    assert {s["region"] for s in sites} == {"head", "upperLimbs", "trunk", "lowerLimbs"}
    every = api.get("/questionnaires").json()
    assert {q["code"] for q in every} == ALL_SYSTEMS
    apasi = api.get("/questionnaires", params={"code": "apasi"}).json()
    assert [i["code"] for i in apasi[0]["items"] if i["source"] == "clinician"] == ["area"]
    for_psoriasis = {q["code"] for q in api.get("/questionnaires", params={"pathology": "EA90"}).json()}
    assert {"apasi", "pasi", "pga", "pure4"} <= for_psoriasis and "scorad" not in for_psoriasis
    assert api.get("/questionnaires", params={"code": "nope"}).status_code == 404
