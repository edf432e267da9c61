"""Severity assessment: quality → segmentation → sign estimates → scoring → FHIR DiagnosticReport.

The job spec says which scoring system, which body sites with which clinical
answers, and which image belongs to which site (SPEC §2.6–2.7). Items the
client answered are taken as given (and carry no `aiConfidence`); the other
AI items are estimated from the image inside the lesion mask.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np


from pipeline.catalogue import load_catalogue
from pipeline.diagnosis import ImageInput, envelope
from pipeline.masks import mask_attachments
from pipeline.gate import GateProbs
from pipeline.quality import QualityConfig, assess_media_validity
from pipeline.segmentation import ClassicalSegmenter, Segmenter
from pipeline.severity.signs import SIGNS, SignEstimate, estimate_signs
from pipeline.severity.systems import SYSTEMS, ScoringSystem
from pipeline.skin import skin_region

ProgressFn = Callable[[str, int, int], None]

INVALID_IMAGE_WARNING = (
    "The image of {site} failed the quality check (see its mediaValidity); the items estimated from it are "
    "unreliable. Retake the photo or answer those items yourself."
)


def _number(value: float, integer: bool) -> int | float:
    return int(round(value)) if integer else round(float(value), 4)


def score_json(system: ScoringSystem, value: float, contribution: float) -> dict[str, Any]:
    band = system.interpret(value)
    return {
        "value": _number(value, system.decimals == 0),  # whole-number scales (IHS4, DLQI ...) stay integers
        "interpretation": {"category": band.category, "intensity": band.intensity},
        "additionalData": {"globalScoreContribution": {"value": round(float(contribution), 4)}},
    }


@dataclass
class SiteResult:
    body_site: str | None
    values: dict[str, float]
    confidence: dict[str, float] = field(default_factory=dict)  # AI items only
    validity: dict[str, Any] | None = None
    media: dict[str, Any] | None = None

    def items_json(self, system: ScoringSystem) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for item in system.items:
            if item.code not in self.values:
                continue
            entry: dict[str, Any] = {"code": {"text": item.text}, "value": _number(self.values[item.code], item.integer)}
            if item.code in self.confidence:
                entry["additionalData"] = {"aiConfidence": {"value": round(self.confidence[item.code], 1)}}
            out[item.code] = entry
        return out


class SeverityPipeline:
    def __init__(self, segmenter: Segmenter, *, quality: QualityConfig, models: list[dict[str, Any]] | None = None,
                 mask_max_side: int = 512, gate: Callable[[np.ndarray], GateProbs | None] | None = None):
        self.segmenter = segmenter
        # The learned image gate (the classifier's forward pass); None: the classical gate decides.
        self.gate = gate
        # For images outside the learned segmenter's modality (clinical photographs of plaques and
        # rashes under a dermoscopy-trained U-Net, say): the classical method, which needs no training.
        self.fallback: Segmenter = ClassicalSegmenter()
        self.quality = quality
        self.models = models or []
        self.mask_max_side = mask_max_side

    def run(self, report_id: str, spec: Mapping[str, Any], images: Sequence[ImageInput],
            progress: ProgressFn | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        step = progress or (lambda stage, done, total: None)
        system = SYSTEMS[spec["system"]]
        sites = spec["sites"]
        results: list[SiteResult] = []
        for i, site in enumerate(sites):
            step("assessment", i, len(sites))
            image = images[site["image"]] if site.get("image") is not None else None
            results.append(self._site(system, site, image))
        step("scoring", 0, 1)
        body = self._report(system, spec["mode"], results)
        report = envelope(report_id, started)
        report.update(body)
        if spec.get("condition"):
            report["knownCondition"] = {"conclusion": load_catalogue().get(spec["condition"]["code"]).concept()}
        report["device"] = {"models": self.models}
        warnings = [INVALID_IMAGE_WARNING.format(site=r.body_site or "the site")
                    for r in results if r.validity is not None and not r.validity.get("isValid")]
        if warnings:
            report["warnings"] = warnings
        return report

    # --- one body site ---
    def _site(self, system: ScoringSystem, site: Mapping[str, Any], image: ImageInput | None) -> SiteResult:
        given = {k: float(v) for k, v in site["items"].items()}
        result = SiteResult(site.get("bodySite"), dict(given))
        if image is None:
            return result
        rgb = image.rgb
        result.validity = assess_media_validity(rgb, self.quality, self.gate(rgb) if self.gate else None)
        seg = self._segmenter_for(result.validity).segment(rgb)
        wanted = [item for item in system.ai_items() if item.code not in given]
        estimates = self._estimate(rgb, seg.binary, {item.sign for item in wanted if item.sign})
        detections = []
        for item in wanted:
            estimate = estimates[item.sign] if item.sign else None
            if estimate is None:
                continue
            result.values[item.code] = item.from_sign(estimate.value)
            result.confidence[item.code] = float(estimate.confidence)
            detections += [
                {"confidence": round(d.confidence, 1), "code": d.code,
                 "box": dict(zip(("x1", "y1", "x2", "y2"), map(int, d.box)))}
                for d in estimate.detections
            ]
        result.media = {"attachment": mask_attachments(rgb, seg, max_side=self.mask_max_side)}
        if detections:
            result.media["detection"] = detections
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
        skin = skin_region(rgb)
        counts = {s for s in signs if SIGNS[s] == "count"}
        estimates = estimate_signs(rgb, lesion, skin, signs - counts) if signs - counts else {}
        if counts:
            estimates.update(estimate_signs(rgb, skin | lesion, skin, counts))
        return estimates

    # --- the report body ---
    def _report(self, system: ScoringSystem, mode: str, results: list[SiteResult]) -> dict[str, Any]:
        evolution: dict[str, Any] = dict.fromkeys(SYSTEMS)
        if mode == "global":
            total, contributions = system.global_score([(r.body_site or "", r.values) for r in results])
            evolution[system.code] = {
                "score": score_json(system, total, total),
                "bodySite": [
                    {"code": r.body_site, "mediaValidity": r.validity,
                     "score": score_json(system, system.local_score(r.values, r.body_site), share),
                     "item": r.items_json(system), "media": r.media}
                    for r, share in zip(results, contributions)
                ],
            }
            return {"patientEvolution": evolution}
        (r,) = results
        value = system.local_score(r.values, r.body_site)
        entry: dict[str, Any] = {
            "score": score_json(system, value, system.contribution(r.values, r.body_site)),
            "item": r.items_json(system),
        }
        if r.media is not None:
            entry["media"] = r.media
        evolution[system.code] = entry
        body: dict[str, Any] = {"patientEvolution": evolution}
        if r.validity is not None:
            body = {"mediaValidity": r.validity, **body}
        return body
