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

from pipeline.severity.systems import SYSTEMS
from support import SAMPLE_IMAGES, attachment

pytestmark = pytest.mark.slow

ALL_SYSTEMS = {"apasi", "aeasi", "ascorad", "auas", "aihs4", "aladin", "agppga", "asalt", "avasi", "awosi", "nsil",
               "pasi", "easi", "scorad", "uas", "uas7", "ihs4", "gags", "dlqi", "pga", "pure4", "sevenPc", "uct", "salt",
               "resvech", "scovid"}


def region_items(region: str, signs: dict[str, float], area: float) -> dict[str, float]:
    return {**{f"{region}{k[0].upper()}{k[1:]}": v for k, v in signs.items()}, f"{region}Area": area}


MANUAL = [
    # One-zone PASI on an arm: upper-limb weight 0.2 x (1 + 2 + 3) x area score 5 = 6.0
    ("pasi", {"surface": 5, "erythema": 1, "induration": 2, "desquamation": 3}, 6.0, "Mild", 1),
    # EASI, adult: head 2x2x0.1=0.4, arms 5x2x0.2=2.0, trunk 0, legs 3x1x0.4=1.2 -> 3.6
    ("easi", {"age": 40,
              **region_items("head", {"erythema": 1, "oedema": 1, "excoriation": 0, "lichenification": 0}, 10),
              **region_items("upperLimbs", {"erythema": 2, "oedema": 1, "excoriation": 1, "lichenification": 1}, 20),
              **region_items("trunk", {"erythema": 0, "oedema": 0, "excoriation": 0, "lichenification": 0}, 0),
              **region_items("lowerLimbs", {"erythema": 1, "oedema": 1, "excoriation": 1, "lichenification": 0}, 5)},
     3.6, "Mild", 1),
    # SCORAD: 40/5 + 7x7/2 + (6+2) = 8 + 24.5 + 8 = 40.5
    ("scorad", {"surface": 40, "erythema": 2, "swelling": 1, "crusting": 0, "excoriation": 1, "lichenification": 1,
                "dryness": 2, "pruritus": 6, "sleeplessness": 2}, 40.5, "Moderate", 2),
    ("uas", {"wheals": 2, "pruritus": 1}, 3, "Moderate", 2),  # 2 + 1
    ("uas7", {"day1": 2, "day2": 3, "day3": 4, "day4": 2, "day5": 1, "day6": 0, "day7": 3}, 15, "Mild", 1),
    ("ihs4", {"nodule": 3, "abscess": 1, "drainingTunnel": 1}, 9, "Moderate", 2),  # 3 + 2x1 + 4x1
    # GAGS: 2x2 + 2x2 + 1x2 + 1x1 + 0x1 + 1x3 = 14
    ("gags", {"forehead": 2, "rightCheek": 2, "leftCheek": 1, "nose": 1, "chin": 0, "chestAndUpperBack": 1},
     14, "Mild", 1),
    # DLQI: 1+2+1+0+1+0+3+1+0+2 = 11
    ("dlqi", dict(zip((f"question{i}" for i in range(1, 11)), (1, 2, 1, 0, 1, 0, 3, 1, 0, 2))), 11,
     "Very large effect", 3),
    ("pga", {"erythema": 3, "desquamation": 3, "induration": 2}, 3, "Moderate", 2),  # mean 2.67 -> 3
    ("pure4", {"question1": "yes", "question2": "no", "question3": True, "question4": 0}, 2, "Positive", 3),
    # 7-point checklist: size 2 + pigmentation 2 + inflammation 1 = 5
    ("sevenPc", {"changeInSize": 1, "irregularPigmentation": 1, "irregularBorder": 0, "inflammation": 1,
                 "largerThanOtherLesions": 0, "itchOrAlteredSensation": 0, "crustingOrBleeding": 0}, 5, "High risk", 3),
    ("uct", {"manifestations": 3, "qualityOfLife": 2, "treatmentNotEnough": 3, "overallUnderControl": 2}, 10,
     "Poorly controlled", 3),
    # SALT: 0.40x50 + 0.18x20 + 0.18x10 + 0.24x0 = 25.4
    ("salt", {"vertexHairLoss": 50, "leftHairLoss": 20, "rightHairLoss": 10, "backHairLoss": 0}, 25.4, "Moderate", 2),
    # RESVECH: the reference client's example answers sum to 39 (dermq's moderate band 27-52)
    ("resvech", dict(zip((i.code for i in SYSTEMS["resvech"].items),
                         (0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 1, 4, 0, 1, 2, 3, 4, 0, 1))), 39, "Moderate", 2),
    # SCOVID: 8 + 10 + 0 + 1 + 2 + 3 + 0 + 1 + 2 + 3 = 30 (dermq's severe band from 30)
    ("scovid", dict(zip((i.code for i in SYSTEMS["scovid"].items), (8, 10, 0, 1, 2, 3, 0, 1, 2, 3))), 30, "Severe", 3),
]


def answered(code: str, items: dict) -> dict:
    return {code: {"questionnaireResponse": {"item": items}}}


@pytest.mark.parametrize("code, items, value, category, intensity", MANUAL, ids=[m[0] for m in MANUAL])
def test_manual_system(api, code, items, value, category, intensity) -> None:
    site = "scalp" if code == "salt" else "armLeft"  # SALT scores hair-bearing sites only
    r = api.post("/severity-assessment/manual", json={"bodySite": site, "scoringSystem": answered(code, items)})
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


AWOSI_ADVERSE = ("bordersDamaged", "bordersDiffused", "bordersThickened", "bordersIndistinguishable",
                 "perilesionalErythema", "perilesionalMaceration", "biofilmCompatibleTissue",
                 "affectedTissueDermisEpidermis", "affectedTissueSubcutaneous", "affectedTissueMuscle",
                 "affectedTissueBoneAndOrAdjacent", "exudationPurulent", "exudationBloody", "exudationGreenish",
                 "tissueInWoundBedSlough", "tissueInWoundBedNecrotic")
AUTOMATIC = [
    # (code, site, condition, clinical inputs, expected local score and contribution weight from the reported item
    # values v; asalt and avasi report no items, so v is {"score": the reported score}; weight None: no contribution)
    ("apasi", "armLeft", "psoriasis", {"surface": 30},  # reported as the area score 3
     lambda v: ((v["erythema"] + v["induration"] + v["desquamation"]) * v["surface"], 0.2)),
    ("aeasi", "legLeft", "atopic eczema", {"surface": 50, "patientAge": 5},  # under 8: legs weigh 0.3
     lambda v: ((v["redness"] + v["thickness"] + v["scratching"] + v["lichenification"]) * 4, 0.3)),
    ("ascorad", "trunkFront", "atopic eczema", {"surface": 20, "pruritus": 5, "sleeplessness": 3},
     # A = 20 % of the trunk (30 % of the body) = 6 % of the body
     lambda v: (6 / 5 + 3.5 * sum(v[k] for k in ("crusting", "dryness", "erythema", "excoriation", "lichenification",
                                                 "swelling")) + 8, 1.0)),
    ("auas", "trunkBack", "urticaria", {"pruritus": 2}, lambda v: (v["wheals"] + 2, 1.0)),
    ("aihs4", "genital", "hidradenitis suppurativa", {},
     lambda v: (v["nodule"] + 2 * v["abscess"] + 4 * v["drainingTunnel"], 1.0)),
    ("aladin", "headLeft", "acne", {}, lambda v: (v["acne"], 1.0)),
    ("agppga", "trunkFront", "generalised pustular psoriasis",  {},
     lambda v: (sum(m >= t for t in (1e-9, 1.5, 2.5, 3.5) for m in [(v["erythema"] + v["pustulation"] + v["desquamation"]) / 3]), 1.0)),
    ("asalt", "headTop", "alopecia areata", {}, lambda v: (v["score"], 0.4)),  # vertex: 40 % of the scalp
    ("avasi", "handLeft", "vitiligo", {"handUnits": 2}, lambda v: (v["score"], 0.02)),  # 2 hand units x level / 100
    ("avasi", "armLeft", "vitiligo", {}, lambda v: (v["score"], None)),  # no hand units: no contribution
    ("awosi", "headLeft", "pressure ulceration", {},
     lambda v: (v["erythema"] + sum(v[k] for k in AWOSI_ADVERSE), 1.0)),
    ("nsil", "armLeft", "Non-specific finding", {}, lambda v: (v["dryness"] + v["erythema"] + v["inflammations"], 1.0)),
]


@pytest.mark.parametrize("code, site, condition, clinical, expected", AUTOMATIC,
                         ids=[f"{a[0]}-{a[1]}" for a in AUTOMATIC])
def test_automatic_system(api, code, site, condition, clinical, expected) -> None:
    report = local(api, code, site, condition, clinical)
    assert report["mediaValidity"]["isValid"] is True
    entry = report["patientEvolution"][code]
    system = SYSTEMS[code]
    if system.reports_items:
        v = values(entry)
        for k, answer in clinical.items():
            item = entry["item"][k]
            assert v[k] == system.item(k).report_value(answer)
            assert set(item.get("additionalData", {})) <= set(system.item(k).extras)  # no aiConfidence
        for k in set(v) - set(clinical):
            confidence = entry["item"][k]["additionalData"]["aiConfidence"]["value"]
            assert 0 <= confidence <= 100
    else:
        assert entry["item"] is None
        v = {"score": entry["score"]["value"]}
    score, weight = expected(v)
    assert entry["score"]["value"] == pytest.approx(score, abs=0.051)
    if weight is None:
        assert "globalScoreContribution" not in entry["score"].get("additionalData", {})
    else:
        assert entry["score"]["additionalData"]["globalScoreContribution"]["value"] == pytest.approx(
            weight * score, abs=0.051)
    if system.formula.category({}) is not None:  # awosi: the stage of the deepest tissue found
        band = system.interpret(score, v)
        assert entry["score"]["interpretation"] == {"category": band.category, "intensity": band.intensity}
        return
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
    report = local(api, "apasi", "trunkBack", "psoriasis", {"surface": 10}, image=SAMPLE_IMAGES[5])
    media = report["patientEvolution"]["apasi"]["media"]["attachment"]
    raw, binary, overlay = (decode(media[k]) for k in ("maskRaw", "maskBinary", "segmentation"))
    # Every attachment is an RGB JPEG at the input image's size, masks included.
    with Image.open(SAMPLE_IMAGES[5]) as source:
        size = source.size
    assert raw.mode == binary.mode == overlay.mode == "RGB"
    assert raw.size == binary.size == overlay.size == size
    raw_a, bin_a = np.asarray(raw.convert("L"), float), np.asarray(binary.convert("L"), float)
    lesion = bin_a >= 128
    assert 0 < lesion.mean() < 1
    # JPEG blurs the edge a little: the binary mask is the raw one thresholded at 0.5 almost everywhere.
    assert ((raw_a >= 128) == lesion).mean() > 0.98
    for k in ("maskRaw", "maskBinary", "segmentation"):
        assert media[k]["contentType"] == "image/jpeg" and media[k]["colorModel"] == "RGB" and media[k]["title"]
        assert (media[k]["width"], media[k]["height"]) == size


def test_global_combines_sites_with_regional_weights(api) -> None:
    sites = [("armLeft", 20, SAMPLE_IMAGES[2]), ("armRight", 10, SAMPLE_IMAGES[3]), ("legLeft", 40, SAMPLE_IMAGES[4])]
    body = {"payload": [{**attachment(img), "bodySite": site, "questionnaireResponse": {"item": {"surface": area}}}
                        for site, area, img in sites],
            "knownCondition": {"conclusion": {"text": "Psoriasis", "coding": [{
                "code": "EA90", "display": "Psoriasis", "system": "https://icd.who.int/browse/2025-01/mms/en",
                "systemDisplay": "ICD-11", "version": "2025-01"}]}},
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
    def pga(erythema: int) -> dict:
        items = {"erythema": erythema, "desquamation": 1, "induration": 1}
        return {"bodySite": "armLeft", "scoringSystem": answered("pga", items)}

    batch = api.post("/batches", json={"items": [
        {"kind": "severity-assessment/manual", "body": pga(1), "reference": "a"},
        {"kind": "severity-assessment/automatic/local", "body": body, "reference": "b"},
        {"kind": "severity-assessment/manual", "body": pga(7), "reference": "c"},  # out of range
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
    assert [i["code"] for i in apasi[0]["items"] if i["source"] == "clinician"] == ["surface"]
    for_psoriasis = {q["code"] for q in api.get("/questionnaires", params={"pathology": "EA90"}).json()}
    assert {"apasi", "pasi", "pga", "pure4"} <= for_psoriasis and "scorad" not in for_psoriasis
    assert api.get("/questionnaires", params={"code": "nope"}).status_code == 404
