"""Typed contracts of dermq's clinical reports: the diagnosis report and the severity report.

The pipeline builds the reports as plain dicts (``pipeline.diagnosis``, ``pipeline.severity.assessment``)
and the worker stores them as JSON; these models describe that JSON field by field, so ``/openapi.json``
documents every field and a test validates real reports against them.

- Field names are the JSON names (camelCase), so a model dumps to exactly the report it validated.
- ``extra="forbid"`` everywhere: a field the pipeline adds or renames fails validation instead of
  being silently dropped, so the contract cannot drift unnoticed.
- A field the report may leave out has a default (``None``), so ``model_dump(exclude_unset=True)``
  leaves it out again; a field the report always carries, null or not, has none (it is required).
- Numbers the report writes as integers on some scales and decimals on others are ``int | float``,
  so a round trip keeps ``3`` as ``3`` and ``1.6`` as ``1.6``.

Only pydantic and the standard library: the API process imports this without the model stack.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AdditionalDataEntry", "Attachment", "BodySiteEntry", "BoundingBox", "ClinicalIndicator", "CodeableConcept",
    "Coding", "Conclusion", "Detection", "Device", "DiagnosticReport", "Domain", "DomainAdditionalData",
    "Explainability", "GlobalSeverityEntry", "Identifier", "ImageConclusion", "ImagePerformanceIndicator",
    "ImagingAnalysis", "ItemAdditionalData", "KnownCondition", "MediaAttachments", "MediaValidity", "Modality",
    "ModalityAdditionalData", "ModelDescription", "ModelHead", "PatientEvolution", "PerformanceIndicator",
    "Quality", "QualityMetric", "QualityMetrics", "Score", "ScoreAdditionalData", "ScoreInterpretation",
    "SeverityEntry", "SeverityItem", "SeverityMedia", "SeverityReport",
]

Number = int | float
# A short stand-in for base64 image data in the examples (the start of a JPEG's bytes).
B64_PLACEHOLDER = "/9j/4AAQSkZJRgABAQAAAQABAAD..."


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- building blocks ---
class Coding(_Model):
    """One FHIR Coding: a code in a terminology (ICD-11, LOINC, HL7) or a term named by dermq."""

    code: str = Field(description="The code: an ICD-11 code (`EA89`), a LOINC code, or dermq's key of the term "
                                  "(`aiConfidence`, `erythema`) that clients look items up by.")
    display: str | None = Field(None, description="The terminology's official display of the code; null for "
                                                  "dermq's own terms.")
    system: str | None = Field(None, description="URI of the terminology; null for dermq's own terms.")
    systemDisplay: str | None = Field(None, description="Name of the terminology or naming authority "
                                                        "(`ICD-11`, `HL7 FHIR`, `dermq`).")
    version: str | None = Field(None, description="Terminology release (ICD-11: `2025-01`); null for dermq's own "
                                                  "terms, absent on the report's category and code.")


class CodeableConcept(_Model):
    """A FHIR CodeableConcept: a short human-readable text and its codings."""

    text: str = Field(description="Short human-readable label.")
    coding: list[Coding] | None = Field(None, description="The codings of the concept (one in dermq's reports); "
                                                          "absent when a client named a condition by text only.")


class Identifier(_Model):
    use: Literal["official"] = Field(description="Always `official`.")
    value: str = Field(description="The report's id: the id of the job that produced it.")


class Attachment(_Model):
    """An image in a report: a heat map, a mask, an overlay or an annotated photo."""

    title: str = Field(description="What the image shows, e.g. `Lesion mask raw`.")
    contentType: str = Field(description="MIME type of `data`: `image/jpeg`.")
    data: str = Field(description="The image bytes, plain base64 (no `data:` prefix).")
    height: int = Field(description="Height of the decoded image, in pixels.")
    width: int = Field(description="Width of the decoded image, in pixels.")
    colorModel: str = Field(description="Colour model of the decoded image: `RGB` (single-channel masks are grey RGB).")


class AdditionalDataEntry(_Model):
    """A measured value with the code of what it measures (and a reading of it, where one is defined)."""

    value: Number = Field(description="The value; its unit is given by the entry (percent for confidences and "
                                      "probabilities, a count for counts, score points for contributions).")
    code: CodeableConcept = Field(description="What the value is, coded with dermq as the naming authority; "
                                              "`coding[0].code` is the entry's key.")
    interpretation: str | None = Field(None, description="A human reading of the value (e.g. `Moderate`); "
                                                         "absent where none is defined.")


# --- mediaValidity: image quality, domain and modality ---
class QualityMetric(_Model):
    value: float = Field(description="The check's measurement (unit per check, see `QualityMetrics`).")
    acceptable: bool = Field(description="Whether the check passes.")
    hint: str = Field(description="What to do about a failed check, worded for the person taking the photo; empty "
                                  "when the check passes.")


class QualityMetrics(_Model):
    """Each quality check: why an image failed and what to do about it."""

    sharpness: QualityMetric = Field(description="1 - the no-reference blur ratio in the worst of four directions, "
                                                 "0-1 (higher is sharper).")
    exposure: QualityMetric = Field(description="Mean CIELAB lightness L* of the image centre, 0-100.")
    noise: QualityMetric = Field(description="Noise sigma over the flattest part of a native-resolution window, in "
                                             "grey levels.")
    resolution: QualityMetric = Field(description="Short side of the original image, in pixels.")
    colorCast: QualityMetric = Field(description="CIELAB distance of the centre's mean chromaticity from the range "
                                                 "of skin tones (0: within it).")
    framing: QualityMetric = Field(description="Share of the image centre that shows skin (clinical) or lies inside "
                                               "the dermoscope's field stop (dermoscopic), 0-1.")


class Quality(_Model):
    acceptable: bool = Field(description="Whether `score` reaches the configured threshold (default 60).")
    score: float = Field(description="Quality score 0-100: 100 x the worst check's sub-score.")
    interpretation: Literal["Bad", "Poor", "Fair", "Good", "Excellent"] = Field(
        description="Band of the score: 0-20 Bad, 21-40 Poor, 41-60 Fair, 61-80 Good, 81-100 Excellent.")
    metrics: QualityMetrics = Field(description="The individual checks behind the score.")


class DomainAdditionalData(_Model):
    aiConfidence: AdditionalDataEntry = Field(description="Probability that the image is dermatological, in percent "
                                                          "(0-100).")


class Domain(_Model):
    isDermatological: bool = Field(description="Whether the image shows skin (a clinical or dermoscopic photograph).")
    additionalData: DomainAdditionalData = Field(description="The confidence behind `isDermatological`.")


class ModalityAdditionalData(_Model):
    aiConfidenceClinical: AdditionalDataEntry = Field(description="Probability that the image is a clinical "
                                                                  "photograph, given it shows skin, in percent.")
    aiConfidenceDermoscopic: AdditionalDataEntry = Field(description="Probability that the image is a dermoscopic "
                                                                     "image, given it shows skin, in percent.")


class Modality(_Model):
    value: Literal["Clinical", "Dermoscopic", "None"] = Field(
        description="Kind of image; `None` when the image is not dermatological.")
    additionalData: ModalityAdditionalData = Field(description="The confidences behind `value`.")


class MediaValidity(_Model):
    """Whether an image can be analysed: quality, domain (skin or not) and modality."""

    isValid: bool = Field(description="Quality acceptable and the image dermatological; only valid images count in "
                                      "an aggregate result.")
    quality: Quality = Field(description="Image quality and the checks behind it.")
    domain: Domain = Field(description="Whether the image is dermatological.")
    modality: Modality = Field(description="Clinical photograph or dermoscopic image.")


# --- the device block ---
class ModelHead(_Model):
    """An auxiliary head served with a model (the image gate, the sharpness head)."""

    classes: list[str] = Field(description="The head's output classes, in order.")
    trained: bool = Field(description="Whether the head carries trained weights.")
    test_domain_ece: float | None = Field(None, description="Expected calibration error of the domain decision on "
                                                            "the held-out test split (0-1); image gate only.")
    test_modality_ece: float | None = Field(None, description="Expected calibration error of the modality decision "
                                                              "on the held-out test split (0-1); image gate only.")


class ModelDescription(_Model):
    """A model that produced the report, as the worker served it."""

    name: str = Field(description="Bundle name, e.g. `dermq-dermoscopy-classifier`.")
    version: str = Field(description="Bundle version.")
    task: str = Field(description="What the model does: `classification` or `segmentation`.")
    architecture: str = Field(description="Network architecture, or the method of a classical (untrained) model.")
    sha256: str | None = Field(description="SHA-256 of the weights; null for a classical method without weights.")
    trained: bool = Field(description="Whether the weights are trained; untrained output carries no clinical meaning.")
    classes: int | None = Field(None, description="Number of output classes; absent for a classical method.")
    device: str = Field(description="Where the model ran (`cpu`, `cuda:0`).")
    heads: dict[str, ModelHead] | None = Field(None, description="Auxiliary heads served with the model, by name; "
                                                                 "absent for a classical method.")


class Device(_Model):
    models: list[ModelDescription] = Field(description="The models behind the report (classifier, segmenter).")


class _Envelope(_Model):
    """The FHIR fields every report carries."""

    resourceType: Literal["DiagnosticReport"] = Field(description="Always `DiagnosticReport`.")
    identifier: Identifier = Field(description="The report's id.")
    status: Literal["preliminary"] = Field(description="Always `preliminary`: AI output for a clinician to review.")
    issued: str = Field(description="When the report was produced: ISO-8601 date-time with its UTC offset.",
                        json_schema_extra={"format": "date-time"})
    analysisDuration: float = Field(description="Pipeline time spent on the report, in seconds.")
    device: Device = Field(description="The models that produced the report.")
    warnings: list[str] | None = Field(None, description="What limits the report's validity (untrained weights, "
                                                         "images outside the model's scope, failed quality "
                                                         "checks); absent when there is nothing to say.")


# --- the diagnosis report ---
class PerformanceIndicator(_Model):
    sensitivity: float | None = Field(description="Validation sensitivity of the model for the top-ranked "
                                                  "condition, in percent; null when the model bundle carries "
                                                  "none or no image is valid.")
    specificity: float | None = Field(description="Validation specificity of the model for the top-ranked "
                                                  "condition, in percent; null as `sensitivity`.")
    entropy: float | None = Field(description="Shannon entropy of the ranking as a percentage of its maximum "
                                              "(0 certain, 100 uniform); null when no image is valid.")


class ImagePerformanceIndicator(_Model):
    entropy: float = Field(description="Shannon entropy of this image's ranking as a percentage of its maximum "
                                       "(0 certain, 100 uniform).")


class ClinicalIndicator(_Model):
    """Risk flags, in percent (0-100): sums of class probabilities through the catalogue's flags."""

    hasCondition: float | None = Field(description="Probability that a skin condition is present (100 minus healthy "
                                                   "skin), in percent; null when no image is valid.")
    pigmentedLesion: float | None = Field(description="Probability of a pigmented lesion, in percent; null when no "
                                                      "image is valid.")
    malignancy: float | None = Field(description="Probability of a malignant condition, in percent; null when no "
                                                 "image is valid.")
    urgentReferral: float | None = Field(description="Probability of a condition to be seen within 48 h, in "
                                                     "percent; null when no image is valid.")
    highPriorityReferral: float | None = Field(description="Probability of a condition to be seen within 15 days, "
                                                           "in percent; null when no image is valid.")


class Conclusion(_Model):
    code: CodeableConcept = Field(description="The condition, coded in ICD-11.")
    probability: float = Field(description="Probability of the condition, in percent (0-100); the ranking sums to 100.")


class Explainability(_Model):
    heatMap: Attachment = Field(description="The model's attention for this condition blended over the image (warmer "
                                            "colours weigh more); its long side is at most the configured heat-map side "
                                            "(384 px by default), never larger than the image.")


class ImageConclusion(Conclusion):
    explainability: Explainability | None = Field(description="Attention heat map for the top-ranked conditions the "
                                                              "model covers (5 by default); null beyond them.")


class ImagingAnalysis(_Model):
    """The result for one input image, in request order."""

    mediaValidity: MediaValidity = Field(description="Whether this image can be analysed.")
    performanceIndicator: ImagePerformanceIndicator = Field(description="This image's uncertainty.")
    clinicalIndicator: ClinicalIndicator = Field(description="This image's risk flags (never null here).")
    conclusion: list[ImageConclusion] = Field(description="This image's ranking of every catalogue condition, by "
                                                          "descending probability.")


def _heat_map(height: int = 256, width: int = 384) -> dict:
    return {"title": "Heat map showing which regions of the image the AI focuses its attention to predict this class.",
            "contentType": "image/jpeg", "data": B64_PLACEHOLDER, "height": height, "width": width, "colorModel": "RGB"}


def _local_code(key: str, text: str) -> dict:
    return {"text": text, "coding": [{"code": key, "display": None, "system": None, "systemDisplay": "dermq",
                                      "version": None}]}


def _entry(key: str, text: str, value: Number) -> dict:
    return {"value": value, "code": _local_code(key, text)}


_NAEVUS = {"coding": [{"system": "https://icd.who.int/browse/2025-01/mms/en", "systemDisplay": "ICD-11",
                       "code": "2F20", "display": "Melanocytic naevus", "version": "2025-01"}],
           "text": "Mole (melanocytic naevus)"}
_CLINICAL = {"hasCondition": 100.0, "pigmentedLesion": 99.9, "malignancy": 0.29, "urgentReferral": 0.0,
             "highPriorityReferral": 0.29}
_MODELS = [{"name": "dermq-dermoscopy-classifier", "version": "1", "task": "classification",
            "architecture": "efficientnet_lite0", "sha256": "0eba7bb6...", "trained": True, "classes": 7,
            "device": "cpu", "heads": {"image_gate": {"classes": ["other", "clinical", "dermoscopic"], "trained": True,
                                                      "test_domain_ece": 0.0035, "test_modality_ece": 0.0045}}},
           {"name": "dermq-classical-segmenter", "version": "1", "task": "segmentation",
            "architecture": "CIELAB clustering in the skin region", "sha256": None, "trained": False, "device": "cpu"}]
_METRIC = {"acceptable": True, "hint": ""}
_MEDIA_VALIDITY = {
    "isValid": True,
    "quality": {"acceptable": True, "score": 100.0, "interpretation": "Excellent", "metrics": {
        "sharpness": {"value": 0.8816, **_METRIC}, "exposure": {"value": 63.8, **_METRIC},
        "noise": {"value": 0.592, **_METRIC}, "resolution": {"value": 683.0, **_METRIC},
        "colorCast": {"value": 0.0, **_METRIC}, "framing": {"value": 1.0, **_METRIC}}},
    "domain": {"isDermatological": True, "additionalData": {"aiConfidence": _entry(
        "aiConfidence", "AI model confidence in the image being dermatological", 98.5)}},
    "modality": {"value": "Dermoscopic", "additionalData": {
        "aiConfidenceClinical": _entry("aiConfidenceClinical",
                                       "AI model confidence in identifying the image's modality as clinical", 0.0),
        "aiConfidenceDermoscopic": _entry("aiConfidenceDermoscopic",
                                          "AI model confidence in identifying the image's modality as dermoscopic",
                                          100.0)}},
}
_ENVELOPE = {"resourceType": "DiagnosticReport", "identifier": {"use": "official",
                                                                "value": "f426f15d-fcea-4bd0-942e-7528bf163c5d"},
             "status": "preliminary", "issued": "2026-01-29T13:16:38.666795+00:00", "analysisDuration": 0.49841}

DIAGNOSIS_EXAMPLE = {
    **_ENVELOPE,
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "systemDisplay": "HL7 FHIR",
                              "code": "IMG", "display": "Diagnostic Imaging"}], "text": "Diagnostic imaging"}],
    "code": {"coding": [{"system": "http://loinc.org/",
                         "systemDisplay": "Logical Observation Identifiers Names and Codes (LOINC)",
                         "code": "100063-7", "display": "Primary skin concern"}], "text": "Skin condition analysis"},
    "performanceIndicator": {"sensitivity": 91.35, "specificity": 84.0, "entropy": 2.29},
    "clinicalIndicator": _CLINICAL,
    "conclusion": [{"code": _NAEVUS, "probability": 99.34}],
    "imagingAnalysis": [{
        "mediaValidity": _MEDIA_VALIDITY,
        "performanceIndicator": {"entropy": 2.29},
        "clinicalIndicator": _CLINICAL,
        "conclusion": [{"code": _NAEVUS, "probability": 99.34, "explainability": {"heatMap": _heat_map()}}],
    }],
    "device": {"models": _MODELS},
}


class DiagnosticReport(_Envelope):
    """The diagnosis-support report: a ranked ICD-11 differential over one or more images of one concern."""

    model_config = ConfigDict(json_schema_extra={"examples": [DIAGNOSIS_EXAMPLE]})

    category: list[CodeableConcept] = Field(description="Kind of report: diagnostic imaging (HL7 v2-0074 `IMG`); "
                                                        "static.")
    code: CodeableConcept = Field(description="What the report is about: LOINC 100063-7 `Primary skin concern`; "
                                              "static.")
    performanceIndicator: PerformanceIndicator = Field(description="Model performance and uncertainty for the "
                                                                   "aggregate ranking.")
    clinicalIndicator: ClinicalIndicator = Field(description="Risk flags of the aggregate ranking.")
    conclusion: list[Conclusion] = Field(description="Every catalogue condition by descending probability, the mean "
                                                     "over the valid images; empty when no image is valid.")
    imagingAnalysis: list[ImagingAnalysis] = Field(description="One entry per input image, in request order.")


# --- the severity report ---
class ScoreInterpretation(_Model):
    category: str = Field(description="The score's band from the literature (e.g. `None`, `Mild`, `Moderate`, "
                                      "`Severe`; a questionnaire's own wording, e.g. `Small effect`).")
    intensity: int = Field(ge=0, le=3, description="Intensity of the band: 0 none, 1 low, 2 moderate, 3 high.")


class ScoreAdditionalData(_Model):
    globalScoreContribution: AdditionalDataEntry = Field(
        description="This body site's contribution to the whole-body score (the local score weighted by the site's "
                    "region), in score points.")


class Score(_Model):
    value: Number = Field(description="The score, on the system's own scale (integers for whole-number scales, "
                                      "PASI/EASI/SCORAD/SALT to one decimal, VASI to two).")
    interpretation: ScoreInterpretation = Field(description="The score's band.")
    additionalData: ScoreAdditionalData | None = Field(
        None, description="The site's share of the whole-body score; absent when the inputs cannot give one (VASI "
                          "without hand units).")


class ItemAdditionalData(_Model):
    aiConfidence: AdditionalDataEntry | None = Field(
        None, description="Measured reliability of the AI estimate of the item, in percent (0-100); absent on items "
                          "the client supplied.")
    whealsCount: AdditionalDataEntry | None = Field(None, description="Number of wheals (hives) found in the image.")
    acneDensity: AdditionalDataEntry | None = Field(
        None, description="Share of the skin in the photo covered by the counted acne lesions, in percent, with its "
                          "reading (`Very low` to `Very high`).")
    inflammatoryLesionCount: AdditionalDataEntry | None = Field(
        None, description="Number of inflammatory lesions found in the image.")
    presenceProbability: AdditionalDataEntry | None = Field(
        None, description="Probability that the finding is present in the wound, in percent (0-100).")
    surfaceAreaOverBsa: AdditionalDataEntry | None = Field(
        None, description="Affected surface as a percentage of the whole body surface.")


class SeverityItem(_Model):
    """One input of the scoring system: a sign grade, a count, a percentage or an answer."""

    code: CodeableConcept = Field(description="The item; `coding[0].code` is its key in the system's questionnaire.")
    value: Number = Field(description="The item's value in the range the questionnaire defines (zone percentages "
                                      "as the area score 0-6).")
    interpretation: str | None = Field(
        None, description="A human reading of the value (e.g. `Moderate (20-50)`, `60 %`); absent on automatic "
                          "reports for typed-in percentages and scales and for AI items without labels.")
    additionalData: ItemAdditionalData | None = Field(None, description="Confidence and measurements behind the "
                                                                        "value; absent when there are none.")


class BoundingBox(_Model):
    """A box in the input image's pixels: 1 <= x1 < x2 <= width, 1 <= y1 < y2 <= height."""

    x1: int = Field(description="Left edge, in pixels (at least 1).")
    y1: int = Field(description="Top edge, in pixels (at least 1).")
    x2: int = Field(description="Right edge, in pixels (at most the image's width).")
    y2: int = Field(description="Bottom edge, in pixels (at most the image's height).")


class Detection(_Model):
    """A counted lesion (wheal, nodule, abscess, draining tunnel, acne or inflammatory lesion)."""

    confidence: float = Field(description="Confidence of the detection, in percent (0.1-100).")
    code: CodeableConcept = Field(description="The lesion class (`wheal`, `nodule`, `drainingTunnel`, `abscess`, "
                                              "`acne`, `pustule`, `inflammatoryLesion`).")
    box: BoundingBox = Field(description="Where the lesion is in the input image.")


def _mask(label: str, kind: str) -> Any:  # a Field
    return Field(None, description=f"{label} mask, {kind}.")


_RAW = "raw: pixel level 0-255 is the probability 0-1"
_BINARY = "binary: the raw mask thresholded (255 inside)"


class MediaAttachments(_Model):
    """The images of one body site, each an RGB JPEG at the input image's size; which ones depends on the scoring
    system's media kind: lesion masks, hair or depigmentation maps, wound maps, or one annotated image."""

    maskRaw: Attachment | None = _mask("Lesion", _RAW)
    maskBinary: Attachment | None = _mask("Lesion", _BINARY)
    segmentation: Attachment | None = Field(None, description="The binary lesion (or baldness, depigmentation) "
                                                              "mask drawn over the image.")
    annotation: Attachment | None = Field(None, description="The image with a box drawn around each detection.")
    hairMaskRaw: Attachment | None = _mask("Hair", _RAW)
    hairMaskBinary: Attachment | None = _mask("Hair", _BINARY)
    baldnessMaskRaw: Attachment | None = _mask("Baldness", _RAW)
    baldnessMaskBinary: Attachment | None = _mask("Baldness", _BINARY)
    skinMaskRaw: Attachment | None = _mask("Skin", _RAW)
    skinMaskBinary: Attachment | None = _mask("Skin", _BINARY)
    depigmentationMaskRaw: Attachment | None = _mask("Depigmentation", _RAW)
    depigmentationMaskBinary: Attachment | None = _mask("Depigmentation", _BINARY)
    erythemaMaskRaw: Attachment | None = _mask("Periwound erythema", _RAW)
    erythemaMaskBinary: Attachment | None = _mask("Periwound erythema", _BINARY)
    woundMaskRaw: Attachment | None = _mask("Wound", _RAW)
    woundMaskBinary: Attachment | None = _mask("Wound", _BINARY)
    angiogenesisAndGranulatedTissueMaskRaw: Attachment | None = _mask("Angiogenesis and granulated tissue", _RAW)
    angiogenesisAndGranulatedTissueMaskBinary: Attachment | None = _mask("Angiogenesis and granulated tissue",
                                                                            _BINARY)
    biofilmAndSloughMaskRaw: Attachment | None = _mask("Biofilm and slough", _RAW)
    biofilmAndSloughMaskBinary: Attachment | None = _mask("Biofilm and slough", _BINARY)
    necrosisMaskRaw: Attachment | None = _mask("Necrosis", _RAW)
    necrosisMaskBinary: Attachment | None = _mask("Necrosis", _BINARY)
    macerationMaskRaw: Attachment | None = _mask("Maceration", _RAW)
    macerationMaskBinary: Attachment | None = _mask("Maceration", _BINARY)
    orthopedicMaskRaw: Attachment | None = _mask("Orthopedic material", _RAW)
    orthopedicMaskBinary: Attachment | None = _mask("Orthopedic material", _BINARY)
    boneCartilageOrTendonMaskRaw: Attachment | None = _mask("Bone, cartilage or tendon", _RAW)
    boneCartilageOrTendonMaskBinary: Attachment | None = _mask("Bone, cartilage or tendon", _BINARY)


class SeverityMedia(_Model):
    attachment: MediaAttachments | None = Field(None, description="Images for visualisation, by key; not for "
                                                                  "clinical decisions on their own.")
    detection: list[Detection] | None = Field(None, description="The counted lesions, for count-based systems; "
                                                                "absent when none was found.")


class SeverityEntry(_Model):
    """The requested system's result for one body site or one questionnaire."""

    score: Score = Field(description="The score and its band.")
    item: dict[str, SeverityItem] | None = Field(
        description="The items behind the score, by item code (GET /questionnaires lists them); null for systems "
                    "that report the score only (ASALT, AVASI).")
    media: SeverityMedia | None = Field(None, description="Images and detections of an automatic assessment; "
                                                          "absent when the system attaches none (questionnaires, "
                                                          "AGPPGA).")


class BodySiteEntry(SeverityEntry):
    """One body site of a whole-body assessment."""

    code: str = Field(description="The body site code (GET /body-sites).")
    mediaValidity: MediaValidity | None = Field(description="Whether this site's image could be analysed; null "
                                                            "when the site had no image.")


class GlobalSeverityEntry(_Model):
    """The requested system's whole-body result: the sites combined with the system's regional weights."""

    score: Score = Field(description="The whole-body score and its band.")
    bodySite: list[BodySiteEntry] = Field(description="Each body site's own result, in request order.")


SystemResult = SeverityEntry | GlobalSeverityEntry | None


def _system(name: str) -> Any:
    return Field(None, description=f"{name}: the result when this system was requested, else null.")


class PatientEvolution(_Model):
    """A key for every scoring system dermq supports: null except the one requested."""

    apasi: SystemResult = _system("Automatic PASI (psoriasis)")
    aeasi: SystemResult = _system("Automatic EASI (eczema)")
    ascorad: SystemResult = _system("Automatic SCORAD (atopic dermatitis)")
    auas: SystemResult = _system("Automatic UAS (urticaria)")
    aihs4: SystemResult = _system("Automatic IHS4 (hidradenitis suppurativa)")
    aladin: SystemResult = _system("Automatic acne lesion count")
    agppga: SystemResult = _system("Automatic GPPGA (generalised pustular psoriasis)")
    asalt: SystemResult = _system("Automatic SALT (alopecia)")
    avasi: SystemResult = _system("Automatic VASI (vitiligo)")
    awosi: SystemResult = _system("Automatic wound severity index")
    nsil: SystemResult = _system("Non-specific inflammatory lesions")
    pasi: SystemResult = _system("PASI questionnaire")
    easi: SystemResult = _system("EASI questionnaire")
    scorad: SystemResult = _system("SCORAD questionnaire")
    uas: SystemResult = _system("UAS questionnaire")
    uas7: SystemResult = _system("UAS7 questionnaire")
    ihs4: SystemResult = _system("IHS4 questionnaire")
    gags: SystemResult = _system("GAGS questionnaire (acne)")
    dlqi: SystemResult = _system("DLQI questionnaire (quality of life)")
    pga: SystemResult = _system("PGA questionnaire (psoriasis)")
    pure4: SystemResult = _system("PURE-4 questionnaire (psoriatic arthritis screening)")
    sevenPc: SystemResult = _system("7-point checklist (pigmented lesions)")
    uct: SystemResult = _system("UCT questionnaire (urticaria control)")
    salt: SystemResult = _system("SALT questionnaire (alopecia)")
    resvech: SystemResult = _system("RESVECH questionnaire (chronic wounds)")
    scovid: SystemResult = _system("COVID-19 skin manifestation questionnaire")


class KnownCondition(_Model):
    conclusion: CodeableConcept = Field(description="The condition scored: a catalogue condition coded in ICD-11, or "
                                                    "the client's own text (no coding) for systems that score any "
                                                    "finding.")


SEVERITY_EXAMPLE = {
    **_ENVELOPE,
    "mediaValidity": _MEDIA_VALIDITY,
    "patientEvolution": {"apasi": {
        "score": {"value": 1.6, "interpretation": {"category": "Mild", "intensity": 1}, "additionalData": {
            "globalScoreContribution": _entry("globalScoreContribution",
                                              "Contribution of the body zone score to the full-body score", 0.32)}},
        "item": {"erythema": {"code": _local_code("erythema", "Erythema"), "value": 2,
                              "interpretation": "Moderate", "additionalData": {"aiConfidence": _entry(
                                  "aiConfidence", "Confidence of the AI model on prediction", 95.4)}}},
        "media": {"attachment": {"maskRaw": {**_heat_map(683, 1024), "title": "Lesion mask raw"}}},
    }},
    "knownCondition": {"conclusion": {"coding": [{"system": "https://icd.who.int/browse/2025-01/mms/en",
                                                  "systemDisplay": "ICD-11", "code": "EA90", "display": "Psoriasis",
                                                  "version": "2025-01"}], "text": "Psoriasis"}},
    "device": {"models": _MODELS},
}


class SeverityReport(_Envelope):
    """The severity report of all three severity endpoints: one body site (automatic/local), several combined
    (automatic/global) or a clinician's questionnaire (manual)."""

    model_config = ConfigDict(json_schema_extra={"examples": [SEVERITY_EXAMPLE]})

    mediaValidity: MediaValidity | None = Field(
        None, description="Whether the image could be analysed; automatic/local only (a whole-body report gives it "
                          "per site, a questionnaire's photo is not analysed).")
    patientEvolution: PatientEvolution = Field(description="The result, under the requested system's code.")
    knownCondition: KnownCondition | None = Field(None, description="The condition the request named; absent when "
                                                                    "a questionnaire named none.")
