"""POST /diagnosis-support over HTTP against the running service (real Redis, worker processes, storage)."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
from PIL import Image

from pipeline.models.bundle import SHIPPED_BUNDLES, load_bundle
from support import SAMPLE_IMAGES, attachment

SHIPPED_CLASSIFIER = load_bundle(SHIPPED_BUNDLES["classification"]).manifest

pytestmark = pytest.mark.slow

ICD11 = "https://icd.who.int/browse/2025-01/mms/en"


def non_skin_attachment() -> dict:
    """A photograph of coffee: decodes fine, is not dermatological."""
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.coffee()).save(buf, "JPEG", quality=90)
    return {"contentAttachment": {"data": base64.b64encode(buf.getvalue()).decode(), "contentType": "image/jpeg"}}


def test_single_image_report_has_every_documented_field(api) -> None:
    r = api.post("/diagnosis-support", json={"payload": [attachment(SAMPLE_IMAGES[0], title="Lesion close-up")]})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["resourceType"] == "DiagnosticReport" and rep["status"] == "preliminary"
    assert rep["identifier"]["use"] == "official" and len(rep["identifier"]["value"]) == 36
    assert rep["issued"] and rep["analysisDuration"] > 0
    assert rep["category"][0]["coding"][0]["code"] == "IMG"
    assert rep["code"]["coding"][0]["code"] == "100063-7"
    assert set(rep["performanceIndicator"]) == {"sensitivity", "specificity", "entropy"}
    # The shipped trained classifier: the top condition's measured held-out figures, no untrained warning.
    top = rep["conclusion"][0]["code"]["coding"][0]["code"]
    measured = SHIPPED_CLASSIFIER.metrics[top]
    assert rep["performanceIndicator"]["sensitivity"] == measured.sensitivity
    assert rep["performanceIndicator"]["specificity"] == measured.specificity
    assert "warnings" not in rep
    assert set(rep["clinicalIndicator"]) == {"hasCondition", "pigmentedLesion", "malignancy", "urgentReferral",
                                             "highPriorityReferral"}
    conditions = api.get("/conditions").json()
    conclusion = rep["conclusion"]
    # The whole catalogue, the conditions the model does not cover at 0.
    assert len(conclusion) == len(conditions)
    covered = {c["code"]["coding"][0]["code"] for c in conclusion if c["probability"] > 0}
    assert covered <= set(SHIPPED_CLASSIFIER.classes) and len(covered) >= 2
    assert all(c["probability"] == 0 for c in conclusion[len(SHIPPED_CLASSIFIER.classes):])
    probs = [c["probability"] for c in conclusion]
    assert probs == sorted(probs, reverse=True)
    assert math.isclose(sum(probs), 100.0, abs_tol=1e-6)
    coding = conclusion[0]["code"]["coding"][0]
    assert coding["system"] == ICD11 and coding["systemDisplay"] == "ICD-11" and coding["version"] == "2025-01"
    assert coding["code"] and coding["display"] and conclusion[0]["code"]["text"]

    (analysis,) = rep["imagingAnalysis"]
    mv = analysis["mediaValidity"]
    assert mv["isValid"] is True and mv["modality"]["value"] == "Dermoscopic"
    assert mv["quality"]["interpretation"] in {"Fair", "Good", "Excellent"}
    assert set(analysis["performanceIndicator"]) == {"entropy"}
    # One valid image: the aggregate is that image's distribution.
    assert [c["probability"] for c in analysis["conclusion"]] == pytest.approx(probs)
    for rank, item in enumerate(analysis["conclusion"]):
        if rank < 5:
            hm = item["explainability"]["heatMap"]
            assert hm["contentType"] == "image/jpeg" and hm["colorModel"] == "RGB" and hm["title"]
            img = Image.open(io.BytesIO(base64.b64decode(hm["data"])))
            assert img.format == "JPEG" and img.size == (hm["width"], hm["height"]) and img.mode == "RGB"
        else:
            assert item["explainability"] is None  # the key is always there: clients read it unconditionally


def test_indicators_are_sums_through_catalogue_flags(api) -> None:
    rep = api.post("/diagnosis-support", json={"payload": [attachment(SAMPLE_IMAGES[2])]}).json()
    flags = {c["code"]: c["flags"] for c in api.get("/conditions").json()}
    probs = {c["code"]["coding"][0]["code"]: c["probability"] for c in rep["conclusion"]}
    ci = rep["clinicalIndicator"]

    def total(flag: str) -> float:
        return sum(p for code, p in probs.items() if flags[code][flag])

    assert ci["malignancy"] == pytest.approx(total("malignant"))
    assert ci["pigmentedLesion"] == pytest.approx(total("pigmented"))
    assert ci["urgentReferral"] == pytest.approx(total("urgentReferral"))
    assert ci["highPriorityReferral"] == pytest.approx(total("highPriorityReferral"))
    assert ci["hasCondition"] == pytest.approx(100 - total("healthy"))
    p = np.array(list(probs.values())) / 100
    p = p[p > 0]
    # Normalised by the model's own class count: a 7-class model's full uncertainty is 100 %.
    expected = 100 * float(-(p * np.log(p)).sum()) / math.log(len(SHIPPED_CLASSIFIER.classes))
    assert rep["performanceIndicator"]["entropy"] == pytest.approx(expected, rel=1e-6)


def test_several_images_aggregate_only_valid_ones(api) -> None:
    payload = [attachment(SAMPLE_IMAGES[3]), non_skin_attachment(), attachment(SAMPLE_IMAGES[4])]
    rep = api.post("/diagnosis-support", json={"payload": payload}).json()
    analyses = rep["imagingAnalysis"]
    assert [a["mediaValidity"]["isValid"] for a in analyses] == [True, False, True]
    assert analyses[1]["mediaValidity"]["domain"]["isDermatological"] is False
    assert analyses[1]["conclusion"], "per-image entries are filled even for invalid images"
    per_image = [{c["code"]["coding"][0]["code"]: c["probability"] for c in a["conclusion"]} for a in analyses]
    top = rep["conclusion"][0]["code"]["coding"][0]["code"]
    expected = (per_image[0][top] + per_image[2][top]) / 2
    assert rep["conclusion"][0]["probability"] == pytest.approx(expected)


def test_no_valid_image_gives_empty_conclusion_and_null_indicators(api) -> None:
    rep = api.post("/diagnosis-support", json={"payload": [non_skin_attachment()]}).json()
    assert rep["conclusion"] == []
    assert all(v is None for v in rep["clinicalIndicator"].values())
    assert all(v is None for v in rep["performanceIndicator"].values())
    assert rep["imagingAnalysis"][0]["mediaValidity"]["isValid"] is False
    assert len(rep["imagingAnalysis"][0]["conclusion"]) > 100
