"""Image quality, domain and modality assessment (`mediaValidity`), classical and measured.

Checks run on a copy resized to `analysis_side` on its long side (never
upscaled), so values do not depend on the camera's resolution; resolution itself
is judged on the original, and noise on a copy of at most `noise_side` px
because downscaling a 5 MP photo to 512 px averages its grain away. Each check
maps its measure to a sub-score in [0, 1] through three anchors (bad → 0,
limit → 0.6, good → 1). The quality score is 100 × the worst sub-score, so with
the default threshold of 60 an image is acceptable exactly when every check
passes, and a score below 60 always comes with a failing metric whose hint says
what to do.

Domain: skin-coloured area (YCrCb model, `pipeline.skin`) of at least
`min_skin_fraction` of the non-vignette frame, that area smooth (median local
grey-level std, noise removed, at most `max_skin_texture`: fur, coffee, engines
and stained tissue are skin-coloured but textured) and not oversaturated.
Modality: Dermoscopic when skin (lesions included) fills the field of view, a
dark field stop aside; Clinical when a large non-skin background is visible.

Measured on this repository's data (tests/pipeline/test_quality.py, test_skin.py):
- 40/40 ISIC 2017 dermoscopic sample images acceptable, dermatological and
  Dermoscopic (scores 80.9-100, median 100);
- degradations of all 40 (the tests run every 8th): Gaussian blur σ = 8 px →
  40/40 fail `sharpness` (and nothing else); brightness ×0.12 → 40/40 fail
  `exposure`; +180 → 40/40; ×3 → 39/40 (an already dark image ends up merely
  bright); noise σ = 38 → 40/40 fail `noise`; 80 px wide → 40/40 fail
  `resolution`; a blue tint → 40/40 fail `colorCast`, a green one (+40) 39/40,
  a yellow one (blue channel ×0.3) 37/40: on pinkish skin it still looks like
  skin. Every degraded copy scores below its original;
- 24 distinct non-skin images bundled with scikit-image (photos incl. a cat,
  coffee and a motorcycle, textures, text, microscopy, a fundus photo,
  greyscale): 24/24 not dermatological;
- one synthetic clinical scene (skin on a blue-grey table): Clinical;
- the 40 samples re-toned towards dark skin: 40/40 still dermatological and
  Dermoscopic (36/40 acceptable: three became too dark, and one strongly red
  lesion left the skin colour box, failing `framing`).
Domain calls were right on 65/65 images and modality calls on 41/41; the
confidence caps are the 95 % Wilson lower bounds of those rates (94.4 % and
91.4 %), not the point estimates, because the sets are small. No real clinical
photograph was available, so a Clinical call is capped at 60 %.
Runtime on one CPU core (taskset, cv2.setNumThreads(1)): median 19 ms for a
1024×683 image, 81 ms for 2592×1936.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pipeline.skin import skin_fraction, skin_mask, skin_region, vignette_mask

BANDS = ((20, "Bad"), (40, "Poor"), (60, "Fair"), (80, "Good"), (100, "Excellent"))
LIMIT_SUBSCORE = 0.6  # a check's sub-score exactly at its limit; equals the default min_score / 100


@dataclass(frozen=True)
class QualityConfig:
    min_score: float = 60.0  # quality.acceptable threshold on the 0-100 score
    analysis_side: int = 512  # long side of the analysis copy, pixels
    noise_side: int = 2048  # long side of the copy the noise is measured on (grain survives at this scale)
    min_short_side_px: int = 224  # smaller originals fail `resolution` (the classifier's input size)
    min_sharpness: float = 2.2  # 100 × Laplacian std / mean luminance; clean samples ≥ 3.7, σ=8 blur ≤ 1.4
    min_brightness: float = 20.0  # mean CIELAB L* of the central region
    max_brightness: float = 90.0  # mean CIELAB L* of the central region
    max_clipped: float = 0.25  # share of crushed (≤5) or blown-out (≥250) grey levels in the central region
    max_noise_sigma: float = 8.0  # Immerkær noise sigma, grey levels; clean samples ≤ 2
    max_color_cast: float = 8.0  # CIELAB distance of the centre's mean a*b* from the skin-tone sector
    min_skin_center: float = 0.4  # share of the central region that is skin (framing)
    min_skin_fraction: float = 0.35  # share of the non-vignette frame that is skin (domain)
    max_skin_texture: float = 6.5  # median local grey std inside the skin mask; samples ≤ 4.4, cat fur 8.4
    max_mean_saturation: float = 175.0  # HSV saturation of the centre; dark skin tones reach ~157, coffee 196
    max_background_dermoscopic: float = 0.5  # non-skin, non-vignette share above which a photo is Clinical


HINTS = {
    "sharpness": "Image is blurry: hold the camera steady and tap the screen to focus on the skin.",
    "exposure_dark": "Image is too dark: take it in daylight or switch on more light, without flash glare.",
    "exposure_bright": "Image is overexposed: avoid direct flash or sunlight on the skin and retake it.",
    "noise": "Image is grainy: use more light so the camera does not need high sensitivity.",
    "resolution": "Image resolution is too low: use the main camera and move closer to the skin.",
    "colorCast": "Colours look tinted: use neutral daylight or white light, not coloured lamps or filters.",
    "framing": "Skin is not centred: place the affected skin in the middle of the frame and fill most of it.",
}

# Skin chromaticity in CIELAB: hue angle 0-78° (pink to yellowish), chroma up to 38. Every sample image,
# their darker re-toned copies and light-to-dark tone patches sit inside; tinted light pushes the mean out.
SKIN_HUE_DEG = (0.0, 78.0)
SKIN_MAX_CHROMA = 38.0

# Measured (correct, total) decisions on this repository's test data (module docstring). Confidence is
# capped at the 95 % Wilson lower bound of these rates; Clinical has no real data and a fixed low cap.
MEASURED = {"domain": (65, 65), "modality": (41, 41)}
UNVALIDATED_CAP = 60.0
MARGIN_GAIN = 4.0  # how fast confidence rises with the normalised margin; ~0.75 of the cap at margin 0.25


def interpret_score(score: float) -> str:
    """Band label of a 0-100 score: 0-20 Bad, 21-40 Poor, 41-60 Fair, 61-80 Good, 81-100 Excellent."""
    for upper, label in BANDS:
        if score <= upper:
            return label
    return BANDS[-1][1]


def wilson_lower_bound(correct: int, total: int, z: float = 1.96) -> float:
    """Lower end of the Wilson score interval of a hit rate, in percent."""
    p = correct / total
    centre = p + z * z / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return 100.0 * (centre - spread) / (1 + z * z / total)


def _ramp(value: float, bad: float, limit: float, good: float) -> float:
    """Piecewise-linear sub-score: `bad` → 0, `limit` → 0.6, `good` → 1 (either direction)."""
    xs, ys = (bad, limit, good), (0.0, LIMIT_SUBSCORE, 1.0)
    if bad > good:
        xs, ys = xs[::-1], ys[::-1]
    return float(np.interp(value, xs, ys))


def _resize(rgb: np.ndarray, side: int) -> np.ndarray:
    """Downscale (area interpolation) so the long side is `side`; smaller images are left as they are."""
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _center(a: np.ndarray) -> np.ndarray:
    """Central half (in each direction): clear of a dermoscope's vignette and of the photo's edges."""
    h, w = a.shape[:2]
    return a[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]


def _immerkaer_sigma(gray: np.ndarray) -> float:
    """Immerkær (1996) noise sigma: a Laplacian-difference kernel cancels smooth structure, MAD-like mean."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = np.abs(cv2.filter2D(gray, -1, kernel))[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * response.mean() / 6) if response.size else 0.0


@dataclass
class _Views:
    rgb: np.ndarray  # analysis copy
    gray: np.ndarray  # float32 grey levels 0-255
    lab: np.ndarray  # float32: L* 0-100, a*, b* centred on 0
    skin: np.ndarray  # skin-coloured pixels
    region: np.ndarray  # skin incl. lesions
    vignette: np.ndarray  # dark field stop
    noise_gray: np.ndarray  # float32 grey of the larger noise copy


def _views(rgb: np.ndarray, config: QualityConfig) -> _Views:
    small = _resize(rgb, config.analysis_side)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    # Grey before resizing: one channel to interpolate instead of three.
    noise_gray = _resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), config.noise_side).astype(np.float32)
    skin, vignette = skin_mask(small), vignette_mask(small)
    region = skin_region(small, mask=skin, vignette=vignette)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return _Views(small, gray, lab, skin, region, vignette, noise_gray)


# --- checks: each returns (value, sub-score, hint key) ---
def _sharpness(v: _Views, c: QualityConfig) -> tuple[float, float, str]:
    # Laplacian std relative to mean luminance: an exposure gain scales both, so dark photos don't read blurry.
    lap = cv2.Laplacian(v.gray, cv2.CV_32F)
    value = float(100.0 * lap.std() / (v.gray.mean() + 1.0))
    return value, _ramp(value, c.min_sharpness / 4, c.min_sharpness, c.min_sharpness * 2.25), "sharpness"


def _exposure(v: _Views, c: QualityConfig) -> tuple[float, float, str]:
    value = float(_center(v.lab[..., 0]).mean())
    center = _center(v.gray)
    crushed, blown = float((center <= 5).mean()), float((center >= 250).mean())
    clip_bad = min(1.0, c.max_clipped * 3)
    dark = min(_ramp(value, c.min_brightness / 4, c.min_brightness, c.min_brightness * 1.75),
               _ramp(crushed, clip_bad, c.max_clipped, c.max_clipped / 3))
    bright = min(_ramp(value, 99.0, c.max_brightness, c.max_brightness - 10),
                 _ramp(blown, clip_bad, c.max_clipped, c.max_clipped / 3))
    return value, min(dark, bright), "exposure_dark" if dark <= bright else "exposure_bright"


def _noise(v: _Views, c: QualityConfig) -> tuple[float, float, str]:
    value = _immerkaer_sigma(v.noise_gray)
    return value, _ramp(value, c.max_noise_sigma * 2.4, c.max_noise_sigma, c.max_noise_sigma / 2), "noise"


def _distance_to_skin_chroma(a: float, b: float) -> float:
    """CIELAB distance from (a*, b*) to the skin sector (hue SKIN_HUE_DEG, chroma ≤ SKIN_MAX_CHROMA)."""
    hue = math.degrees(math.atan2(b, a))
    if SKIN_HUE_DEG[0] <= hue <= SKIN_HUE_DEG[1]:
        return max(0.0, math.hypot(a, b) - SKIN_MAX_CHROMA)
    best = math.inf
    for edge in SKIN_HUE_DEG:  # nearest point on either bounding ray segment
        ux, uy = math.cos(math.radians(edge)), math.sin(math.radians(edge))
        t = min(max(a * ux + b * uy, 0.0), SKIN_MAX_CHROMA)
        best = min(best, math.hypot(a - t * ux, b - t * uy))
    return best


def _color_cast(v: _Views, c: QualityConfig) -> tuple[float, float, str]:
    # Skin is not grey, so grey-world would flag every skin photo; compare with where skin of any tone lies.
    center = _center(v.lab)
    value = _distance_to_skin_chroma(float(center[..., 1].mean()), float(center[..., 2].mean()))
    return value, _ramp(value, c.max_color_cast * 4, c.max_color_cast, 0.0), "colorCast"


def _framing(v: _Views, c: QualityConfig) -> tuple[float, float, str]:
    value = float(_center(v.region).mean())
    return value, _ramp(value, c.min_skin_center / 4, c.min_skin_center, min(1.0, c.min_skin_center * 1.75)), "framing"


def _resolution(rgb: np.ndarray, c: QualityConfig) -> tuple[float, float, str]:
    value = float(min(rgb.shape[:2]))
    return value, _ramp(value, c.min_short_side_px / 3.5, c.min_short_side_px, c.min_short_side_px * 2.5), "resolution"


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
    """Confidence (percent) in a decision: 50 at the boundary, rising logistically with |margin| to `cap`."""
    return round(50.0 + (cap - 50.0) * math.tanh(MARGIN_GAIN * abs(margin)), 1)


def _skin_texture(v: _Views) -> float:
    """Median 7×7 grey-level std inside the skin mask, with the noise's share removed in quadrature."""
    if not v.skin.any():
        return 0.0
    mean = cv2.blur(v.gray, (7, 7))
    std = np.sqrt(np.maximum(cv2.blur(v.gray * v.gray, (7, 7)) - mean * mean, 0.0))
    texture = float(np.median(std[v.skin]))
    return math.sqrt(max(texture**2 - _immerkaer_sigma(v.gray) ** 2, 0.0))


def _domain(v: _Views, c: QualityConfig) -> tuple[bool, float]:
    fraction = skin_fraction(v.rgb, region=v.region, vignette=v.vignette)
    saturation = float(_center(cv2.cvtColor(v.rgb, cv2.COLOR_RGB2HSV)[..., 1]).mean())
    margin = min((fraction - c.min_skin_fraction) / c.min_skin_fraction,
                 (c.max_skin_texture - _skin_texture(v)) / c.max_skin_texture,
                 (c.max_mean_saturation - saturation) / c.max_mean_saturation)
    return margin >= 0, _confidence(margin, wilson_lower_bound(*MEASURED["domain"]))


def _modality(v: _Views, is_derm: bool, c: QualityConfig) -> dict[str, Any]:
    """Dermoscopic: skin fills the field of view (a dark field stop aside). Clinical: non-skin background."""
    background = float((~v.region & ~v.vignette).mean())
    # A visible field stop is itself evidence of a dermoscope, so it buys some extra tolerance for background.
    limit = c.max_background_dermoscopic + (0.1 if v.vignette.mean() > 0.02 else 0.0)
    margin = (limit - background) / limit
    dermoscopic = margin >= 0
    cap = wilson_lower_bound(*MEASURED["modality"]) if dermoscopic else UNVALIDATED_CAP
    conf = _confidence(margin, cap)
    p_dermoscopic = conf if dermoscopic else 100.0 - conf
    value = ("Dermoscopic" if dermoscopic else "Clinical") if is_derm else "None"
    return {
        "value": value,
        "additionalData": {  # conditional on the image being dermatological
            "aiConfidenceClinical": {"value": round(100.0 - p_dermoscopic, 1)},
            "aiConfidenceDermoscopic": {"value": round(p_dermoscopic, 1)},
        },
    }


def assess_media_validity(rgb: np.ndarray, config: QualityConfig = QualityConfig()) -> dict[str, Any]:
    """The `mediaValidity` block for one decoded (EXIF-rotated) HxWx3 uint8 RGB image."""
    v = _views(rgb, config)
    results = {name: check(v, config) for name, check in CHECKS.items()}
    results["resolution"] = _resolution(rgb, config)
    metrics = {name: _metric(*result) for name, result in results.items()}
    score = round(100.0 * min(result[1] for result in results.values()), 1)
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
        "modality": _modality(v, is_derm, config),
    }
