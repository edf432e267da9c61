"""Diagnosis support: quality → classification → explainability → FHIR DiagnosticReport.

The model call is injected (`predict`), so the worker can route it through its
dynamic batcher while this module stays free of any job-system code.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import numpy as np

from pipeline.catalogue import Catalogue
from pipeline.explain import cam_to_heatmap, heatmap_base
from pipeline.gate import GateProbs
from pipeline.models.bundle import BundleManifest
from pipeline.quality import QualityConfig, QualityViews, assess_media_validity

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total); may raise to abort

REPORT_CATEGORY = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                "systemDisplay": "HL7 FHIR",
                "code": "IMG",
                "display": "Diagnostic Imaging",
            }
        ],
        "text": "Diagnostic imaging",
    }
]
REPORT_CODE = {
    "coding": [
        {
            "system": "http://loinc.org/",
            "systemDisplay": "Logical Observation Identifiers Names and Codes (LOINC)",
            "code": "100063-7",
            "display": "Primary skin concern",
        }
    ],
    "text": "Skin condition analysis",
}
UNTRAINED_WARNING = (
    "The classifier runs untrained reference weights: its ranking and indicators carry no clinical "
    "meaning. Configure a trained model bundle (DERMQ_MODEL_DIR or DERMQ_MODEL_BUNDLE)."
)

MODALITY_WARNING = (
    "{count} image(s) look like clinical photographs, but the classifier was trained on {trained} images "
    "only: its ranking for them is outside its validated scope."
)


@dataclass(frozen=True)
class ImageInput:
    rgb: np.ndarray  # upright RGB at the working resolution
    title: str | None = None
    source_shape: tuple[int, int] | None = None  # (height, width) of the original, when rgb is reduced


ImageSource = ImageInput | Callable[[], ImageInput]  # decoded, or decoded when called


def load_image(source: ImageSource) -> ImageInput:
    """The image of ``source``, decoding it now if it is a loader (the worker's are)."""
    return source() if callable(source) else source


@dataclass(frozen=True)
class _Prepared:
    """What the report needs of one image once it is decoded and sent to the model."""

    source_shape: tuple[int, int]  # (height, width) of the original
    views: QualityViews  # quality's working copy and gate-independent measures, prepared
    base: np.ndarray | None  # the image all its heat maps are drawn on (`heatmap_base`)


@dataclass
class ImageResult:
    validity: dict[str, Any]
    probs: np.ndarray  # over the catalogue
    analysis: dict[str, Any] = field(default_factory=dict)


def envelope(report_id: str, started: float) -> dict[str, Any]:
    """The FHIR fields every report starts with (SPEC §2.3)."""
    return {
        "resourceType": "DiagnosticReport",
        "identifier": {"use": "official", "value": report_id},
        "status": "preliminary",
        "issued": datetime.now(timezone.utc).isoformat(),
        "analysisDuration": round(time.perf_counter() - started, 5),
    }


def entropy_percent(probs: np.ndarray, n_classes: int) -> float:
    """Shannon entropy as a percentage of its maximum, log(n) for the n classes the model ranks."""
    p = probs[probs > 0]
    if n_classes < 2 or p.size == 0:
        return 0.0
    h = float(-(p * np.log(p)).sum())
    return float(min(100.0, max(0.0, 100.0 * h / math.log(n_classes))))


def clinical_indicators(catalogue: Catalogue, probs: np.ndarray) -> dict[str, float]:
    """Percent sums of class probabilities through the catalogue's flags."""

    def pct(flag: str) -> float:
        return float(100.0 * probs[catalogue.flag_mask(flag)].sum())

    return {
        "hasCondition": float(100.0 - pct("healthy")),
        "pigmentedLesion": pct("pigmented"),
        "malignancy": pct("malignant"),
        "urgentReferral": pct("urgent"),
        "highPriorityReferral": pct("high_priority"),
    }


NULL_CLINICAL = dict.fromkeys(["hasCondition", "pigmentedLesion", "malignancy", "urgentReferral", "highPriorityReferral"])


class DiagnosisPipeline:
    def __init__(
        self,
        catalogue: Catalogue,
        manifest: BundleManifest,
        *,
        preprocess: Callable[[np.ndarray], Any],
        predict: Callable[[Sequence[Any]], Sequence[Any]],
        quality: QualityConfig,
        submit: Callable[[Sequence[Any]], Sequence[Future]] | None = None,
        heatmap_top_k: int = 5,
        heatmap_max_side: int = 384,
        models: list[dict[str, Any]] | None = None,
    ):
        self.catalogue = catalogue
        self.manifest = manifest
        self.preprocess = preprocess
        self.predict = predict
        # Optional: `predict` that returns at once with futures (a batcher on its own thread), so the
        # gate-independent quality work and the heat-map bases are done while the model runs.
        self.submit = submit
        self.quality = quality
        self.heatmap_top_k = heatmap_top_k
        self.heatmap_max_side = heatmap_max_side
        # The analysis copy: the image shrunk once (never enlarged) to the heat maps' side, and to at
        # least twice the model's input so the squash to it stays an area average of many pixels.
        self.analysis_side = max(heatmap_max_side, 2 * manifest.input_size)
        self.models = models or []
        # Model class i lands on catalogue row index_map[i]; conditions the model lacks stay at 0.
        self.index_map = np.array([catalogue.index(code) for code in manifest.classes], dtype=np.int64)
        self.model_index = {int(row): i for i, row in enumerate(self.index_map)}

    def run(self, report_id: str, images: Sequence[ImageSource], progress: ProgressFn | None = None) -> dict[str, Any]:
        """The report for ``images``: decoded inputs, or callables that decode one when its turn comes
        (the worker's), so only one image of a job is ever held at its working resolution."""
        started = time.perf_counter()
        step = progress or (lambda stage, done, total: None)
        total = len(images)

        # Per image: decode, squash its analysis copy to the model's input and send it to the model
        # (with `submit`, a batcher on its own thread: the next image is decoded while the model runs),
        # then what needs no model output (quality views, the heat maps' base). The learned image gate
        # reads the forward pass's pooled features, so the quality verdicts wait for it.
        prepared: list[_Prepared] = []
        inputs, pending = [], []
        for i, source in enumerate(images):
            step("decode", i, total)
            image = load_image(source)
            step("preprocess", i, total)
            copy = heatmap_base(image.rgb, self.analysis_side)
            inputs.append(self.preprocess(copy))
            if self.submit is not None:
                pending += self.submit(inputs[-1:])
            step("classification", i, total)
            prepared.append(_Prepared(
                source_shape=image.source_shape or image.rgb.shape[:2],
                views=QualityViews(image.rgb, self.quality).prepare(),
                base=heatmap_base(copy, self.heatmap_max_side) if self.heatmap_top_k else None,
            ))
        outputs = [future.result() for future in pending] if self.submit is not None else self.predict(inputs)
        step("classification", total, total)

        step("quality", 0, total)
        validity = []
        for i, (image, out) in enumerate(zip(prepared, outputs)):
            gate = GateProbs.maybe(getattr(out, "gate", None))
            validity.append(assess_media_validity(image.views.rgb, self.quality, gate, views=image.views,
                                                  source_shape=image.source_shape))
            step("quality", i + 1, total)

        results = []
        step("explainability", 0, total)
        for i, (image, valid, out) in enumerate(zip(prepared, validity, outputs)):
            results.append(self._image_result(image, valid, out))
            step("explainability", i + 1, total)

        step("report", 0, 1)
        aggregate = self._aggregate(results)
        report = envelope(report_id, started)  # last, so analysisDuration covers the whole pipeline
        report.update(category=REPORT_CATEGORY, code=REPORT_CODE, **aggregate)
        report["imagingAnalysis"] = [r.analysis for r in results]
        report["device"] = {"models": self.models}
        warnings = self._warnings(validity)
        if warnings:
            report["warnings"] = warnings
        return report

    def _warnings(self, validity: Sequence[dict[str, Any]]) -> list[str]:
        warnings = [] if self.manifest.trained else [UNTRAINED_WARNING]
        trained_on = self.manifest.training_data.get("modality")
        if trained_on:
            # The gate's modality names are capitalised ("Clinical", "Dermoscopic").
            outside = sum(1 for v in validity if v["modality"]["value"] not in ("None", trained_on.capitalize()))
            if outside:
                warnings.append(MODALITY_WARNING.format(count=outside, trained=trained_on))
        return warnings

    # --- per image ---
    def _catalogue_probs(self, model_probs: np.ndarray) -> np.ndarray:
        probs = np.zeros(len(self.catalogue), dtype=np.float64)
        probs[self.index_map] = model_probs
        return probs

    def _image_result(self, image: _Prepared, validity: dict[str, Any], out: Any) -> ImageResult:
        probs = self._catalogue_probs(np.asarray(out.probs, dtype=np.float64))
        order = self._ranking(probs)
        conclusion = []
        for rank, row in enumerate(order):
            item = self._conclusion_item(row, probs[row])
            # Every per-image conclusion carries the key (clients read it unconditionally); a heat
            # map is drawn for the top ranks the model covers, null beyond.
            item["explainability"] = None
            if rank < self.heatmap_top_k and row in self.model_index:
                heatmap = cam_to_heatmap(image.base, out.cams[self.model_index[row]], base=image.base)
                item["explainability"] = {"heatMap": heatmap}
            conclusion.append(item)
        analysis = {
            "mediaValidity": validity,
            "performanceIndicator": {"entropy": entropy_percent(probs, len(self.index_map))},
            "clinicalIndicator": clinical_indicators(self.catalogue, probs),
            "conclusion": conclusion,
        }
        return ImageResult(validity=validity, probs=probs, analysis=analysis)

    def _ranking(self, probs: np.ndarray) -> np.ndarray:
        # Stable sort keeps catalogue order among ties (e.g. all the zero-probability conditions).
        return np.argsort(-probs, kind="stable")

    def _conclusion_item(self, row: int, prob: float) -> dict[str, Any]:
        return {"code": self.catalogue.conditions[row].concept(), "probability": float(100.0 * prob)}

    # --- aggregate over valid images ---
    def _aggregate(self, results: list[ImageResult]) -> dict[str, Any]:
        valid = [r.probs for r in results if r.validity.get("isValid")]
        if not valid:
            return {
                "performanceIndicator": {"sensitivity": None, "specificity": None, "entropy": None},
                "clinicalIndicator": dict(NULL_CLINICAL),
                "conclusion": [],
            }
        # Mean of per-image distributions: each valid view of the lesion counts equally.
        probs = np.mean(valid, axis=0)
        order = self._ranking(probs)
        top = self.catalogue.conditions[order[0]].code
        metrics = self.manifest.metrics.get(top)
        return {
            "performanceIndicator": {
                "sensitivity": metrics.sensitivity if metrics else None,
                "specificity": metrics.specificity if metrics else None,
                "entropy": entropy_percent(probs, len(self.index_map)),
            },
            "clinicalIndicator": clinical_indicators(self.catalogue, probs),
            "conclusion": [self._conclusion_item(row, probs[row]) for row in order],
        }
