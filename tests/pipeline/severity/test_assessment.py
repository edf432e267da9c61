"""The severity stage on its own: AI items from the image, the client's answers kept, the report shape."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.diagnosis import ImageInput
from pipeline.phantoms import make_phantom
from pipeline.quality import QualityConfig
from pipeline.models.bundle import SHIPPED_BUNDLES, load_bundle
from pipeline.segmentation import ClassicalSegmenter, LearnedSegmenter
from pipeline.severity.assessment import SeverityPipeline
from pipeline.severity.systems import SYSTEMS

from support import SAMPLE_IMAGES


@pytest.fixture(scope="module")
def pipeline() -> SeverityPipeline:
    return SeverityPipeline(ClassicalSegmenter(), quality=QualityConfig(), models=[{"name": "classical"}])


def rgb(i: int) -> np.ndarray:
    return np.asarray(Image.open(SAMPLE_IMAGES[i]).convert("RGB"))


def spec(system: str, sites: list[tuple[str | None, dict, int | None]], mode: str = "local") -> dict:
    return {"system": system, "mode": mode, "condition": {"code": "EA90"},
            "sites": [{"bodySite": s, "items": items, "image": image} for s, items, image in sites]}


def test_local_estimates_ai_items_and_keeps_answers(pipeline: SeverityPipeline) -> None:
    report = pipeline.run("r", spec("apasi", [("armLeft", {"area": 30, "erythema": 4}, 0)]), [ImageInput(rgb(0))])
    entry = report["patientEvolution"]["apasi"]
    assert set(report["patientEvolution"]) == set(SYSTEMS)
    assert entry["item"]["erythema"] == {"code": {"text": SYSTEMS["apasi"].item("erythema").text}, "value": 4}
    assert "aiConfidence" in entry["item"]["desquamation"]["additionalData"]
    assert report["mediaValidity"]["isValid"] is True
    assert report["knownCondition"]["conclusion"]["coding"][0]["code"] == "EA90"
    v = {k: i["value"] for k, i in entry["item"].items()}
    assert entry["score"]["value"] == pytest.approx((v["erythema"] + v["induration"] + v["desquamation"]) * 3)


def test_redder_phantom_scores_more_erythema(pipeline: SeverityPipeline) -> None:
    grades = []
    for redness in (3.0, 25.0):
        phantom = make_phantom(7, label="EA90", size=384, redness=redness, scale=0.0)
        report = pipeline.run("r", spec("apasi", [("trunkFront", {"area": 10}, 0)]), [ImageInput(phantom.rgb)])
        grades.append(report["patientEvolution"]["apasi"]["item"]["erythema"]["value"])
    assert grades[0] < grades[1]


def test_counts_come_with_detection_boxes(pipeline: SeverityPipeline) -> None:
    phantom = make_phantom(3, label="ED80", size=384, count=8)
    report = pipeline.run("r", spec("aladin", [("headLeft", {}, 0)]), [ImageInput(phantom.rgb)])
    entry = report["patientEvolution"]["aladin"]
    assert abs(entry["item"]["acneLesions"]["value"] - 8) <= 2
    assert len(entry["media"]["detection"]) == entry["item"]["acneLesions"]["value"]


def test_invalid_image_is_flagged(pipeline: SeverityPipeline) -> None:
    dark = (rgb(1) * 0.08).astype(np.uint8)
    report = pipeline.run("r", spec("apasi", [("armLeft", {"area": 30}, 0)]), [ImageInput(dark)])
    assert report["mediaValidity"]["isValid"] is False and "quality check" in report["warnings"][0]


def test_manual_and_global(pipeline: SeverityPipeline) -> None:
    manual = pipeline.run("r", spec("pga", [(None, {"pga": 2}, None)], mode="manual"), [])
    assert manual["patientEvolution"]["pga"]["score"]["interpretation"] == {"category": "Mild", "intensity": 1}
    assert "mediaValidity" not in manual and "media" not in manual["patientEvolution"]["pga"]
    sites = [("armLeft", {"area": 20}, 0), ("legLeft", {"area": 40}, 1)]
    report = pipeline.run("r", spec("apasi", sites, mode="global"), [ImageInput(rgb(2)), ImageInput(rgb(3))])
    entry = report["patientEvolution"]["apasi"]
    shares = [s["score"]["additionalData"]["globalScoreContribution"]["value"] for s in entry["bodySite"]]
    assert sum(shares) == pytest.approx(entry["score"]["value"], abs=0.1)
    assert all("mediaValidity" in s and "maskRaw" in s["media"]["attachment"] for s in entry["bodySite"])


def test_learned_segmenter_serves_only_the_modality_it_was_trained_on() -> None:
    learned = LearnedSegmenter.from_bundle(load_bundle(SHIPPED_BUNDLES["segmentation"]))
    assert learned.modality == "Dermoscopic"
    pipeline = SeverityPipeline(learned, quality=QualityConfig())
    assert pipeline._segmenter_for({"modality": {"value": "Dermoscopic"}}) is learned
    assert isinstance(pipeline._segmenter_for({"modality": {"value": "Clinical"}}), ClassicalSegmenter)
    classical = SeverityPipeline(ClassicalSegmenter(), quality=QualityConfig())
    assert classical._segmenter_for({"modality": {"value": "Dermoscopic"}}) is classical.segmenter
