"""Severity assessment: quality → segmentation → sign estimates → scoring → FHIR DiagnosticReport.

The job spec says which scoring system, which body sites with which clinical
answers, and which image belongs to which site (SPEC §2.6–2.7). Items the
client answered are taken as given (and carry no `aiConfidence`); the other
AI items are estimated from the image inside the lesion mask. A manual
questionnaire's photo, if any, is not analysed: nothing of it is scored.

Report shape, as the reference client parses it: every item, additional-data
entry and detection carries a code object (`pipeline.codes`); `media.attachment`
depends on the system's `media` (lesion masks, hair or depigmentation masks,
the wound maps, one annotated image, or none), every attachment an RGB JPEG at
the input image's size; `media.detection[]` boxes are in the input's pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from core.jobs import CatalogueCondition, SeveritySite, SeveritySpec
from pipeline.catalogue import load_catalogue
from pipeline.codes import additional_data, ai_confidence, local_code
from pipeline.diagnosis import ImageInput, ImageSource, envelope, load_image
from pipeline.gate import GateProbs
from pipeline.masks import (
    ANNOTATION_TITLE,
    MaskMap,
    annotated_attachment,
    map_attachments,
    mask_attachments,
)
from pipeline.quality import QualityConfig, assess_media_validity
from pipeline.segmentation import ClassicalSegmenter, Segmentation, Segmenter
from pipeline.severity import systems as catalogue
from pipeline.severity.body_sites import body_surface_share
from pipeline.severity.signs import (
    DETECTION_CLASSES,
    SIGNS,
    WOUND_MAPS,
    Detection,
    SignEstimate,
    estimate_signs,
)
from pipeline.severity.systems import SYSTEMS, Item, ScoringSystem
from pipeline.skin import skin_region, vignette_mask

ProgressFn = Callable[[str, int, int], None]

INVALID_IMAGE_WARNING = (
    "The image of {site} failed the quality check (see its mediaValidity); the items estimated from it are "
    "unreliable. Retake the photo or answer those items yourself."
)


GSC_TEXT = "Contribution of the body zone score to the full-body score"
# Acne density (% of the skin in the photo covered by the counted lesions) read in five steps. dermq's own
# reading, not a published scale: a handful of papules on a cheek covers well under 1 %, a face crowded
# with confluent lesions over 10 %.
ACNE_DENSITY_BANDS: tuple[tuple[float, str], ...] = ((1.0, "Very low"), (3.0, "Low"), (6.0, "Moderate"),
                                                     (10.0, "High"), (float("inf"), "Very high"))
# Media kinds drawn from maps: the sign whose estimate carries them, (stem, label) of each, and the map
# drawn over the image as the `segmentation` attachment (None: no overlay).
WOUND_LABELS = ("Erythema", "Wound", "Angiogenesis and granulated tissue", "Biofilm and slough", "Necrosis",
                "Maceration", "Orthopedic", "Bone cartilage or tendon")
MAP_MEDIA: dict[str, tuple[str, tuple[tuple[str, str], ...], str | None]] = {
    "hair": ("hairLoss", (("hair", "Hair"), ("baldness", "Baldness")), "baldness"),
    "depigmentation": ("depigmentation", (("skin", "Skin"), ("depigmentation", "Depigmentation")), "depigmentation"),
    "wound": ("woundArea", tuple(zip(WOUND_MAPS, WOUND_LABELS)), None),
}


def _number(value: float, integer: bool) -> int | float:
    return int(round(value)) if integer else round(float(value), 4)


def score_json(system: ScoringSystem, value: float, contribution: float | None,
               values: Mapping[str, float] | None = None, *, whole_body: bool = False) -> dict[str, Any]:
    band = system.interpret(value, values, whole_body=whole_body)
    out: dict[str, Any] = {
        "value": _number(value, system.decimals == 0),  # whole-number scales (IHS4, DLQI ...) stay integers
        "interpretation": {"category": band.category, "intensity": band.intensity},
    }
    if contribution is not None:
        out["additionalData"] = {"globalScoreContribution": additional_data(
            "globalScoreContribution", GSC_TEXT, round(float(contribution), 4))}
    return out


def acne_density_interpretation(percent: float) -> str:
    return next(label for upper, label in ACNE_DENSITY_BANDS if percent < upper)


@dataclass
class SiteResult:
    body_site: str | None
    values: dict[str, float]
    confidence: dict[str, float] = field(default_factory=dict)  # AI items only
    validity: dict[str, Any] | None = None
    media: dict[str, Any] | None = None
    estimates: dict[str, SignEstimate] = field(default_factory=dict)  # by AI item code

    def items_json(self, system: ScoringSystem) -> dict[str, Any] | None:
        if not system.reports_items:
            return None  # the score still comes from the items (asalt, avasi), the report does not list them
        out: dict[str, Any] = {}
        for item in system.items:
            if item.code not in self.values:
                continue
            value = _number(item.report_value(self.values[item.code]), item.integer or item.reported == "areaScore")
            entry: dict[str, Any] = {"code": local_code(item.code, item.text), "value": value}
            interpretation = item.interpretation(value) if self._reads(system, item) else None
            if interpretation is not None:
                entry["interpretation"] = interpretation
            extra = {} if item.code not in self.confidence else {"aiConfidence": ai_confidence(
                round(self.confidence[item.code], 1))}
            for key in item.extras:
                if (data := self._extra(key, item)) is not None:
                    extra[key] = data
            if extra:
                entry["additionalData"] = extra
            out[item.code] = entry
        return out

    @staticmethod
    def _reads(system: ScoringSystem, item: Item) -> bool:
        """Whether the report gives the item's reading (`interpretation`): always on a questionnaire; on an
        automatic report only for graded items (wheals "Moderate (20-50)", itch 0-3), not for the
        percentages and scales (zone surface, VAS itch) the client typed in."""
        return not system.automatic or item.kind in ("ordinal", "count", "boolean")

    def _extra(self, key: str, item: Item) -> dict[str, Any] | None:
        """One of an item's extra additionalData entries, None when this site has nothing to say (the client
        answered the item the entry measures, or there is no body site to relate to)."""
        text = catalogue.EXTRA_TEXTS[key]
        if key == "surfaceAreaOverBsa":
            if self.body_site is None:
                return None
            share = body_surface_share(self.body_site)
            return additional_data(key, text, round(self.values[item.code] * share, 2))
        estimate = self.estimates.get(item.code)
        if estimate is None:
            return None
        if key == "acneDensity":
            density = round(estimate.measure.get("skinCoverPercent", 0.0), 2)
            return additional_data(key, text, density, acne_density_interpretation(density))
        return additional_data(key, text, estimate.value)  # counts, presence probabilities: the sign itself


class SeverityPipeline:
    def __init__(self, segmenter: Segmenter, *, quality: QualityConfig, models: list[dict[str, Any]] | None = None,
                 gate: Callable[[np.ndarray], GateProbs | None] | None = None):
        self.segmenter = segmenter
        # The learned image gate (the classifier's forward pass); None: the classical gate decides.
        self.gate = gate
        # For images outside the learned segmenter's modality (clinical photographs of plaques and
        # rashes under a dermoscopy-trained U-Net, say): the classical method, which needs no training.
        self.fallback: Segmenter = ClassicalSegmenter()
        self.quality = quality
        self.models = models or []

    def run(self, report_id: str, spec: SeveritySpec, images: Sequence[ImageSource],
            progress: ProgressFn | None = None) -> dict[str, Any]:
        """The report for ``spec``; ``images``: decoded, or loaders each called when its site's turn
        comes, so one image at a time is held at its working resolution."""
        started = time.perf_counter()
        step = progress or (lambda stage, done, total: None)
        system = SYSTEMS[spec.system]
        sites = spec.sites
        results: list[SiteResult] = []
        for i, site in enumerate(sites):
            step("assessment", i, len(sites))
            image = load_image(images[site.image]) if site.image is not None else None
            results.append(self._site(system, site, image))
        step("scoring", 0, 1)
        body = self._report(system, spec.mode, results)
        report = envelope(report_id, started)
        report.update(body)
        if condition := spec.condition:
            # A catalogue condition, or the client's own text for systems that score any finding (nsil).
            concept = (load_catalogue().get(condition.code).concept() if isinstance(condition, CatalogueCondition)
                       else {"text": condition.text})
            report["knownCondition"] = {"conclusion": concept}
        report["device"] = {"models": self.models}
        warnings = [INVALID_IMAGE_WARNING.format(site=r.body_site or "the site")
                    for r in results if r.validity is not None and not r.validity.get("isValid")]
        if warnings:
            report["warnings"] = warnings
        return report

    # --- one body site ---
    def _site(self, system: ScoringSystem, site: SeveritySite, image: ImageInput | None) -> SiteResult:
        given = site.items  # the client's answers; the estimates go into a copy
        result = SiteResult(site.body_site, dict(given))
        if image is None or not system.automatic:
            return result
        rgb = image.rgb
        result.validity = assess_media_validity(rgb, self.quality, self.gate(rgb) if self.gate else None)
        seg = self._segmenter_for(result.validity).segment(rgb)
        wanted = [item for item in system.ai_items() if item.code not in given]
        media = system.media
        map_sign = MAP_MEDIA[media][0] if media in MAP_MEDIA else None
        signs = {item.sign for item in wanted if item.sign} | ({map_sign} if map_sign else set())
        estimates = self._estimate(rgb, seg.binary, signs)
        detections: list[Detection] = []
        for item in wanted:
            estimate = estimates[item.sign] if item.sign else None
            if estimate is None:
                continue
            result.values[item.code] = item.from_sign(estimate.value)
            result.confidence[item.code] = float(estimate.confidence)
            result.estimates[item.code] = estimate
            detections += estimate.detections
        attachments = _attachments(system, media, rgb, seg, estimates.get(map_sign) if map_sign else None, detections)
        result.media = {"attachment": attachments} if attachments else {}
        if detections:
            result.media["detection"] = [_detection_json(d, rgb.shape[:2]) for d in detections]
        return result

    def _segmenter_for(self, validity: Mapping[str, Any]) -> Segmenter:
        trained_on = getattr(self.segmenter, "modality", None)
        if trained_on and validity["modality"]["value"] != trained_on:
            return self.fallback
        return self.segmenter

    @staticmethod
    def _estimate(rgb: np.ndarray, lesion: np.ndarray, signs: set[str]) -> dict[str, SignEstimate]:
        """Signs of the lesion inside its mask; countable lesions (papules, wheals, nodules) over all
        the skin in the photo, since they are many small lesions rather than the one segmented."""
        vignette = vignette_mask(rgb)  # computed once for the skin region and both scenes
        skin = skin_region(rgb, vignette=vignette)
        counts = {s for s in signs if SIGNS[s] == "count"}
        estimates = estimate_signs(rgb, lesion, skin, signs - counts, vignette=vignette) if signs - counts else {}
        if counts:
            estimates.update(estimate_signs(rgb, skin | lesion, skin, counts, vignette=vignette))
        return estimates

    # --- the report body ---
    def _entry(self, system: ScoringSystem, r: SiteResult, value: float, contribution: float | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"score": score_json(system, value, contribution, r.values),
                                 "item": r.items_json(system)}
        if r.media:
            entry["media"] = r.media
        return entry

    def _report(self, system: ScoringSystem, mode: str, results: list[SiteResult]) -> dict[str, Any]:
        evolution: dict[str, Any] = dict.fromkeys(SYSTEMS)
        if mode == "global":
            total, contributions = system.global_score([(r.body_site or "", r.values) for r in results])
            evolution[system.code] = {
                "score": score_json(system, total, total, whole_body=True),
                "bodySite": [
                    {"code": r.body_site, "mediaValidity": r.validity,
                     **self._entry(system, r, system.local_score(r.values, r.body_site), share)}
                    for r, share in zip(results, contributions)
                ],
            }
            return {"patientEvolution": evolution}
        (r,) = results
        value = system.local_score(r.values, r.body_site)
        evolution[system.code] = self._entry(system, r, value, system.contribution(r.values, r.body_site))
        body: dict[str, Any] = {"patientEvolution": evolution}
        if r.validity is not None:
            body = {"mediaValidity": r.validity, **body}
        return body


def _attachments(system: ScoringSystem, media: str, rgb: np.ndarray, seg: Segmentation,
                 mapped: SignEstimate | None, detections: list[Detection]) -> dict[str, dict]:
    """``media.attachment`` for the system's media kind, each attachment at the image's size."""
    if media == "none":
        return {}
    if media == "annotation":
        boxes = [(d.code, d.box) for d in detections]
        return {"annotation": annotated_attachment(rgb, boxes, system.annotation_title or ANNOTATION_TITLE)}
    if media in MAP_MEDIA:
        _, stems, overlay = MAP_MEDIA[media]
        maps = mapped.maps if mapped is not None else {}
        return map_attachments(rgb, {stem: MaskMap(label, maps[stem]) for stem, label in stems}, overlay=overlay)
    return mask_attachments(rgb, seg)


def _detection_json(d: Detection, hw: tuple[int, int]) -> dict[str, Any]:
    """A detection as clients read it: a coded class and a box in the image's pixels, every coordinate
    at least 1 (clients reject 0) and at most the image's width or height."""
    key, text = DETECTION_CLASSES.get(d.code, (d.code, d.code))
    h, w = hw
    x1, y1 = min(max(1, int(d.box[0])), w - 1), min(max(1, int(d.box[1])), h - 1)
    x2, y2 = min(max(x1 + 1, int(d.box[2])), w), min(max(y1 + 1, int(d.box[3])), h)
    return {"confidence": max(0.1, round(d.confidence, 1)), "code": local_code(key, text),
            "box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}}
