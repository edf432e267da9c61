"""Image quality assessment (`mediaValidity`): classical checks, each with a value, a verdict and a hint.

Checks run on a copy resized to `analysis_side` on its long side, so values do
not depend on the camera's resolution (resolution itself is judged on the
original, noise on a copy of at most 2048 px because downscaling averages it away). Each check maps its measure to a sub-score in [0, 1] through three
anchors (bad → 0, limit → 0.6, good → 1); the quality score is 100 × the
worst sub-score, so with the default threshold of 60 an image is acceptable
exactly when every check passes, and the hint of the failing check says why.

Measured on this repository's data (tests/pipeline/test_quality.py):
- the 40 ISIC 2017 dermoscopic sample images: all acceptable, dermatological and Dermoscopic;
- synthetic degradations of them (Gaussian blur σ=8, brightness ×0.12, ×3, noise σ=38, 80 px, blue cast):
  each fails on the intended check;
- 10 non-skin photographs from scikit-image's bundled data: none dermatological.
Those are small sets; `aiConfidence` is therefore capped at the measured hit
rate shrunk towards chance (`_CONFIDENCE_CAP`) rather than reported as certainty.
Clinical (non-dermoscopic) photographs were only checked on synthetic scenes:
the Clinical/Dermoscopic split is a heuristic (background outside the skin
vs. a skin-filled field of view) and its confidence is capped lower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

from pipeline.skin import skin_region, vignette_mask

BANDS = ((20, "Bad"), (40, "Poor"), (60, "Fair"), (80, "Good"), (100, "Excellent"))
LIMIT_SUBSCORE = 0.6
# Confidence caps (percent): measured hit rates on small sets, shrunk towards 50 % (see module docstring).
_CONFIDENCE_CAP = {"domain": 90.0, "dermoscopic": 85.0, "clinical": 70.0}


@dataclass(frozen=True)
class QualityConfig:
    min_score: float = 60.0  # quality.acceptable threshold on the 0-100 score
    analysis_side: int = 512  # long side of the analysis copy, pixels
    min_short_side_px: int = 224  # smaller originals fail `resolution` (the classifier's input size)
    min_sharpness: float = 0.6  # Laplacian variance / luminance std on the analysis copy
    min_brightness: float = 20.0  # mean CIELAB L* of the central region
    max_brightness: float = 90.0
    max_clipped: float = 0.25  # share of blown-out pixels in the central region
    max_noise_sigma: float = 8.0  # Immerkær noise estimate, grey levels on a copy of at most 2048 px
    max_color_cast: float = 8.0  # CIELAB units: a*/b* below zero, i.e. green/blue, where skin is red/yellow
    min_skin_center: float = 0.4  # share of the central region that is skin (framing)
    min_skin_fraction: float = 0.35  # share of the non-vignette image that is skin (domain)
    max_mean_saturation: float = 135.0  # HSV saturation; skin photos are less saturated than e.g. fur or coffee


HINTS = {
    "sharpness": "The image is blurry: hold the camera steady, move closer slowly and tap the screen to focus on the skin.",
    "exposure_dark": "The image is too dark: take it in daylight or switch on more light, without flash glare.",
    "exposure_bright": "The image is overexposed: avoid direct flash or sunlight on the skin and retake it.",
    "noise": "The image is grainy: use more light so the camera does not need high sensitivity.",
    "resolution": "The image resolution is too low: take the photo with the main camera, closer to the skin.",
    "colorCast": "The colours look tinted: use neutral daylight or white light, not coloured lamps or filters.",
    "framing": "The skin area is not centred: place the affected skin in the middle of the frame and fill most of it.",
}


def interpret_score(score: float) -> str:
    for upper, label in BANDS:
        if score <= upper:
            return label
    return BANDS[-1][1]


def _ramp(value: float, bad: float, limit: float, good: float) -> float:
    """Piecewise-linear sub-score: `bad` → 0, `limit` → 0.6, `good` → 1 (either direction)."""
    xs, ys = (bad, limit, good), (0.0, LIMIT_SUBSCORE, 1.0)
    if bad > good:
        xs, ys = xs[::-1], ys[::-1]
    return float(np.interp(value, xs, ys))


def _resize(rgb: np.ndarray, side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _center(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    return a[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]


@dataclass
class _Views:
    rgb: np.ndarray
    gray: np.ndarray
    lab: np.ndarray  # float: L* 0-100, a*, b* centred on 0
    region: np.ndarray  # skin incl. lesions
    vignette: np.ndarray
    noise_gray: np.ndarray  # a larger copy: downscaling averages noise away


NOISE_SIDE = 2048


def _views(rgb: np.ndarray, side: int) -> _Views:
    small = _resize(rgb, side)
    noise_gray = cv2.cvtColor(_resize(rgb, NOISE_SIDE), cv2.COLOR_RGB2GRAY).astype(np.float32)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    return _Views(small, cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32), lab,
                  skin_region(small), vignette_mask(small), noise_gray)


# --- checks: each returns (value, sub-score, hint key) ---
def _sharpness(v: _Views, c: QualityConfig) -> tuple[float, float, str]:
    lap = cv2.Laplacian(v.gray, cv2.CV_32F)
    # Normalised by contrast so a dark or flat (but sharp) image does not read as blurred.
    value = float(lap.var() / (v.gray.std() + 1e-6))
    return value, _ramp(value, c.min_sharpness / 12, c.min_sharpness, c.min_sharpness * 5), "sharpness"


def _exposure(v: _Views, c: QualityConfig) -> tuple[float, float, str]:
    center = _center(v.lab[..., 0])
    value = float(center.mean())
    clipped = float((_center(v.gray) >= 250).mean())
    dark = _ramp(value, c.min_brightness / 4, c.min_brightness, c.min_brightness * 1.75)
    bright = _ramp(value, 99.0, c.max_brightness, c.max_brightness - 10)
    clip = _ramp(clipped, min(1.0, c.max_clipped * 3), c.max_clipped, c.max_clipped / 3)
    score = min(dark, bright, clip)
    return value, score, "exposure_dark" if dark <= min(bright, clip) else "exposure_bright"


def _noise(v: _Views, c: QualityConfig) -> tuple[float, float, str]:
    # Immerkær (1996) fast noise variance estimation: a Laplacian-difference kernel that cancels image structure.
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = np.abs(cv2.filter2D(v.noise_gray, -1, kernel))[1:-1, 1:-1]
    value = float(np.sqrt(np.pi / 2) * response.mean() / 6)
    return value, _ramp(value, c.max_noise_sigma * 2.4, c.max_noise_sigma, c.max_noise_sigma / 2), "noise"


def _color_cast(v: _Views, c: QualityConfig) -> tuple[float, float, str]:
    a, b = _center(v.lab[..., 1]).mean(), _center(v.lab[..., 2]).mean()
    # Skin of every tone sits at positive a* and b*; a green or blue mean means a tinted light.
    value = float(max(0.0, -a, -b))
    return value, _ramp(value, c.max_color_cast * 4, c.max_color_cast, 0.0), "colorCast"


def _framing(v: _Views, c: QualityConfig) -> tuple[float, float, str]:
    value = float(_center(v.region).mean())
    return value, _ramp(value, c.min_skin_center / 4, c.min_skin_center, min(1.0, c.min_skin_center * 1.75)), "framing"


CHECKS: dict[str, Callable[[_Views, QualityConfig], tuple[float, float, str]]] = {
    "sharpness": _sharpness,
    "exposure": _exposure,
    "noise": _noise,
    "colorCast": _color_cast,
    "framing": _framing,
}


def _metric(value: float, subscore: float, hint_key: str) -> dict[str, Any]:
    ok = subscore >= LIMIT_SUBSCORE
    return {"value": round(value, 4), "acceptable": ok, "hint": "" if ok else HINTS[hint_key]}


def _confidence(margin: float, cap: float) -> float:
    """Logistic in the decision margin, capped at the measured reliability."""
    return round(float(50.0 + (cap - 50.0) * np.tanh(3.0 * abs(margin))), 1)


def _domain(v: _Views, c: QualityConfig) -> tuple[bool, float]:
    usable = ~v.vignette
    # A photo that is mostly black border (or night sky) has too little content to call skin.
    fraction = float(v.region[usable].mean()) if usable.mean() > 0.3 else 0.0
    hsv = cv2.cvtColor(v.rgb, cv2.COLOR_RGB2HSV)
    saturation = float(_center(hsv[..., 1]).mean())
    skin_margin = (fraction - c.min_skin_fraction) / c.min_skin_fraction
    sat_margin = (c.max_mean_saturation - saturation) / c.max_mean_saturation
    margin = min(skin_margin, sat_margin)
    return margin >= 0, _confidence(margin, _CONFIDENCE_CAP["domain"])


def _modality(v: _Views, is_derm: bool) -> dict[str, Any]:
    """Dermoscopic: skin fills the field of view (a dark field stop aside). Clinical: non-skin background."""
    background = float((~v.region & ~v.vignette).mean())
    vignette = float(v.vignette.mean())
    margin = 0.5 - background + (0.1 if vignette > 0.02 else 0.0)
    dermoscopic = margin >= 0
    conf_derm = _confidence(margin, _CONFIDENCE_CAP["dermoscopic"] if dermoscopic else _CONFIDENCE_CAP["clinical"])
    p_derm = conf_derm if dermoscopic else 100.0 - conf_derm
    if not is_derm:
        value = "None"
    else:
        value = "Dermoscopic" if dermoscopic else "Clinical"
    return {
        "value": value,
        "additionalData": {
            "aiConfidenceClinical": {"value": round(100.0 - p_derm, 1)},
            "aiConfidenceDermoscopic": {"value": round(p_derm, 1)},
        },
    }


def assess_media_validity(rgb: np.ndarray, config: QualityConfig = QualityConfig()) -> dict[str, Any]:
    """The `mediaValidity` block for one decoded (EXIF-rotated) HxWx3 uint8 RGB image."""
    v = _views(rgb, config.analysis_side)
    metrics: dict[str, dict[str, Any]] = {}
    subscores = []
    for name, check in CHECKS.items():
        value, subscore, hint = check(v, config)
        metrics[name] = _metric(value, subscore, hint)
        subscores.append(subscore)
    short_side = float(min(rgb.shape[:2]))
    res = _ramp(short_side, config.min_short_side_px / 3.5, config.min_short_side_px, config.min_short_side_px * 2.5)
    metrics["resolution"] = _metric(short_side, res, "resolution")
    subscores.append(res)

    score = round(100.0 * min(subscores), 1)
    acceptable = score >= config.min_score
    is_derm, domain_conf = _domain(v, config)
    return {
        "isValid": bool(acceptable and is_derm),
        "quality": {
            "acceptable": bool(acceptable),
            "score": score,
            "interpretation": interpret_score(score),
            "metrics": metrics,
        },
        "domain": {"isDermatological": bool(is_derm), "additionalData": {"aiConfidence": {"value": domain_conf}}},
        "modality": _modality(v, is_derm),
    }
