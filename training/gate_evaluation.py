"""How the served image gate (`mediaValidity`) does on held-out real images and degraded copies.

``dermq bench gate`` prints these figures and ``tests/training/test_gate_evaluation.py``
asserts them on a slice. The images are the *test* split of ``training.image_gate`` (never
used to fit or calibrate the head), run exactly as a worker runs them: the classifier's
forward pass gives the gate probabilities, ``assess_media_validity`` the verdict.

Degraded copies are made from test images the gate accepts as valid, one copy per defect;
each should come back not acceptable with the metric that names the defect failing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.classify import Classifier
from pipeline.gate import GateProbs
from pipeline.quality import QualityConfig, assess_media_validity
from training.data import read_rgb
from training.image_gate import (
    CLINICAL,
    DERMOSCOPIC,
    OTHER,
    GateRecord,
    ImageGateConfig,
    _dermoscopic_records,
    degrade,
    far_view,
    load_gate_records,
    split_gate_records,
)

__all__ = ["FarResult", "GateReport", "RIGHT_METRIC", "evaluate_gate", "held_out_sets"]

# The metric that must fail for each defect (JPEG artefacts have no metric of their own:
# only "not acceptable" is counted for them).
RIGHT_METRIC: dict[str, str | None] = {
    "gaussian_blur": "sharpness",
    "motion_blur": "sharpness",
    "dark": "exposure",
    "overexposed": "exposure",
    "noise": "noise",
    "jpeg": None,
    "downscale": "resolution",
}
FAR_SCALE = 0.3  # the photo takes 30 % of each side: a third of the frame's width, or less
TARGET_DEGRADATIONS = ("gaussian_blur", "motion_blur", "dark", "overexposed", "noise")


def held_out_sets(data: Path, seed: int = 0) -> dict[str, list[GateRecord]]:
    """The gate's test split by kind: dermoscopic, clinical, non-skin (people separately too)."""
    config = ImageGateConfig(data=data, bundle=data, seed=seed)
    test = split_gate_records(load_gate_records(data), config)["test"]
    derm = _dermoscopic_records(data, config)["test"]
    return {
        "dermoscopic": derm,
        "clinical": [r for r in test if r.label == CLINICAL],
        "nonskin": [r for r in test if r.label == OTHER],
    }


def _shares(images: int, **counts: int) -> dict[str, float]:
    """The image count and each count as a share of it."""
    return {"images": float(images)} | {k: v / max(images, 1) for k, v in counts.items()}


@dataclass
class SetResult:
    images: int = 0
    dermatological: int = 0
    modality_right: int = 0
    valid: int = 0
    valid_and_right: int = 0
    people: int = 0
    people_refused: int = 0
    failing: dict[str, int] = field(default_factory=dict)

    def rates(self) -> dict[str, float]:
        out = _shares(self.images, dermatological=self.dermatological, modality_right=self.modality_right,
                      valid=self.valid, valid_and_modality_right=self.valid_and_right)
        if self.people:
            out["people_not_dermatological"] = self.people_refused / self.people
        return out


@dataclass
class DegradedResult:
    images: int = 0
    not_acceptable: int = 0
    right_metric: int = 0

    def rates(self) -> dict[str, float]:
        return _shares(self.images, not_acceptable=self.not_acceptable, right_metric=self.right_metric)


@dataclass
class FarResult:
    """Clinical photos shrunk onto a plain background: still skin, but `framing` must fail."""

    images: int = 0
    dermatological: int = 0
    framing_failed: int = 0

    def rates(self) -> dict[str, float]:
        return _shares(self.images, dermatological=self.dermatological, framing_failed=self.framing_failed)


@dataclass
class GateReport:
    sets: dict[str, SetResult]
    degraded: dict[str, DegradedResult]
    quality_ms: float  # mean per image, the classical metrics
    head_ms: float  # mean per image, the gate head on pooled features
    far: FarResult = field(default_factory=FarResult)

    def as_dict(self) -> dict[str, Any]:
        return {"sets": {k: v.rates() | {"failing": v.failing} for k, v in self.sets.items()},
                "degraded": {k: v.rates() for k, v in self.degraded.items()},
                "far": self.far.rates(), "quality_ms": self.quality_ms, "head_ms": self.head_ms}


def _gate_probs(classifier: Classifier, images: Sequence[np.ndarray], batch_size: int = 32) -> list[GateProbs | None]:
    return [GateProbs.maybe(o.gate) for o in classifier.predict_images(images, batch_size=batch_size)]


def _failing(mv: dict[str, Any]) -> set[str]:
    return {k for k, m in mv["quality"]["metrics"].items() if not m["acceptable"]}


def _head_ms(classifier: Classifier) -> float:
    """Milliseconds per image of the gate heads alone (image gate and sharpness: matrix products and softmax)."""
    if classifier.gate_weight is None or classifier.gate_bias is None:
        return 0.0
    heads = [(classifier.gate_weight, classifier.gate_bias)]
    if classifier.sharpness_weight is not None and classifier.sharpness_bias is not None:
        heads.append((classifier.sharpness_weight, classifier.sharpness_bias))
    pooled = torch.randn(256, classifier.gate_weight.shape[1])
    start = time.perf_counter()
    for _ in range(20):
        for weight, bias in heads:
            torch.softmax(pooled @ weight.T + bias, dim=1)
    return 1000 * (time.perf_counter() - start) / (20 * 256)


def evaluate_gate(
    classifier: Classifier,
    sets: dict[str, list[GateRecord]],
    *,
    quality: QualityConfig = QualityConfig(),
    degraded_per_set: int = 60,
    seed: int = 0,
    classical: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> GateReport:
    """Score every image of ``sets``, then degraded copies of up to ``degraded_per_set`` valid ones per skin set.

    ``classical`` ignores the bundle's gate head: the figures of the classical fallback gate.
    """
    report = GateReport({}, {k: DegradedResult() for k in RIGHT_METRIC}, 0.0, 0.0 if classical else _head_ms(classifier))
    quality_s, quality_n = 0.0, 0
    rng = np.random.default_rng(seed)

    def judge(images: list[np.ndarray]) -> list[dict[str, Any]]:
        nonlocal quality_s, quality_n
        verdicts = []
        gates = [None] * len(images) if classical else _gate_probs(classifier, images)
        for rgb, gate in zip(images, gates):
            start = time.perf_counter()
            verdicts.append(assess_media_validity(rgb, quality, gate))
            quality_s += time.perf_counter() - start
            quality_n += 1
        return verdicts

    for name, records in sets.items():
        result = report.sets[name] = SetResult()
        images = [read_rgb(r.image) for r in records]
        verdicts = judge(images)
        keep: list[np.ndarray] = []
        for record, rgb, mv in zip(records, images, verdicts):
            result.images += 1
            is_derm = mv["domain"]["isDermatological"]
            expected = {DERMOSCOPIC: "Dermoscopic", CLINICAL: "Clinical", OTHER: "None"}[record.label]
            right = mv["modality"]["value"] == expected
            result.dermatological += is_derm
            result.modality_right += right
            result.valid += mv["isValid"]
            result.valid_and_right += mv["isValid"] and right
            if record.person:
                result.people += 1
                result.people_refused += not is_derm
            for metric in _failing(mv):
                result.failing[metric] = result.failing.get(metric, 0) + 1
            if record.label != OTHER and mv["isValid"] and len(keep) < degraded_per_set:
                keep.append(rgb)
        if progress:
            progress(name, len(records))
        for kind, metric in RIGHT_METRIC.items():
            copies = [degrade(rgb, kind, rng) for rgb in keep]
            for copy, mv in zip(copies, judge(copies)):
                if kind == "downscale" and min(copy.shape[:2]) >= quality.min_short_side_px:
                    continue  # still above the resolution limit: not a defect for the analysis
                d = report.degraded[kind]
                d.images += 1
                d.not_acceptable += not mv["quality"]["acceptable"]
                d.right_metric += metric is None or metric in _failing(mv)
        if name == "clinical":
            copies = [far_view(rgb, rng, scale=FAR_SCALE) for rgb in keep]
            for mv in judge(copies):
                report.far.images += 1
                report.far.dermatological += mv["domain"]["isDermatological"]
                report.far.framing_failed += "framing" in _failing(mv)
        if progress:
            progress(f"{name} degraded", len(keep) * len(RIGHT_METRIC))
    report.quality_ms = 1000 * quality_s / max(quality_n, 1)
    return report
