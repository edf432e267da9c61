"""The learned blur cue: a calibrated sharp-vs-blurred head on the image gate's own input.

``dermq train image-gate`` fits it beside the gate head (``heads.sharpness`` in the
classifier bundle). Its input is the gate's (per-channel mean and std of backbone stages
2-8, from the forward pass the classification runs anyway), so serving it costs one more
2 x 4096 product. The early stages' standard deviations carry the fine-detail energy that
blur removes whatever the scene shows, which is what the classical blur ratio cannot tell
apart from a naturally smooth image (a small naevus on even skin).

Examples (never from the test split, which only measures):

* sharp: every training view the gate sees (as is, centre square, restyled, augmented,
  darkened, over-exposed, noisy, far away), except the degraded views whose defect is
  blur (those are blurred examples) or where sharpness is ill-defined (heavy JPEG and
  downscaling below the resolution limit: other metrics name those defects);
* blurred: ``blurred_views`` per training image, Gaussian (σ 0.8-3.5 % of the long side)
  and motion blur (4-9 %, any direction) alternately, on the image as is or augmented.

The head is a balanced binary logistic regression on standardised inputs, folded into one
2-row linear layer (``sharp``, ``blurred``); C is the candidate with the lowest NLL and
the temperature is fitted on the calibration split's clean images and one blurred copy of
each. ``pipeline.quality.blend_sharpness`` turns P(blurred) and the classical measure into
the `sharpness` verdict; its two probability thresholds are measured here on the
calibration split (chosen there) and on the test split.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pipeline.gate import SHARPNESS_CLASSES
from pipeline.quality import (
    LIMIT_SUBSCORE,
    QualityConfig,
    classical_sharpness_subscore,
    sharpness_subscore,
)
from training.augment import augment
from training.evaluation import binary_ece

__all__ = ["BLUR_KINDS", "SHARP", "BLURRED", "blur", "blurred_views", "fit_binary_head", "sharpness_labels",
           "sharpness_metrics"]

SHARP, BLURRED = range(len(SHARPNESS_CLASSES))
BLUR_KINDS = ("gaussian_blur", "motion_blur")
GAUSSIAN_SIGMA = (0.008, 0.035)  # share of the long side
MOTION_LENGTH = (0.04, 0.09)  # share of the long side
# Degraded gate views that are not examples for this head: sharpness is ill-defined there and other
# metrics name the defect (heavy JPEG; downscaling, upsampled again at the model's input).
NOT_EXAMPLES = ("jpeg", "downscale")


def blur(rgb: np.ndarray, kind: str, strength: float, angle: float = 0.0) -> np.ndarray:
    """Gaussian blur with σ = strength x the long side, or a motion-blur streak that long at ``angle`` degrees."""
    side = max(rgb.shape[:2])
    if kind == "gaussian_blur":
        return cv2.GaussianBlur(rgb, (0, 0), side * strength)
    if kind == "motion_blur":
        length = max(3, round(side * strength))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0),
                                (length, length))
        return cv2.filter2D(rgb, -1, kernel / max(float(kernel.sum()), 1e-6))
    raise ValueError(f"unknown blur {kind!r}; known: {BLUR_KINDS}")


def random_blur(rgb: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    lo, hi = GAUSSIAN_SIGMA if kind == "gaussian_blur" else MOTION_LENGTH
    strength = float(rng.uniform(lo, hi))
    return blur(rgb, kind, strength, float(rng.uniform(0, 180))), f"{kind}:{strength:.4f}"


def blurred_views(rgb: np.ndarray, rng: np.random.Generator, count: int, augment_config: Any) -> list[tuple[np.ndarray, str]]:
    """``count`` blurred copies, Gaussian and motion alternately (first kind at random), half of them augmented."""
    first = int(rng.integers(len(BLUR_KINDS)))
    views = []
    for i in range(count):
        base = augment(rgb, rng, augment_config)[0] if i % 2 else rgb
        views.append(random_blur(base, BLUR_KINDS[(first + i) % len(BLUR_KINDS)], rng))
    return views


def sharpness_labels(tags: np.ndarray) -> np.ndarray:
    """SHARP / BLURRED for each view tag, -1 where the view is not an example."""
    labels = np.full(len(tags), SHARP, np.int64)
    for i, tag in enumerate(tags):
        kind = str(tag).removeprefix("degraded:").split(":")[0]
        if kind in BLUR_KINDS:
            labels[i] = BLURRED
        elif kind in NOT_EXAMPLES:
            labels[i] = -1
    return labels


def fit_binary_head(features: np.ndarray, labels: np.ndarray, c: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced binary logistic regression on standardised inputs, folded into 2-row (W, b): logits (0, z)."""
    from sklearn.linear_model import LogisticRegression

    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed)
    model.fit((features - mean) / std, labels)
    w = model.coef_[0] / std
    b = float(model.intercept_[0] - w @ mean)
    return np.stack([np.zeros_like(w), w]), np.array([0.0, b])


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, score)) if 0 < positive.sum() < len(positive) else float("nan")


def sharpness_metrics(p_blurred: np.ndarray, labels: np.ndarray, classical: np.ndarray, skin: np.ndarray,
                      quality: QualityConfig = QualityConfig()) -> dict[str, float]:
    """How the `sharpness` verdict does on skin images: classical alone, learned alone, and blended.

    ``labels`` SHARP / BLURRED, ``classical`` the classical measure (1 - blur ratio), ``skin``
    which views are of skin photographs (the verdict that matters).
    """
    sel = skin & (labels >= 0)
    p, y, v = p_blurred[sel], labels[sel], classical[sel]
    classical_fails = np.array([classical_sharpness_subscore(x, quality) < LIMIT_SUBSCORE for x in v])
    learned_fails = p > quality.max_blur_probability
    blended_fails = np.array([sharpness_subscore(x, q, quality) < LIMIT_SUBSCORE for x, q in zip(v, p)])
    sharp, blurred = y == SHARP, y == BLURRED

    def share(mask: np.ndarray, of: np.ndarray) -> float:
        return round(float(mask[of].mean()), 4) if of.any() else float("nan")

    return {
        "sharp_images": float(sharp.sum()), "blurred_images": float(blurred.sum()),
        "auc": round(_auc(p, blurred), 4), "ece": round(binary_ece(p, blurred), 4),
        "sharp_failing_classical": share(classical_fails, sharp),
        "sharp_failing_learned": share(learned_fails, sharp),
        "sharp_failing_blended": share(blended_fails, sharp),
        "blurred_caught_classical": share(classical_fails, blurred),
        "blurred_caught_learned": share(learned_fails, blurred),
        "blurred_caught_blended": share(blended_fails, blurred),
        # The two effects of the blend: classical failures of sharp images it lifts, blurred ones it lets pass.
        "sharp_rescued": share(classical_fails & ~blended_fails, sharp),
        "blurred_released": share(classical_fails & ~blended_fails, blurred),
    }
