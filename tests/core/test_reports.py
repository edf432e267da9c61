"""The report models against real reports: every report the in-process pipelines build validates, and dumps
back to the very same JSON (the models neither drop nor invent a field, nor turn an integer into a float)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import BaseModel, ValidationError

from core.jobs import SeveritySpec
from core.reports import (
    DIAGNOSIS_EXAMPLE,
    SEVERITY_EXAMPLE,
    DiagnosticReport,
    PatientEvolution,
    SeverityReport,
)
from pipeline.catalogue import load_catalogue
from pipeline.classify import Classifier
from pipeline.diagnosis import DiagnosisPipeline, ImageInput
from pipeline.gate import GateProbs
from pipeline.models.bundle import SHIPPED_BUNDLES, ModelBundle, load_bundle
from pipeline.quality import QualityConfig
from pipeline.segmentation import ClassicalSegmenter
from pipeline.severity.assessment import SeverityPipeline
from pipeline.severity.systems import SYSTEMS, ScoringSystem
from training.phantoms import make_phantom
from workers.model_cache import CLASSICAL_SEGMENTER, describe_bundle

from support import CLINICAL_PHOTO, SAMPLE_IMAGES, SHARED_DATA

ROOT = Path(__file__).resolve().parents[2]
NONSKIN_PHOTO = SHARED_DATA / "nonskin" / "images" / "coral_cat.jpg"
SIDE = 320  # severity images are scored at this long side: the report's shape does not depend on the size
# Count-based systems get a phantom with lesions to count, so their reports carry detections.
COUNT_PHANTOMS = {"auas": ("EB00", 5), "aihs4": ("ED92.0", 4), "aladin": ("ED80", 8), "nsil": ("ED80", 8)}


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True)


def assert_round_trip(model: type[BaseModel], report: dict[str, Any]) -> BaseModel:
    parsed = model.model_validate(report)
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert canonical(dumped) == canonical(report)
    return parsed


def rgb(path: Path, side: int | None = None) -> np.ndarray:
    image = Image.open(path).convert("RGB")
    if side is not None:
        image.thumbnail((side, side))
    return np.asarray(image)


# --- pipelines, built as the worker builds them ---
def worker_models(bundle: ModelBundle) -> list[dict[str, Any]]:
    """``device.models`` as a worker describes its classifier and (classical) segmenter."""
    return [describe_bundle(bundle, torch.device("cpu")), {**CLASSICAL_SEGMENTER, "device": "cpu"}]


def diagnosis_pipeline(bundle: ModelBundle, classifier: Classifier) -> DiagnosisPipeline:
    return DiagnosisPipeline(load_catalogue(), bundle.manifest, preprocess=classifier.preprocess,
                             predict=lambda xs: classifier.predict(torch.stack(list(xs))),
                             quality=QualityConfig(), models=worker_models(bundle))


@pytest.fixture(scope="module")
def shipped() -> tuple[ModelBundle, Classifier]:
    bundle = load_bundle(SHIPPED_BUNDLES["classification"])
    return bundle, Classifier.from_bundle(bundle)


@pytest.fixture(scope="module")
def diagnosis(shipped: tuple[ModelBundle, Classifier]) -> DiagnosisPipeline:
    return diagnosis_pipeline(*shipped)


@pytest.fixture(scope="module")
def severity(shipped: tuple[ModelBundle, Classifier]) -> SeverityPipeline:
    bundle, classifier = shipped

    def gate(image: np.ndarray) -> GateProbs | None:  # the learned image gate, as the worker routes it
        return GateProbs.maybe(classifier.predict(torch.stack([classifier.preprocess(image)]))[0].gate)

    return SeverityPipeline(ClassicalSegmenter(), quality=QualityConfig(), models=worker_models(bundle), gate=gate)


# --- diagnosis ---
def blurred() -> np.ndarray:
    return cv2.GaussianBlur(rgb(SAMPLE_IMAGES[2]), (0, 0), 12)


def dark() -> np.ndarray:
    return (rgb(SAMPLE_IMAGES[1]) * 0.08).astype(np.uint8)


def optional_photo(path: Path) -> np.ndarray:
    if not path.is_file():
        pytest.skip(f"needs {path}")
    return rgb(path)


DIAGNOSIS_CASES = {
    "dermoscopic": lambda: [rgb(SAMPLE_IMAGES[0])],
    "clinical": lambda: [optional_photo(CLINICAL_PHOTO)],  # carries the modality warning
    "non-skin": lambda: [optional_photo(NONSKIN_PHOTO)],
    "dark-and-valid": lambda: [dark(), rgb(SAMPLE_IMAGES[0])],  # the aggregate counts the valid one only
}


@pytest.mark.parametrize("case", DIAGNOSIS_CASES)
def test_diagnosis_report_round_trips(case: str, diagnosis: DiagnosisPipeline) -> None:
    report = diagnosis.run("r", [ImageInput(image) for image in DIAGNOSIS_CASES[case]()])
    parsed = assert_round_trip(DiagnosticReport, report)
    assert isinstance(parsed, DiagnosticReport) and len(parsed.imagingAnalysis) == len(report["imagingAnalysis"])


def test_invalid_images_give_the_null_aggregate(diagnosis: DiagnosisPipeline) -> None:
    report = diagnosis.run("r", [ImageInput(blurred())])
    parsed = assert_round_trip(DiagnosticReport, report)
    assert not parsed.imagingAnalysis[0].mediaValidity.isValid and parsed.conclusion == []
    assert parsed.performanceIndicator.entropy is None and parsed.clinicalIndicator.malignancy is None


# --- severity: every system in every mode it offers ---
def answers(system: ScoringSystem) -> dict[str, float]:
    """A valid answer to every clinical input (optional ones included)."""
    return {i.code: min(i.maximum, i.minimum + 1) for i in system.clinician_items()}


def sites_of(system: ScoringSystem) -> list[str]:
    return sorted(system.allowed_sites) if system.allowed_sites else ["armLeft", "legLeft"]


def condition_of(system: ScoringSystem) -> dict[str, str]:
    return {"code": system.pathologies[0]} if system.pathologies else {"text": "Non-specific finding"}


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    out = {"sample": rgb(SAMPLE_IMAGES[1], SIDE), "other": rgb(SAMPLE_IMAGES[2], SIDE)}
    for code, (label, count) in COUNT_PHANTOMS.items():
        out[code] = make_phantom(3, label=label, size=SIDE, count=count, modality="Clinical").rgb
    return out


CASES = [(code, mode) for code, system in SYSTEMS.items() for mode in system.modes]


@pytest.mark.parametrize(("code", "mode"), CASES, ids=[f"{c}-{m}" for c, m in CASES])
def test_severity_report_round_trips(code: str, mode: str, severity: SeverityPipeline,
                                     photos: dict[str, np.ndarray]) -> None:
    system = SYSTEMS[code]
    given, sites = answers(system), sites_of(system)
    image = photos.get(code, photos["sample"])
    if mode == "global":
        spec_sites = [{"bodySite": sites[0], "items": given, "image": 0},
                      {"bodySite": sites[1], "items": given, "image": 1}]
        images = [image, photos["other"]]
    else:
        spec_sites = [{"bodySite": sites[0], "items": given, "image": 0 if system.automatic else None}]
        images = [image] if system.automatic else []
    spec = {"system": code, "mode": mode, "condition": condition_of(system), "sites": spec_sites}
    report = severity.run("r", SeveritySpec.model_validate(spec), [ImageInput(i) for i in images])
    parsed = assert_round_trip(SeverityReport, report)
    assert isinstance(parsed, SeverityReport) and getattr(parsed.patientEvolution, code) is not None
    if code in COUNT_PHANTOMS:
        entry = report["patientEvolution"][code]
        first = entry["bodySite"][0] if mode == "global" else entry
        assert first["media"]["detection"], "the phantom's lesions are found, so detections are validated too"


def test_severity_variants_round_trip(severity: SeverityPipeline, photos: dict[str, np.ndarray]) -> None:
    """What the per-system cases leave out: a failed image (warnings), AVASI without hand units (no
    contribution), a questionnaire with a photo and without a condition, and the AI items given by the client."""
    apasi = SYSTEMS["apasi"]
    own = {i.code: i.minimum for i in apasi.ai_items()}
    dark_photo = (photos["sample"] * 0.08).astype(np.uint8)
    runs = [
        ({"system": "apasi", "mode": "local", "condition": condition_of(apasi),
          "sites": [{"bodySite": "armLeft", "items": answers(apasi), "image": 0}]}, [dark_photo]),
        ({"system": "avasi", "mode": "local", "condition": condition_of(SYSTEMS["avasi"]),
          "sites": [{"bodySite": "armLeft", "items": {}, "image": 0}]}, [photos["sample"]]),
        ({"system": "dlqi", "mode": "manual", "condition": None,
          "sites": [{"bodySite": "armLeft", "items": answers(SYSTEMS["dlqi"]), "image": 0}]}, [photos["sample"]]),
        ({"system": "apasi", "mode": "local", "condition": condition_of(apasi),
          "sites": [{"bodySite": "armLeft", "items": {**answers(apasi), **own}, "image": 0}]}, [photos["sample"]]),
    ]
    reports = [severity.run("r", SeveritySpec.model_validate(spec), [ImageInput(i) for i in images])
               for spec, images in runs]
    parsed = [assert_round_trip(SeverityReport, report) for report in reports]
    assert parsed[0].warnings and parsed[0].mediaValidity is not None and not parsed[0].mediaValidity.isValid
    assert parsed[1].patientEvolution.avasi.score.additionalData is None
    assert parsed[2].knownCondition is None and parsed[2].mediaValidity is None


def test_patient_evolution_has_a_field_for_every_scoring_system() -> None:
    assert set(PatientEvolution.model_fields) == set(SYSTEMS)


# --- the contract itself ---
def test_examples_are_valid_reports() -> None:
    assert_round_trip(DiagnosticReport, DIAGNOSIS_EXAMPLE)
    assert_round_trip(SeverityReport, SEVERITY_EXAMPLE)
    assert DiagnosticReport.model_json_schema()["examples"] == [DIAGNOSIS_EXAMPLE]
    assert SeverityReport.model_json_schema()["examples"] == [SEVERITY_EXAMPLE]


@pytest.mark.parametrize("model", [DiagnosticReport, SeverityReport])
def test_every_field_is_described(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    definitions = {**schema["$defs"], model.__name__: schema}
    undescribed = [f"{name}.{field}" for name, d in definitions.items()
                   for field, prop in d.get("properties", {}).items() if not prop.get("description")]
    assert undescribed == []


def _edited(report: dict[str, Any], path: list[str | int], value: Any = ..., *, delete: bool = False) -> dict:
    out = json.loads(json.dumps(report))
    node = out
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


MEDIA = ["imagingAnalysis", 0, "mediaValidity"]
DRIFTS = {
    "unknown top-level field": (DIAGNOSIS_EXAMPLE, ["score"], 1.0),
    "unknown nested field": (DIAGNOSIS_EXAMPLE, [*MEDIA, "quality", "metrics", "sharpness", "unit"], "px"),
    "unknown quality check": (DIAGNOSIS_EXAMPLE, [*MEDIA, "quality", "metrics", "contrast"],
                              {"value": 1.0, "acceptable": True, "hint": ""}),
    "probability not a number": (DIAGNOSIS_EXAMPLE, ["conclusion", 0, "probability"], "high"),
    "unknown modality": (DIAGNOSIS_EXAMPLE, [*MEDIA, "modality", "value"], "Histology"),
    "wrong resource type": (DIAGNOSIS_EXAMPLE, ["resourceType"], "Observation"),
    "unknown scoring system": (SEVERITY_EXAMPLE, ["patientEvolution", "apasi2"], None),
    "intensity out of range": (SEVERITY_EXAMPLE, ["patientEvolution", "apasi", "score", "interpretation",
                                                  "intensity"], 7),
    "unknown attachment": (SEVERITY_EXAMPLE, ["patientEvolution", "apasi", "media", "attachment", "heatMap"],
                           SEVERITY_EXAMPLE["patientEvolution"]["apasi"]["media"]["attachment"]["maskRaw"]),
    "unknown item extra": (SEVERITY_EXAMPLE, ["patientEvolution", "apasi", "item", "erythema", "additionalData",
                                              "colour"], None),
}


@pytest.mark.parametrize("drift", DRIFTS)
def test_drift_is_rejected(drift: str) -> None:
    example, path, value = DRIFTS[drift]
    model = DiagnosticReport if example is DIAGNOSIS_EXAMPLE else SeverityReport
    with pytest.raises(ValidationError):
        model.model_validate(_edited(example, path, value))


def test_a_key_the_report_always_carries_is_required() -> None:
    # Clients read a per-image conclusion's explainability unconditionally: null is allowed, absent is not.
    with pytest.raises(ValidationError):
        DiagnosticReport.model_validate(_edited(DIAGNOSIS_EXAMPLE, ["imagingAnalysis", 0, "conclusion", 0,
                                                                    "explainability"], delete=True))
    with pytest.raises(ValidationError):
        SeverityReport.model_validate(_edited(SEVERITY_EXAMPLE, ["patientEvolution", "apasi", "item"], delete=True))


def test_models_serve_as_response_models() -> None:
    from fastapi import FastAPI

    app = FastAPI()
    app.get("/diagnosis", response_model=DiagnosticReport)(lambda: DIAGNOSIS_EXAMPLE)
    app.get("/severity", response_model=SeverityReport)(lambda: SEVERITY_EXAMPLE)
    schemas = app.openapi()["components"]["schemas"]
    assert {"DiagnosticReport", "SeverityReport", "MediaValidity", "Attachment", "PatientEvolution"} <= set(schemas)
    assert "percent" in schemas["Conclusion"]["properties"]["probability"]["description"]


def test_core_imports_only_pydantic_and_the_standard_library() -> None:
    code = ("import sys, core.reports; print(sorted({m.split('.')[0] for m in sys.modules}))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                           check=True).stdout.replace("'", '"')))
    forbidden = {"torch", "cv2", "numpy", "fastapi", "starlette", "redis", "celery", "api", "workers", "pipeline",
                 "dermq", "training"}
    assert loaded & forbidden == set()
