"""The severity stage on its own: AI items from the image, the client's answers kept, and the report shaped
as the reference client parses it (codes on everything, attachments by media kind at the input's size)."""

from __future__ import annotations

import base64
import io
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

import pipeline.severity.assessment as assessment
from core.jobs import SeveritySpec
from pipeline.diagnosis import ImageInput
from pipeline.masks import ANNOTATION_TITLE
from pipeline.models.bundle import SHIPPED_BUNDLES, load_bundle
from training.phantoms import make_phantom
from pipeline.quality import QualityConfig
from pipeline.segmentation import ClassicalSegmenter, LearnedSegmenter
from pipeline.severity import systems as catalogue
from pipeline.severity.assessment import (
    ACNE_DENSITY_BANDS,
    GSC_TEXT,
    SeverityPipeline,
    SiteResult,
    acne_density_interpretation,
)
from pipeline.severity.body_sites import body_surface_share
from pipeline.severity.signs import Detection, estimate_signs
from pipeline.severity.systems import SYSTEMS, ScoringSystem

from support import SAMPLE_IMAGES

ATTACHMENT_KEYS = {"title", "contentType", "data", "height", "width", "colorModel"}
LESION = {"maskRaw": "Lesion mask raw", "maskBinary": "Lesion mask binary", "segmentation": "Segmentation"}
HAIR = {"hairMaskRaw": "Hair mask raw", "hairMaskBinary": "Hair mask binary", "baldnessMaskRaw": "Baldness mask raw",
        "baldnessMaskBinary": "Baldness mask binary", "segmentation": "Segmentation"}
DEPIGMENTATION = {"skinMaskRaw": "Skin mask raw", "skinMaskBinary": "Skin mask binary",
                  "depigmentationMaskRaw": "Depigmentation mask raw",
                  "depigmentationMaskBinary": "Depigmentation mask binary", "segmentation": "Segmentation"}
WOUND_STEMS = {"erythema": "Erythema", "wound": "Wound", "angiogenesisAndGranulatedTissue": "Angiogenesis and granulated "
               "tissue", "biofilmAndSlough": "Biofilm and slough", "necrosis": "Necrosis", "maceration": "Maceration",
               "orthopedic": "Orthopedic", "boneCartilageOrTendon": "Bone cartilage or tendon"}
WOUND = {f"{stem}Mask{kind.capitalize()}": f"{label} mask {kind}" for stem, label in WOUND_STEMS.items()
         for kind in ("raw", "binary")}
MEDIA = {"apasi": "lesion", "aeasi": "lesion", "ascorad": "lesion", "auas": "annotation", "aihs4": "annotation",
         "aladin": "annotation", "nsil": "annotation", "agppga": "none", "asalt": "hair", "avasi": "depigmentation",
         "awosi": "wound"}
NO_ITEMS = ("asalt", "avasi")
DETECTION_CODES = {"auas": {"wheal"}, "aihs4": {"nodule", "drainingTunnel", "abscess"}, "aladin": {"acne"},
                   "nsil": {"inflammatoryLesion"}}
# (system, phantom class or "wound", body site, width, height): the reference client's sizes
CASES = [
    ("apasi", "EA90", "armLeft", 945, 509), ("aeasi", "EA90", "armLeft", 650, 350),
    ("ascorad", "EA90", "armLeft", 650, 350), ("auas", "EB00", "armLeft", 701, 454),
    ("aihs4", "ED92.0", "armLeft", 548, 800), ("aladin", "ED80", "headLeft", 500, 400),
    ("agppga", "EA90", "armLeft", 640, 480), ("asalt", "ED70.2", "headLeft", 1000, 563),
    ("avasi", "ED63.0", "armLeft", 800, 550), ("nsil", "ED80", "armLeft", 800, 1067),
    ("awosi", "wound", "headLeft", 1024, 768),
]


@pytest.fixture(scope="module")
def pipeline() -> SeverityPipeline:
    return SeverityPipeline(ClassicalSegmenter(), quality=QualityConfig(), models=[{"name": "classical"}])


class _Presented:
    """A catalogue system with the presentation fields it will carry (media, reports_items, ...)."""

    def __init__(self, system: ScoringSystem, **fields: Any) -> None:
        self._system = system
        self.__dict__.update(fields)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._system, name)


def presented(code: str, monkeypatch: pytest.MonkeyPatch) -> ScoringSystem:
    """The system as the pipeline will see it; until the catalogue has the presentation fields, with them."""
    if code not in SYSTEMS:
        pytest.skip(f"{code} is not in the catalogue yet")
    system = SYSTEMS[code]
    if hasattr(system, "media"):
        assert (system.media, system.reports_items) == (MEDIA[code], code not in NO_ITEMS)
        return system
    proxy = _Presented(system, media=MEDIA[code], reports_items=code not in NO_ITEMS)
    monkeypatch.setattr(assessment, "SYSTEMS", {**SYSTEMS, code: proxy})
    return proxy  # type: ignore[return-value]


def sample(i: int) -> np.ndarray:
    return np.asarray(Image.open(SAMPLE_IMAGES[i]).convert("RGB"))


def answers(system: ScoringSystem) -> dict[str, float]:
    """A valid answer to every clinical input."""
    return {i.code: min(i.maximum, i.minimum + 1) for i in system.clinician_items()}


def spec(system: str, sites: list[tuple[str | None, dict, int | None]], mode: str = "local",
         condition: dict | None = None) -> SeveritySpec:
    return SeveritySpec.model_validate({
        "system": system, "mode": mode, "condition": condition or {"code": "EA90"},
        "sites": [{"bodySite": s, "items": items, "image": image} for s, items, image in sites]})


def decoded(att: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(att["data"], validate=True)))


def check_code(code: dict, key: str, text: str | None = None) -> None:
    assert code["text"] and (text is None or code["text"] == text)
    assert len(code["coding"]) == 1 and code["coding"][0]["code"] == key and code["coding"][0]["systemDisplay"]


def check_attachments(attachments: dict, expected: dict[str, str], size: tuple[int, int]) -> None:
    """Keys and titles as expected; each an RGB JPEG whose declared and actual size is the input's."""
    assert {k: a["title"] for k, a in attachments.items()} == expected
    for att in attachments.values():
        assert set(att) == ATTACHMENT_KEYS and att["contentType"] == "image/jpeg" and att["colorModel"] == "RGB"
        image = decoded(att)
        assert (image.format, image.mode) == ("JPEG", "RGB")
        assert (image.width, image.height) == (att["width"], att["height"]) == size


def check_items(entry: dict, system: ScoringSystem, given: dict[str, float], body_site: str) -> None:
    items = entry["item"]
    assert set(items) == {i.code for i in system.ai_items()} | set(given)
    for key, out in items.items():
        item = system.item(key)
        check_code(out["code"], key, item.text)
        # Automatic reports read graded items only; typed-in percentages and scales carry no reading.
        graded = item.kind in ("ordinal", "count", "boolean")
        assert out.get("interpretation") == (item.interpretation(out["value"]) if graded else None)
        extra = out.get("additionalData", {})
        for name, data in extra.items():
            check_code(data["code"], name)
            assert data["value"] >= 0
        assert ("aiConfidence" in extra) == (key not in given)  # client answers carry none
        if key not in given:
            assert 0 <= extra["aiConfidence"]["value"] <= 100
        extras = set(item.extras)
        # Counts, densities and probabilities come from the AI estimate; the body-surface share from the value.
        wanted = extras & {"surfaceAreaOverBsa"} if key in given else extras
        assert wanted <= set(extra) <= {"aiConfidence", *extras}
        if "surfaceAreaOverBsa" in extra:
            assert extra["surfaceAreaOverBsa"]["value"] == pytest.approx(out["value"] * body_surface_share(body_site),
                                                                        abs=0.01)


def photo_for(label: str, width: int, height: int, make_photo, make_wound) -> np.ndarray:
    if label == "wound":
        return make_wound(width, height)[0]
    count = {"EB00": 5, "ED92.0": 4, "ED80": 8}.get(label)
    return make_photo(label, width, height, **({"count": count} if count is not None else {}))


@pytest.mark.parametrize(("code", "label", "site", "width", "height"), CASES, ids=[c[0] for c in CASES])
def test_report_is_shaped_as_the_reference_client_parses_it(code, label, site, width, height, pipeline, monkeypatch,
                                                            make_photo, make_wound) -> None:
    system = presented(code, monkeypatch)
    given = answers(system)
    image = photo_for(label, width, height, make_photo, make_wound)
    report = pipeline.run("r", spec(code, [(site, given, 0)]), [ImageInput(image)])
    evolution = report["patientEvolution"]
    assert set(evolution) == set(SYSTEMS) and all(v is None for k, v in evolution.items() if k != code)
    entry = evolution[code]

    if code in NO_ITEMS:
        assert entry["item"] is None
    else:
        check_items(entry, system, given, site)
    band = entry["score"]["interpretation"]
    assert band["category"] and band["intensity"] in (0, 1, 2, 3)
    gsc = entry["score"].get("additionalData", {}).get("globalScoreContribution")
    if gsc is not None:
        check_code(gsc["code"], "globalScoreContribution", GSC_TEXT)

    media = entry.get("media") or {}
    kind = MEDIA[code]
    if kind == "none":
        assert media.get("attachment") is None
    elif kind == "annotation":
        title = getattr(system, "annotation_title", ANNOTATION_TITLE)
        assert title.startswith(ANNOTATION_TITLE)
        check_attachments(media["attachment"], {"annotation": title}, (width, height))
    else:
        expected = {"lesion": LESION, "hair": HAIR, "depigmentation": DEPIGMENTATION, "wound": WOUND}[kind]
        check_attachments(media["attachment"], expected, (width, height))

    detections = media.get("detection", [])
    if code in DETECTION_CODES and code != "nsil":
        assert detections, "the phantom's lesions are found"
    for d in detections:
        assert d["confidence"] > 0 and d["code"]["coding"][0]["code"] in DETECTION_CODES[code]
        check_code(d["code"], d["code"]["coding"][0]["code"])
        box = d["box"]
        assert 0 < box["x1"] < box["x2"] <= width and 0 < box["y1"] < box["y2"] <= height


def test_client_answers_keep_their_value_and_carry_no_ai_confidence(pipeline: SeverityPipeline) -> None:
    system = SYSTEMS["apasi"]
    own = system.ai_items()[0]
    given = {**answers(system), own.code: own.maximum}
    report = pipeline.run("r", spec("apasi", [("armLeft", given, 0)]), [ImageInput(sample(0))])
    entry = report["patientEvolution"]["apasi"]
    assert entry["item"][own.code]["value"] == own.maximum
    assert "aiConfidence" not in entry["item"][own.code].get("additionalData", {})
    assert all("aiConfidence" in entry["item"][i.code]["additionalData"] for i in system.ai_items()[1:])
    assert report["mediaValidity"]["isValid"] is True
    assert report["knownCondition"]["conclusion"]["coding"][0]["code"] == "EA90"
    values = {k: i["value"] for k, i in entry["item"].items()}
    assert entry["score"]["value"] == pytest.approx(system.local_score(values, "armLeft"), abs=0.05)


def test_redder_phantom_scores_more_erythema(pipeline: SeverityPipeline) -> None:
    system = SYSTEMS["apasi"]
    (erythema,) = [i.code for i in system.ai_items() if i.sign == "erythema"]
    grades = []
    for redness in (3.0, 25.0):
        phantom = make_phantom(7, label="EA90", size=384, redness=redness, scale=0.0)
        report = pipeline.run("r", spec("apasi", [("trunkFront", answers(system), 0)]), [ImageInput(phantom.rgb)])
        grades.append(report["patientEvolution"]["apasi"]["item"][erythema]["value"])
    assert grades[0] < grades[1]


def test_counts_come_with_detection_boxes(pipeline: SeverityPipeline) -> None:
    (count,) = SYSTEMS["aladin"].ai_items()
    phantom = make_phantom(3, label="ED80", size=384, count=8)
    report = pipeline.run("r", spec("aladin", [("headLeft", {}, 0)]), [ImageInput(phantom.rgb)])
    entry = report["patientEvolution"]["aladin"]
    assert abs(entry["item"][count.code]["value"] - 8) <= 2
    assert len(entry["media"]["detection"]) == entry["item"][count.code]["value"]


def test_the_full_size_vignette_is_computed_once_per_image(pipeline: SeverityPipeline,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The skin region and the sign scenes (lesion signs and counts) share one field-stop mask of the image."""
    import pipeline.severity.signs as signs
    import pipeline.skin as skin

    sizes: list[tuple[int, ...]] = []
    real = skin.vignette_mask

    def counting(rgb: np.ndarray) -> np.ndarray:
        sizes.append(rgb.shape[:2])
        return real(rgb)

    for module in (assessment, signs, skin):
        monkeypatch.setattr(module, "vignette_mask", counting)
    rgb = make_phantom(5, label="EB00", size=384).rgb
    pipeline.run("r", spec("auas", [("armLeft", answers(SYSTEMS["auas"]), 0)], condition={"code": "EB00"}), [ImageInput(rgb)])
    assert sizes.count(rgb.shape[:2]) == 1, sizes


def test_invalid_image_is_flagged(pipeline: SeverityPipeline) -> None:
    dark = (sample(1) * 0.08).astype(np.uint8)
    report = pipeline.run("r", spec("apasi", [("armLeft", answers(SYSTEMS["apasi"]), 0)]), [ImageInput(dark)])
    assert report["mediaValidity"]["isValid"] is False and "quality check" in report["warnings"][0]


@pytest.mark.parametrize("with_photo", [False, True])
def test_manual_returns_exactly_the_items_sent(pipeline: SeverityPipeline, with_photo: bool) -> None:
    system = SYSTEMS["dlqi"]
    given = {i.code: k % 4 for k, i in enumerate(system.items)}
    images = [ImageInput(sample(0))] if with_photo else []
    manual = pipeline.run("r", spec("dlqi", [("armLeft", given, 0 if with_photo else None)], mode="manual"), images)
    entry = manual["patientEvolution"]["dlqi"]
    assert {k: i["value"] for k, i in entry["item"].items()} == given
    for key, out in entry["item"].items():
        check_code(out["code"], key, system.item(key).text)
        assert "aiConfidence" not in out.get("additionalData", {})
        if hasattr(system.item(key), "interpretation"):
            assert out["interpretation"]
    assert entry["score"]["value"] == sum(given.values())
    assert "mediaValidity" not in manual and entry.get("media") is None  # a questionnaire's photo is not analysed


def test_global_sites_are_coded_and_full_size(pipeline: SeverityPipeline) -> None:
    given = answers(SYSTEMS["apasi"])
    sites = [("armLeft", given, 0), ("legLeft", given, 1)]
    report = pipeline.run("r", spec("apasi", sites, mode="global"), [ImageInput(sample(2)), ImageInput(sample(3))])
    entry = report["patientEvolution"]["apasi"]
    shares = [s["score"]["additionalData"]["globalScoreContribution"] for s in entry["bodySite"]]
    assert sum(s["value"] for s in shares) == pytest.approx(entry["score"]["value"], abs=0.1)
    for share in [*shares, entry["score"]["additionalData"]["globalScoreContribution"]]:
        check_code(share["code"], "globalScoreContribution", GSC_TEXT)
    for site in entry["bodySite"]:
        assert "mediaValidity" in site
        check_attachments(site["media"]["attachment"], LESION, (1024, 683))


def test_a_condition_named_only_by_text_is_reported_as_such(pipeline: SeverityPipeline) -> None:
    report = pipeline.run("r", spec("apasi", [("armLeft", answers(SYSTEMS["apasi"]), 0)],
                                    condition={"text": "Non-specific finding"}), [ImageInput(sample(0))])
    assert report["knownCondition"] == {"conclusion": {"text": "Non-specific finding"}}


def test_wound_media_are_the_sixteen_maps_at_the_input_size(make_wound) -> None:
    image, bed = make_wound(1024, 768)
    wound = estimate_signs(image, bed, None, ["woundArea"])["woundArea"]
    attachments = assessment._attachments(SimpleNamespace(), "wound", image, None, wound, [])  # type: ignore[arg-type]
    check_attachments(attachments, WOUND, (1024, 768))
    granulation = np.asarray(decoded(attachments["angiogenesisAndGranulatedTissueMaskBinary"]))[..., 0] > 127
    assert granulation[384, 512] and not granulation[20, 20]


def test_detections_are_coded_and_boxed_inside_the_image() -> None:
    edge = assessment._detection_json(Detection(42.0, "wheals", (0, 0, 30, 500)), (454, 701))
    assert edge["box"] == {"x1": 1, "y1": 1, "x2": 30, "y2": 454} and edge["confidence"] == 42.0
    check_code(edge["code"], "wheal", "Wheal")
    texts = {"nodules": "Nodule", "tunnels": "Draining tunnel", "abscesses": "Abscess", "acneLesions": "Acne",
             "inflammatoryLesions": "Inflammatory lesion"}
    for sign, text in texts.items():
        assert assessment._detection_json(Detection(1.0, sign, (5, 5, 9, 9)), (10, 10))["code"]["text"] == text


EXTRA_TEXTS = {"whealsCount": "Number of hives/wheals", "acneDensity": "Acne density score",
               "inflammatoryLesionCount": "Number of inflammatory lesions",
               "presenceProbability": "Probability of the item being present in the wound as assessed by AI.",
               "surfaceAreaOverBsa": "Affected surface area as a percentage of the whole body"}


def test_extra_additional_data(monkeypatch: pytest.MonkeyPatch) -> None:
    if not hasattr(catalogue, "EXTRA_TEXTS"):
        monkeypatch.setattr(catalogue, "EXTRA_TEXTS", EXTRA_TEXTS, raising=False)
    acne = make_phantom(3, label="ED80", size=384, count=8)
    estimate = estimate_signs(acne.rgb, np.ones_like(acne.mask), None, ["acneLesions"])["acneLesions"]
    site = SiteResult("armLeft", {"acne": estimate.value, "surface": 60.0}, estimates={"acne": estimate})
    item = SimpleNamespace(code="acne")
    count = site._extra("whealsCount", item)  # type: ignore[arg-type]
    assert count["value"] == estimate.value == len(estimate.detections)
    check_code(count["code"], "whealsCount", catalogue.EXTRA_TEXTS["whealsCount"])
    density = site._extra("acneDensity", item)  # type: ignore[arg-type]
    assert 0 < density["value"] <= 100 and density["interpretation"] == acne_density_interpretation(density["value"])
    surface = site._extra("surfaceAreaOverBsa", SimpleNamespace(code="surface"))  # type: ignore[arg-type]
    assert surface["value"] == pytest.approx(60.0 * 0.2)  # the upper limbs are 20 % of the body
    assert site._extra("whealsCount", SimpleNamespace(code="surface")) is None  # a client answer has no estimate
    assert SiteResult(None, {"surface": 60.0})._extra("surfaceAreaOverBsa", SimpleNamespace(code="surface")) is None


def test_acne_density_bands() -> None:
    assert [acne_density_interpretation(p) for p in (0.0, 0.99, 1.0, 4.0, 7.0, 10.0, 100.0)] == [
        "Very low", "Very low", "Low", "Moderate", "High", "Very high", "Very high"]
    assert [label for _, label in ACNE_DENSITY_BANDS] == ["Very low", "Low", "Moderate", "High", "Very high"]


def test_learned_segmenter_serves_only_the_modality_it_was_trained_on() -> None:
    learned = LearnedSegmenter.from_bundle(load_bundle(SHIPPED_BUNDLES["segmentation"]))
    assert learned.modality == "Dermoscopic"
    pipeline = SeverityPipeline(learned, quality=QualityConfig())
    assert pipeline._segmenter_for({"modality": {"value": "Dermoscopic"}}) is learned
    assert isinstance(pipeline._segmenter_for({"modality": {"value": "Clinical"}}), ClassicalSegmenter)
    classical = SeverityPipeline(ClassicalSegmenter(), quality=QualityConfig())
    assert classical._segmenter_for({"modality": {"value": "Dermoscopic"}}) is classical.segmenter
