"""Training-time augmentation on uint8 RGB arrays (and an optional mask), with cv2/numpy.

Augmentation works on the decoded image *before* ``pipeline.classify.preprocess_image``,
so the resize and normalisation the network sees are exactly the serving ones; only the
content differs.  Geometric steps move the mask with the image; colour steps touch the
image only.  Every random draw comes from the ``numpy.random.Generator`` passed in, so a
sample's augmentation is reproducible from its seed (and therefore across resumes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["AugmentConfig", "augment"]


@dataclass(frozen=True)
class AugmentConfig:
    # Skin photographs and dermoscopy have no canonical orientation, so flips and any
    # rotation are label-preserving.
    hflip: float = 0.5
    vflip: float = 0.5
    max_rotation: float = 180.0  # degrees, uniform in [-max, max]
    # Random resized crop: fraction of the image area kept, and aspect-ratio range.
    crop_scale: tuple[float, float] = (0.5, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    # Colour jitter strengths (multiplicative factors drawn in [1 - s, 1 + s]; hue as a
    # fraction of the colour circle).  Kept mild: colour is diagnostic in dermatology.
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02


def _crop_box(h: int, w: int, cfg: AugmentConfig, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Top, left, height, width of a random crop (torchvision's RandomResizedCrop recipe)."""
    area = h * w
    log_lo, log_hi = math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1])
    for _ in range(10):
        target = area * rng.uniform(*cfg.crop_scale)
        ratio = math.exp(rng.uniform(log_lo, log_hi))
        cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    return 0, 0, h, w  # no admissible box drawn: keep the whole image


def _rotate(img: np.ndarray, angle: float, interpolation: int) -> np.ndarray:
    h, w = img.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    # Reflection fills the corners with skin-like texture instead of black wedges.
    return cv2.warpAffine(img, matrix, (w, h), flags=interpolation, borderMode=cv2.BORDER_REFLECT_101)


def _jitter(rgb: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    x = rgb.astype(np.float32)
    x *= rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
    c = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
    x = (x - gray.mean()) * c + gray.mean()
    s = rng.uniform(1 - cfg.saturation, 1 + cfg.saturation)
    x = (x - gray[..., None]) * s + gray[..., None]
    out = np.clip(x, 0, 255).astype(np.uint8)
    if cfg.hue > 0:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)  # uint8 hue spans 0..179
        shift = round(rng.uniform(-cfg.hue, cfg.hue) * 180)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return out


def augment(
    rgb: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig = AugmentConfig(),
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Random flips, rotation, resized-crop region and colour jitter of an HxWx3 uint8 image.

    The crop is not resized here: ``preprocess_image`` does that, as at serving time.
    ``mask`` (HxW uint8) receives the same geometric transform with nearest-neighbour
    interpolation, so it stays binary.
    """
    if rng.random() < cfg.hflip:
        rgb = rgb[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    if rng.random() < cfg.vflip:
        rgb = rgb[::-1]
        mask = None if mask is None else mask[::-1]
    rgb = np.ascontiguousarray(rgb)
    mask = None if mask is None else np.ascontiguousarray(mask)
    if cfg.max_rotation > 0:
        angle = float(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
        rgb = _rotate(rgb, angle, cv2.INTER_LINEAR)
        mask = None if mask is None else _rotate(mask, angle, cv2.INTER_NEAREST)
    top, left, ch, cw = _crop_box(*rgb.shape[:2], cfg, rng)
    rgb = rgb[top : top + ch, left : left + cw]
    mask = None if mask is None else mask[top : top + ch, left : left + cw]
    return _jitter(rgb, cfg, rng), mask
