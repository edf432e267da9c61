from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from support import synthetic_clinical_photo
from pipeline.gate import GateProbs
from pipeline.quality import (
    MEASURED,
    UNVALIDATED_CAP,
    QualityConfig,
    assess_media_validity,
    interpret_score,
    wilson_lower_bound,
)

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "isic2017-sample" / "images"
PATHS = sorted(SAMPLE.glob("*.jpg"))
METRICS = {"sharpness", "exposure", "noise", "resolution", "colorCast", "framing"}
# What the learned gate (tests/pipeline/test_gate.py) says of a dermoscopic or a clinical photo; the
# quality metrics below are tested under it, the classical fallback gate without it.
DERMOSCOPIC = GateProbs(other=0.01, clinical=0.02, dermoscopic=0.97)
CLINICAL = GateProbs(other=0.02, clinical=0.95, dermoscopic=0.03)


def load(path: Path) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


def failing(mv: dict) -> set[str]:
    return {k for k, m in mv["quality"]["metrics"].items() if not m["acceptable"]}


def test_sample_set_is_present() -> None:
    assert len(PATHS) == 40


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_every_sample_image_is_valid_dermoscopic_and_dermatological(path: Path) -> None:
    mv = assess_media_validity(load(path), gate=DERMOSCOPIC)
    assert mv["isValid"] and mv["quality"]["acceptable"], failing(mv)
    assert mv["quality"]["interpretation"] in ("Good", "Excellent")
    assert mv["domain"]["isDermatological"]
    assert mv["modality"]["value"] == "Dermoscopic"
    assert set(mv["quality"]["metrics"]) == METRICS
    for metric in mv["quality"]["metrics"].values():
        assert set(metric) == {"value", "acceptable", "hint"} and isinstance(metric["value"], float)
        assert metric["acceptable"] is True and metric["hint"] == ""
    extra = mv["modality"]["additionalData"]
    assert extra["aiConfidenceDermoscopic"]["value"] + extra["aiConfidenceClinical"]["value"] == pytest.approx(100)


def tint(rgb: np.ndarray, gain: tuple[float, float, float], offset: tuple[float, float, float] = (0, 0, 0)) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * np.array(gain) + np.array(offset), 0, 255).astype(np.uint8)


# σ = 1.5 % of the long side: blur that survives at the working size (docs/image-gate.md gives the curve).
def blur(rgb: np.ndarray) -> np.ndarray: return cv2.GaussianBlur(rgb, (0, 0), 0.015 * max(rgb.shape[:2]))
def dark(rgb: np.ndarray) -> np.ndarray: return tint(rgb, (0.12, 0.12, 0.12))
def bright(rgb: np.ndarray) -> np.ndarray: return tint(rgb, (3, 3, 3))
def washed_out(rgb: np.ndarray) -> np.ndarray: return tint(rgb, (1, 1, 1), (180, 180, 180))
def noisy(rgb: np.ndarray) -> np.ndarray: return tint(rgb + np.random.default_rng(0).normal(0, 38, rgb.shape), (1, 1, 1))
def tiny(rgb: np.ndarray) -> np.ndarray: return cv2.resize(rgb, (80, round(80 * rgb.shape[0] / rgb.shape[1])), interpolation=cv2.INTER_AREA)
def blue_tint(rgb: np.ndarray) -> np.ndarray: return tint(rgb, (0.5, 1.0, 1.6), (0, 0, 40))
def yellow_cast(rgb: np.ndarray) -> np.ndarray: return tint(rgb, (1.0, 1.0, 0.3))


DEGRADATIONS: list[tuple[Callable[[np.ndarray], np.ndarray], str, str]] = [
    (blur, "sharpness", "blurry"),
    (dark, "exposure", "too dark"),
    (bright, "exposure", "overexposed"),
    (washed_out, "exposure", "overexposed"),
    (noisy, "noise", "grainy"),
    (tiny, "resolution", "resolution"),
    (blue_tint, "colorCast", "tinted"),
    (yellow_cast, "colorCast", "tinted"),
]
DEGRADED_PATHS = PATHS[::8]


@pytest.fixture(scope="module")
def clean_scores() -> dict[Path, float]:
    return {p: assess_media_validity(load(p), gate=DERMOSCOPIC)["quality"]["score"] for p in DEGRADED_PATHS}


@pytest.mark.parametrize("path", DEGRADED_PATHS, ids=[p.stem for p in DEGRADED_PATHS])
@pytest.mark.parametrize("degrade, check, hint", DEGRADATIONS, ids=[f"{d[1]}-{d[0].__name__}" for d in DEGRADATIONS])
def test_degraded_images_fail_the_right_check_with_its_hint(
    path: Path, degrade: Callable[[np.ndarray], np.ndarray], check: str, hint: str, clean_scores: dict[Path, float]
) -> None:
    mv = assess_media_validity(degrade(load(path)), gate=DERMOSCOPIC)
    assert not mv["isValid"] and not mv["quality"]["acceptable"]
    assert check in failing(mv)
    assert hint in mv["quality"]["metrics"][check]["hint"]
    assert mv["quality"]["score"] < clean_scores[path]
    assert mv["quality"]["score"] < 60 and mv["quality"]["interpretation"] in ("Bad", "Poor", "Fair")


@pytest.mark.parametrize("path", DEGRADED_PATHS[:3], ids=[p.stem for p in DEGRADED_PATHS[:3]])
def test_a_single_defect_does_not_trip_the_other_checks(path: Path) -> None:
    assert failing(assess_media_validity(blur(load(path)), gate=DERMOSCOPIC)) == {"sharpness"}
    assert failing(assess_media_validity(noisy(load(path)), gate=DERMOSCOPIC)) == {"noise"}


def _with_blur(gate: GateProbs, p_blurred: float) -> GateProbs:
    return GateProbs(gate.other, gate.clinical, gate.dermoscopic, blurred=p_blurred)


@pytest.mark.parametrize("path", DEGRADED_PATHS[:3], ids=[p.stem for p in DEGRADED_PATHS[:3]])
def test_the_learned_blur_cue_fails_what_it_calls_blurred(path: Path) -> None:
    config = QualityConfig()
    clean = load(path)
    mv = assess_media_validity(clean, gate=_with_blur(DERMOSCOPIC, 0.9))
    assert failing(mv) == {"sharpness"} and "blurry" in mv["quality"]["metrics"]["sharpness"]["hint"]
    assert mv["quality"]["score"] < 60
    # In doubt (between the two thresholds) the classical blur ratio decides, as without the head.
    doubt = (config.sharp_probability + config.max_blur_probability) / 2
    for image in (clean, blur(clean)):
        with_head = assess_media_validity(image, gate=_with_blur(DERMOSCOPIC, doubt))
        assert failing(with_head) == failing(assess_media_validity(image, gate=DERMOSCOPIC))


@pytest.mark.parametrize("path", DEGRADED_PATHS[:3], ids=[p.stem for p in DEGRADED_PATHS[:3]])
def test_the_learned_cue_vouches_for_a_smooth_image_the_blur_ratio_fails(path: Path) -> None:
    softened = blur(load(path))  # stands in for a naturally smooth image that the blur ratio fails
    assert "sharpness" in failing(assess_media_validity(softened, gate=DERMOSCOPIC))
    mv = assess_media_validity(softened, gate=_with_blur(DERMOSCOPIC, QualityConfig().sharp_probability / 2))
    assert mv["quality"]["metrics"]["sharpness"]["acceptable"] and mv["quality"]["metrics"]["sharpness"]["hint"] == ""
    # The reported value stays the classical measure.
    assert mv["quality"]["metrics"]["sharpness"]["value"] == \
        assess_media_validity(softened, gate=DERMOSCOPIC)["quality"]["metrics"]["sharpness"]["value"]


def test_blended_sharpness_is_continuous_and_monotone() -> None:
    from pipeline.quality import LIMIT_SUBSCORE, blend_sharpness

    c = QualityConfig()
    ps, classical = np.linspace(0, 1, 201), np.linspace(0, 1, 51)
    grid = np.array([[blend_sharpness(s, p, c) for p in ps] for s in classical])
    assert (np.diff(grid, axis=1) <= 1e-12).all()  # more blur, never a better score
    assert (np.diff(grid, axis=0) >= -1e-12).all()  # a sharper classical measure, never a worse one
    assert np.abs(np.diff(grid, axis=1)).max() < 0.05 and np.abs(np.diff(grid, axis=0)).max() < 0.05
    assert (grid[:, ps > c.max_blur_probability] < LIMIT_SUBSCORE).all()  # the learned cue always fails blur
    assert (grid[:, ps <= c.sharp_probability] >= LIMIT_SUBSCORE).all()  # and vouches when confident
    assert blend_sharpness(1.0, 0.0, c) == 1.0 and blend_sharpness(0.0, 1.0, c) == 0.0


def test_gate_probabilities_carry_the_blur_probability() -> None:
    p = GateProbs.from_array(np.array([0.1, 0.2, 0.7, 0.25]))
    assert p.blurred == 0.25 and p.dermatological == pytest.approx(0.9)
    assert GateProbs.from_array(np.array([0.1, 0.2, 0.7])).blurred is None
    with pytest.raises(ValueError):
        GateProbs.from_array(np.array([0.1, 0.2, 0.7, 1.5]))


NON_SKIN = ["coffee", "chelsea", "rocket", "camera", "brick", "grass", "gravel", "moon", "coins", "page",
            "hubble_deep_field", "stereo_motorcycle", "retina", "immunohistochemistry", "cell", "colorwheel",
            "logo", "text", "clock", "checkerboard", "microaneurysms", "horse", "shepp_logan_phantom", "binary_blobs"]


def skimage_photo(name: str) -> np.ndarray:
    from skimage import data

    try:
        img = getattr(data, name)()  # bundled with scikit-image; anything needing a download is skipped
    except (ImportError, OSError) as exc:  # pooch missing / offline: the image is not bundled here
        pytest.skip(f"skimage.data.{name} not available offline: {exc}")
    img = img[0] if isinstance(img, tuple) else img
    if img.dtype != np.uint8:  # boolean and float [0, 1] test images
        img = (np.clip(img.astype(np.float64), 0, 1) * 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


@pytest.mark.parametrize("name", NON_SKIN)
def test_classical_fallback_refuses_non_skin_photographs(name: str) -> None:
    mv = assess_media_validity(skimage_photo(name))
    assert not mv["domain"]["isDermatological"]
    assert mv["modality"]["value"] == "None" and not mv["isValid"]
    # aiConfidence is P(dermatological): low, but never below the fallback's measured error bound.
    assert 100 - wilson_lower_bound(*MEASURED["domain"]) <= mv["domain"]["additionalData"]["aiConfidence"]["value"] <= 50


def test_classical_fallback_calls_a_synthetic_clinical_photo_clinical() -> None:
    mv = assess_media_validity(synthetic_clinical_photo())
    assert mv["isValid"] and mv["domain"]["isDermatological"] and mv["modality"]["value"] == "Clinical"
    assert 50 < mv["modality"]["additionalData"]["aiConfidenceClinical"]["value"] <= UNVALIDATED_CAP


def test_gate_probabilities_make_the_domain_and_modality_calls() -> None:
    rgb = load(PATHS[0])
    mv = assess_media_validity(rgb, gate=GateProbs(other=0.9, clinical=0.06, dermoscopic=0.04))
    assert not mv["domain"]["isDermatological"] and mv["modality"]["value"] == "None" and not mv["isValid"]
    assert mv["domain"]["additionalData"]["aiConfidence"]["value"] == pytest.approx(10.0)
    extra = mv["modality"]["additionalData"]
    assert extra["aiConfidenceDermoscopic"]["value"] == pytest.approx(40.0)
    mv = assess_media_validity(rgb, gate=CLINICAL)
    assert mv["modality"]["value"] == "Clinical" and mv["domain"]["additionalData"]["aiConfidence"]["value"] == 98.0


def far_away(rgb: np.ndarray) -> np.ndarray:
    """The photo shrunk to a third, in the middle of a plain grey-blue wall."""
    h, w = rgb.shape[:2]
    canvas = np.full_like(rgb, (120, 130, 150))
    small = cv2.resize(rgb, (w // 3, h // 3), interpolation=cv2.INTER_AREA)
    canvas[h // 3 : h // 3 + small.shape[0], w // 3 : w // 3 + small.shape[1]] = small
    return canvas


def test_skin_photographed_from_too_far_fails_framing_with_a_hint_to_come_closer() -> None:
    mv = assess_media_validity(far_away(synthetic_clinical_photo()), gate=CLINICAL)
    assert mv["domain"]["isDermatological"] and "framing" in failing(mv)
    assert "closer" in mv["quality"]["metrics"]["framing"]["hint"]


def test_a_lesion_filling_a_dermoscopic_frame_is_well_framed() -> None:
    # The ISIC challenge format: a 224-px square crop where the lesion covers the whole centre.
    rgb = load(PATHS[0])
    h, w = rgb.shape[:2]
    crop = cv2.resize(rgb[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3], (224, 224), interpolation=cv2.INTER_AREA)
    assert "framing" not in failing(assess_media_validity(crop, gate=DERMOSCOPIC))


@pytest.mark.parametrize("size", [(150, 200), (224, 224), (256, 256)])
def test_archive_sized_images_pass_resolution(size: tuple[int, int]) -> None:
    rgb = cv2.resize(load(PATHS[0]), size[::-1], interpolation=cv2.INTER_AREA)
    assert "resolution" not in failing(assess_media_validity(rgb, gate=DERMOSCOPIC))


def test_resolution_judges_the_original_of_a_reduced_decode() -> None:
    rgb = cv2.resize(load(PATHS[0]), (100, 75), interpolation=cv2.INTER_AREA)
    assert "resolution" in failing(assess_media_validity(rgb, gate=DERMOSCOPIC))
    mv = assess_media_validity(rgb, gate=DERMOSCOPIC, source_shape=(1936, 2592))
    assert "resolution" not in failing(mv) and mv["quality"]["metrics"]["resolution"]["value"] == 1936


@pytest.mark.parametrize("path", PATHS[::10], ids=[p.stem for p in PATHS[::10]])
def test_darker_skin_tones_stay_dermatological(path: Path) -> None:
    # The same scenes re-toned towards Fitzpatrick V: the domain and modality calls must not depend on skin tone.
    mv = assess_media_validity(tint(load(path), (0.5, 0.4, 0.35)))  # the classical fallback gate
    assert mv["domain"]["isDermatological"] and mv["modality"]["value"] == "Dermoscopic"
    assert "colorCast" not in failing(mv)


@pytest.mark.parametrize("score, label", [(0, "Bad"), (20, "Bad"), (21, "Poor"), (40, "Poor"), (41, "Fair"),
                                          (60, "Fair"), (61, "Good"), (80, "Good"), (81, "Excellent"), (100, "Excellent")])
def test_interpretation_bands(score: float, label: str) -> None:
    assert interpret_score(score) == label


def test_acceptable_threshold_is_configurable() -> None:
    rgb = load(PATHS[0])
    assert assess_media_validity(rgb, gate=DERMOSCOPIC)["quality"]["acceptable"]
    mv = assess_media_validity(rgb, QualityConfig(min_score=101), gate=DERMOSCOPIC)
    assert not mv["quality"]["acceptable"] and not mv["isValid"]
    assert not failing(mv), "the metrics still pass; only the overall bar moved"


def test_classical_fallback_confidences_are_capped_at_the_measured_rates() -> None:
    assert wilson_lower_bound(*MEASURED["domain"]) < 95 and wilson_lower_bound(*MEASURED["modality"]) < 92
    mv = assess_media_validity(load(PATHS[0]))
    assert 50 <= mv["domain"]["additionalData"]["aiConfidence"]["value"] <= wilson_lower_bound(*MEASURED["domain"]) + 0.1
    dermoscopic = mv["modality"]["additionalData"]["aiConfidenceDermoscopic"]["value"]
    assert 50 <= dermoscopic <= wilson_lower_bound(*MEASURED["modality"])


def non_finite(value: Any, path: str = "") -> list[str]:
    """Paths of every NaN or infinite number in a report."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in non_finite(v, f"{path}[{i}]")]
    return []


def _noise(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(h * 7 + w).integers(0, 256, (h, w, 3), dtype=np.uint8)


# Images that pass intake at its limits (32 px sides, 10:1), flat ones, and smaller slivers than intake
# lets through (the pipeline must not depend on intake for finite numbers).
DEGENERATE = {
    "1x1": _noise(1, 1), "2x2": _noise(2, 2), "3x3-flat": np.full((3, 3, 3), 90, np.uint8),
    "2x4000": _noise(2, 4000), "4000x2-flat": np.full((4000, 2, 3), (200, 150, 120), np.uint8),
    "32x32": _noise(32, 32), "32x320": _noise(32, 320), "320x32-flat": np.full((320, 32, 3), (200, 150, 120), np.uint8),
    "skin-coloured": np.full((300, 400, 3), (200, 150, 120), np.uint8),
    "black": np.zeros((300, 400, 3), np.uint8), "white": np.full((300, 400, 3), 255, np.uint8),
}


@pytest.mark.parametrize("gate", [None, DERMOSCOPIC, CLINICAL], ids=["classical", "dermoscopic", "clinical"])
@pytest.mark.parametrize("name", DEGENERATE)
def test_degenerate_images_give_finite_numbers(name: str, gate: GateProbs | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # an empty mean or 0/0 is a bug even if patched up later
        mv = assess_media_validity(DEGENERATE[name], gate=gate)
    assert not non_finite(mv), non_finite(mv)
    json.dumps(mv, allow_nan=False)
    assert set(mv["quality"]["metrics"]) == METRICS and 0 <= mv["quality"]["score"] <= 100


def test_degenerate_images_give_finite_diagnosis_reports() -> None:
    import torch

    from pipeline.catalogue import load_catalogue
    from pipeline.classify import Classifier
    from pipeline.diagnosis import DiagnosisPipeline, ImageInput
    from pipeline.models.bundle import SHIPPED_BUNDLES, load_bundle

    bundle = load_bundle(SHIPPED_BUNDLES["classification"])
    classifier = Classifier.from_bundle(bundle)
    pipeline = DiagnosisPipeline(load_catalogue(), bundle.manifest, preprocess=classifier.preprocess,
                                 predict=lambda xs: classifier.predict(torch.stack(list(xs))), quality=QualityConfig())
    report = pipeline.run("r", [ImageInput(rgb, title=name) for name, rgb in DEGENERATE.items()])
    assert len(report["imagingAnalysis"]) == len(DEGENERATE)
    assert not non_finite(report), non_finite(report)
    json.dumps(report, allow_nan=False)


@pytest.mark.parametrize("level", [0, 128, 200])
def test_a_featureless_image_has_nothing_in_focus(level) -> None:
    # A flat field (lens cap, blank frame) has no detail to be sharp: it fails `sharpness`, and the
    # learned cue cannot vouch for it even when it (out of its domain) calls the image sharp.
    rgb = np.full((300, 400, 3), level, np.uint8)
    mv = assess_media_validity(rgb, gate=GateProbs(other=0.01, clinical=0.1, dermoscopic=0.89, blurred=0.001))
    assert mv["quality"]["metrics"]["sharpness"]["acceptable"] is False
    assert mv["isValid"] is False
