from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.quality import QualityConfig, assess_media_validity, interpret_score

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "isic2017-sample" / "images"
PATHS = sorted(SAMPLE.glob("*.jpg"))


def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def failing(mv: dict) -> set[str]:
    return {k for k, m in mv["quality"]["metrics"].items() if not m["acceptable"]}


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_every_sample_image_is_valid_dermoscopic_and_dermatological(path: Path) -> None:
    mv = assess_media_validity(load(path))
    assert mv["isValid"] and mv["quality"]["acceptable"], failing(mv)
    assert mv["domain"]["isDermatological"]
    assert mv["modality"]["value"] == "Dermoscopic"
    assert set(mv["quality"]["metrics"]) == {"sharpness", "exposure", "noise", "resolution", "colorCast", "framing"}
    assert all(m["hint"] == "" for m in mv["quality"]["metrics"].values())
    extra = mv["modality"]["additionalData"]
    assert extra["aiConfidenceDermoscopic"]["value"] + extra["aiConfidenceClinical"]["value"] == pytest.approx(100)


def blur(rgb): return cv2.GaussianBlur(rgb, (0, 0), 8)
def dark(rgb): return (rgb * 0.12).astype(np.uint8)
def bright(rgb): return np.clip(rgb.astype(int) * 3, 0, 255).astype(np.uint8)
def noisy(rgb): return np.clip(rgb + np.random.default_rng(0).normal(0, 38, rgb.shape), 0, 255).astype(np.uint8)
def tiny(rgb): return cv2.resize(rgb, (80, 53), interpolation=cv2.INTER_AREA)


def blue_cast(rgb):
    out = rgb.astype(np.float32)
    out[..., 0] *= 0.5
    out[..., 2] = out[..., 2] * 1.6 + 40
    return np.clip(out, 0, 255).astype(np.uint8)


DEGRADATIONS = [(blur, "sharpness", "blurry"), (dark, "exposure", "too dark"), (bright, "exposure", "overexposed"),
                (noisy, "noise", "grainy"), (tiny, "resolution", "resolution"), (blue_cast, "colorCast", "tinted")]


@pytest.mark.parametrize("path", PATHS[::8], ids=[p.stem for p in PATHS[::8]])
@pytest.mark.parametrize("degrade, check, hint", DEGRADATIONS, ids=[d[1] + "-" + d[0].__name__ for d in DEGRADATIONS])
def test_degraded_images_fail_the_right_check_with_its_hint(path: Path, degrade, check: str, hint: str) -> None:
    clean = load(path)
    mv = assess_media_validity(degrade(clean))
    assert not mv["isValid"] and not mv["quality"]["acceptable"]
    assert check in failing(mv)
    assert hint in mv["quality"]["metrics"][check]["hint"]
    assert mv["quality"]["score"] < assess_media_validity(clean)["quality"]["score"]
    assert mv["quality"]["interpretation"] in ("Bad", "Poor", "Fair")


def _skimage_photos() -> list[tuple[str, np.ndarray]]:
    from skimage import data

    photos = []
    for name in ("coffee", "chelsea", "rocket", "camera", "brick", "grass", "gravel", "moon", "coins", "page",
                 "hubble_deep_field", "retina", "cell", "logo"):
        img = getattr(data, name)()  # bundled with scikit-image, no download
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        photos.append((name, np.ascontiguousarray(img[..., :3])))
    return photos


@pytest.mark.parametrize("name, rgb", _skimage_photos(), ids=lambda v: v if isinstance(v, str) else "")
def test_non_skin_photographs_are_not_dermatological(name: str, rgb: np.ndarray) -> None:
    mv = assess_media_validity(rgb)
    assert not mv["domain"]["isDermatological"] and mv["modality"]["value"] == "None" and not mv["isValid"]


def synthetic_clinical_photo() -> np.ndarray:
    """A skin area with a lesion on a grey-blue table: the layout of a clinical (non-dermoscopic) photo."""
    rng = np.random.default_rng(1)
    scene = np.zeros((600, 800, 3), np.uint8)
    scene[:] = (70, 90, 140)
    scene = np.clip(scene + rng.normal(0, 6, scene.shape), 0, 255).astype(np.uint8)
    cv2.ellipse(scene, (400, 300), (300, 220), 0, 0, 360, (224, 172, 140), -1)
    cv2.circle(scene, (410, 300), 40, (120, 70, 50), -1)
    return np.clip(scene + rng.normal(0, 4, scene.shape), 0, 255).astype(np.uint8)


def test_synthetic_clinical_photo_is_clinical_and_dermatological() -> None:
    mv = assess_media_validity(synthetic_clinical_photo())
    assert mv["domain"]["isDermatological"] and mv["modality"]["value"] == "Clinical"
    assert mv["modality"]["additionalData"]["aiConfidenceClinical"]["value"] > 50


@pytest.mark.parametrize("score, label", [(0, "Bad"), (20, "Bad"), (21, "Poor"), (40, "Poor"), (41, "Fair"),
                                          (60, "Fair"), (61, "Good"), (80, "Good"), (81, "Excellent"), (100, "Excellent")])
def test_interpretation_bands(score: float, label: str) -> None:
    assert interpret_score(score) == label


def test_acceptable_threshold_is_configurable() -> None:
    rgb = load(PATHS[0])
    assert assess_media_validity(rgb)["quality"]["acceptable"]
    mv = assess_media_validity(rgb, QualityConfig(min_score=101))
    assert not mv["quality"]["acceptable"] and not mv["isValid"]


def test_confidences_are_not_overstated() -> None:
    mv = assess_media_validity(load(PATHS[0]))
    assert 50 <= mv["domain"]["additionalData"]["aiConfidence"]["value"] <= 90
    assert mv["modality"]["additionalData"]["aiConfidenceDermoscopic"]["value"] <= 85
