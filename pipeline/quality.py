"""Image quality, domain and modality (`mediaValidity`).

Domain (skin photograph or not) and modality (Clinical or Dermoscopic) come from the
learned image gate (`pipeline.gate`: a calibrated head on the classifier's own forward
pass) when the served bundle has one, as the default bundle does; `aiConfidence` is then
P(dermatological) and `aiConfidenceClinical` / `aiConfidenceDermoscopic` P(modality | skin),
in percent, with their held-out calibration in the bundle's manifest (docs/image-gate.md).
Without a gate head (a bundle of your own), `classical_gate` decides from skin colour,
texture and background share, with the limits stated in its docstring.

Quality checks read one working copy, the image downscaled (never upscaled) to
`working_side` on its long side: about the classifier's input, so a defect counts when
it reaches the analysis and not when it only shows at full resolution. Two exceptions,
both cheap: `resolution` is judged on the original's short side, and `noise` on a
centre window of the decoded image, because sensor grain is a pixel-scale property that any
downscale averages away (native for images up to twice the diagnosis decode side, 2047 px by
default; a larger JPEG is decoded at 1/2, 1/4 or 1/8 scale, as the 2048-px fit reduced it
before). Each check maps its measure to a sub-score in [0, 1] through three anchors
(bad → 0, limit → 0.6, good → 1). The quality score is 100 × the worst sub-score, so with
the default threshold of 60 an image is acceptable exactly when every check passes, and a
score below 60 always comes with a failing metric whose hint says what to do:

- `sharpness`: 1 − the Crete et al. (2007) blur ratio in the worst of four directions
  (motion blur destroys detail along one only), inside the field stop on dermoscopy, blended
  with the learned P(blurred) of the classifier bundle's `sharpness` head where it has one
  (`blend_sharpness`: the learned cue fails a blurred image the ratio misses, and vouches
  for a naturally smooth one, such as a small naevus on even skin, that the ratio fails);
- `exposure`: mean CIELAB L* and crushed / blown-out share of the centre;
- `noise`: Immerkær's sigma over the flattest 30 % of the window (texture is not grain);
- `colorCast`: distance of the centre's mean a*b* from the sector where skin of any tone
  lies (wider for dermoscopy: a dermoscope's light tints all its images);
- `framing`: share of the centre that is skin (clinical photos: the skin must fill the
  middle, so a photo taken from too far fails with a hint to come closer) or inside the
  field stop (dermoscopy: a lesion filling the frame is the ideal, not a defect);
- `resolution`: short side of the original, failing only below `min_short_side_px`, where
  the model would have to upsample (200-256 px archive images pass).

The limits were set on the gate's calibration split and are measured on its held-out test
split and on degraded copies of it by `dermq bench gate` (figures in docs/image-gate.md,
asserted in tests/training/test_gate_evaluation.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import cv2
import numpy as np
from scipy.stats import binomtest

from pipeline.codes import additional_data
from pipeline.gate import GateProbs
from pipeline.resize import shrink
from pipeline.skin import skin_fraction, skin_mask, skin_region, vignette_mask

BANDS = ((20, "Bad"), (40, "Poor"), (60, "Fair"), (80, "Good"), (100, "Excellent"))
LIMIT_SUBSCORE = 0.6  # a check's sub-score exactly at its limit; equals the default min_score / 100


@dataclass(frozen=True)
class QualityConfig:
    min_score: float = 60.0  # quality.acceptable threshold on the 0-100 score
    working_side: int = 256  # long side of the one working copy every check reads (about the model's input)
    noise_window: int = 512  # side of the centre window of the decoded image the noise is measured on
    min_short_side_px: int = 112  # smaller originals fail `resolution`: the model would upsample them over 1.7x
    min_sharpness: float = 0.55  # 1 - blur ratio (Crete et al. 2007) in the worst of 4 directions
    # The learned sharpness head (calibrated P(blurred); thresholds chosen on the gate's calibration split):
    max_blur_probability: float = 0.5  # above it `sharpness` fails, whatever the blur ratio says
    sharp_probability: float = 0.05  # at or below it `sharpness` passes, whatever the blur ratio says
    min_brightness: float = 20.0  # mean CIELAB L* of the central region
    max_brightness: float = 90.0  # mean CIELAB L* of the central region
    max_clipped: float = 0.25  # share of crushed (≤5) or blown-out (≥250) grey levels in the central region
    max_noise_sigma: float = 8.0  # Immerkær noise sigma, grey levels; clean samples ≤ 2
    max_color_cast: float = 8.0  # CIELAB distance of the centre's mean a*b* from the skin-tone sector
    max_color_cast_dermoscopic: float = 16.0  # dermoscopes' own light tints (ISIC, HAM10000: 95th centile 12)
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
    "framing": "The skin is too small or off-centre: move closer and fill most of the frame with the affected skin.",
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


@cache  # called with the few measured (hits, trials) constants, once per report
def wilson_lower_bound(correct: int, total: int) -> float:
    """Lower end of the 95 % Wilson score interval of a hit rate, in percent."""
    return 100.0 * float(binomtest(correct, total).proportion_ci(confidence_level=0.95, method="wilson").low)


def _ramp(value: float, bad: float, limit: float, good: float) -> float:
    """Piecewise-linear sub-score: `bad` → 0, `limit` → 0.6, `good` → 1 (either direction)."""
    xs, ys = (bad, limit, good), (0.0, LIMIT_SUBSCORE, 1.0)
    if bad > good:
        xs, ys = xs[::-1], ys[::-1]
    return float(np.interp(value, xs, ys))


def _center(a: np.ndarray) -> np.ndarray:
    """Central half (in each direction): clear of a dermoscope's vignette and of the photo's edges.

    Never empty: a one-pixel-high working copy (an extreme panorama) keeps its middle row, so the
    checks measure something instead of averaging over nothing.
    """
    h, w = a.shape[:2]
    return a[h // 4 : max(3 * h // 4, h // 4 + 1), w // 4 : max(3 * w // 4, w // 4 + 1)]


IMMERKAER_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
SMOOTH_SHARE = 0.3  # noise is read where the image is flattest: this share of pixels, by gradient


def _immerkaer_sigma(gray: np.ndarray, smooth_only: bool = False) -> float:
    """Immerkær (1996) noise sigma: a Laplacian-difference kernel cancels smooth structure, MAD-like mean.

    With `smooth_only`, only the flattest pixels count (lowest Sobel gradient), so edges and
    texture (hair, a scaly plaque) are not mistaken for grain.
    """
    response = np.abs(cv2.filter2D(gray, -1, IMMERKAER_KERNEL))[1:-1, 1:-1]
    if not response.size:
        return 0.0
    if smooth_only:
        # cv2.magnitude: the same float32 norm as np.hypot to 1e-7 relative, at a seventh of its cost.
        gradient = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))[1:-1, 1:-1]
        # The cut-off from every 4th pixel of every 4th row: the same quantile, 16x fewer values to sort.
        response = response[gradient <= np.quantile(gradient[::4, ::4], SMOOTH_SHARE)]
    return float(np.sqrt(np.pi / 2) * response.mean() / 6) if response.size else 0.0


class QualityViews:
    """The working copy and what the checks derive from it, each computed once and only if needed.

    `prepare` computes everything that does not depend on the learned gate's verdict, so a
    pipeline can do it while the classifier's forward pass (which yields that verdict) runs.
    """

    def __init__(self, rgb: np.ndarray, config: QualityConfig):
        self._original: np.ndarray | None = rgb  # released by `prepare`, once the noise window is read
        self.rgb = shrink(rgb, config.working_side, fast=True)
        self.config = config

    @cached_property
    def gray(self) -> np.ndarray:  # float32 grey levels 0-255
        return cv2.cvtColor(self.rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)

    @cached_property
    def lab(self) -> np.ndarray:  # float32: L* 0-100, a*, b* centred on 0
        lab = cv2.cvtColor(self.rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
        lab[..., 0] *= 100.0 / 255.0
        lab[..., 1:] -= 128.0
        return lab

    @cached_property
    def skin(self) -> np.ndarray:  # skin-coloured pixels
        return skin_mask(self.rgb)

    @cached_property
    def vignette(self) -> np.ndarray:  # a dermoscope's dark field stop
        return vignette_mask(self.rgb)

    @cached_property
    def region(self) -> np.ndarray:  # skin incl. the lesions inside it
        return skin_region(self.rgb, mask=self.skin, vignette=self.vignette)

    @cached_property
    def grain(self) -> np.ndarray:
        """Grey of a centre window of the image as decoded (native unless it was decoded reduced):
        sensor grain is a pixel-scale property that downscaling averages away, so noise is the one
        measure not read off the working copy."""
        assert self._original is not None, "the full image was released before its noise window was read"
        h, w = self._original.shape[:2]
        side = self.config.noise_window
        top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
        window = np.ascontiguousarray(self._original[top : top + side, left : left + side])
        return cv2.cvtColor(window, cv2.COLOR_RGB2GRAY).astype(np.float32)

    @cached_property
    def sharpness(self) -> float:
        """The classical `sharpness` value: 1 − the blur ratio, inside a dermoscope's field stop only
        (its black disc and rim carry no focus information)."""
        stop = cv2.dilate(self.vignette.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        inside = ~stop if stop.any() and stop.mean() < 0.7 else None
        return 1.0 - blur_ratio(self.gray, inside)

    @cached_property
    def noise_sigma(self) -> float:
        return _immerkaer_sigma(self.grain, smooth_only=True)

    def prepare(self) -> "QualityViews":
        """Compute every view and gate-independent measure now (the costly part of the checks), and let
        go of the full image: from here on the views hold only their small copies."""
        for name in ("lab", "region", "sharpness", "noise_sigma"):
            getattr(self, name)
        self._original = None
        return self


# --- checks: each returns (value, sub-score, hint key) ---
# Directions (dy, dx) the blur ratio is measured along: motion blur destroys detail along one of them only.
BLUR_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))
QUANTISATION = 1.0  # grey levels
BLUR_TAPS = 7  # length of the re-blurring line filter (Crete et al. use 9; 7 px at the working size catches milder blur)


def _line_kernel(dy: int, dx: int) -> np.ndarray:
    kernel = np.zeros((BLUR_TAPS, BLUR_TAPS), np.float32)
    for t in range(-(BLUR_TAPS // 2), BLUR_TAPS // 2 + 1):
        kernel[BLUR_TAPS // 2 + t * dy, BLUR_TAPS // 2 + t * dx] = 1.0 / BLUR_TAPS
    return kernel


BLUR_KERNELS = {direction: _line_kernel(*direction) for direction in BLUR_DIRECTIONS}


def blur_ratio(gray: np.ndarray, inside: np.ndarray | None = None) -> float:
    """No-reference blur (Crete, Dolmiere, Ladret, Nicolas 2007), the worst of four directions.

    Re-blur the image with a line filter along a direction and see how much of its
    neighbour-to-neighbour variation survives: a sharp image loses much of it (ratio
    near 0), an already blurred one almost none (near 1). Being a ratio, it does not
    depend on how much detail the scene has (a smooth naevus, a textured rash).
    `inside` (boolean, optional) restricts it to part of the image, e.g. the field of view.
    An image with no variation beyond quantisation at all (a flat field, a lens cap) has
    nothing in focus: its ratio is 1.
    """
    keep = None if inside is None else inside[2:-2, 2:-2]
    worst, detail = 0.0, False
    for (dy, dx), kernel in BLUR_KERNELS.items():
        blurred = cv2.filter2D(gray, -1, kernel, borderType=cv2.BORDER_REFLECT)

        def step(a: np.ndarray) -> np.ndarray:  # |a(p) - a(p - direction)| away from the 2-px border
            h, w = a.shape
            return np.abs(a[2:h - 2, 2:w - 2] - a[2 - dy:h - 2 - dy, 2 - dx:w - 2 - dx])

        # Steps of a grey level or less are 8-bit quantisation, not detail: on a smooth, blurred
        # image they would otherwise read as fine structure the re-blur removes.
        variation, kept = np.maximum(step(gray) - QUANTISATION, 0.0), np.maximum(step(blurred) - QUANTISATION, 0.0)
        if keep is not None:
            variation, kept = variation[keep], kept[keep]
        lost = np.maximum(0.0, variation - kept)
        total = float(variation.sum())
        if total > 0:
            detail = True
            worst = max(worst, (total - float(lost.sum())) / total)
    return worst if detail else 1.0


def classical_sharpness_subscore(value: float, c: QualityConfig) -> float:
    """Sub-score of the classical measure (1 - blur ratio): `min_sharpness` is the limit."""
    return _ramp(value, c.min_sharpness - 0.4, c.min_sharpness, c.min_sharpness + 0.2)


def blend_sharpness(classical: float, p_blurred: float, c: QualityConfig) -> float:
    """The `sharpness` sub-score from the classical one and the learned, calibrated P(blurred).

    Two sub-scores on the same 0 / 0.6 / 1 anchors as every check: `learned` reaches the
    limit at `max_blur_probability` (1 at P = 0, 0 at P = 1), and `vouched`, the learned
    cue's warrant for sharpness, reaches it at `sharp_probability` and is 0 from
    `max_blur_probability` on. The result is min(learned, max(classical, vouched)): the
    learned cue can always fail an image (it caps the score), can lift a classical failure
    only where it is confident the image is sharp, and in between the classical measure
    decides. Continuous and monotone in both cues, so the score still falls with blur.
    """
    learned = _ramp(p_blurred, 1.0, c.max_blur_probability, 0.0)
    vouched = _ramp(p_blurred, c.max_blur_probability, c.sharp_probability, 0.0)
    return min(learned, max(classical, vouched))


def sharpness_subscore(value: float, p_blurred: float | None, c: QualityConfig) -> float:
    """The `sharpness` sub-score of a classical value (1 - blur ratio) and, if the bundle has the
    head, the learned P(blurred). An image with no detail at all (value 0) has nothing for the
    learned cue to vouch for."""
    classical = classical_sharpness_subscore(value, c)
    if p_blurred is None or value <= 0.0:
        return classical
    return blend_sharpness(classical, p_blurred, c)


def _sharpness(v: QualityViews, c: QualityConfig, p_blurred: float | None = None) -> tuple[float, float, str]:
    # The reported value stays the classical measure; `acceptable` is the blended verdict.
    return v.sharpness, sharpness_subscore(v.sharpness, p_blurred, c), "sharpness"


def sharpness_value(rgb: np.ndarray, config: QualityConfig = QualityConfig()) -> float:
    """The classical `sharpness` value of one image, as `assess_media_validity` measures it."""
    return _sharpness(QualityViews(rgb, config), config)[0]


def _exposure(v: QualityViews, c: QualityConfig) -> tuple[float, float, str]:
    value = float(_center(v.lab[..., 0]).mean())
    center = _center(v.gray)
    crushed, blown = float((center <= 5).mean()), float((center >= 250).mean())
    clip_bad = min(1.0, c.max_clipped * 3)
    dark = min(_ramp(value, c.min_brightness / 4, c.min_brightness, c.min_brightness * 1.75),
               _ramp(crushed, clip_bad, c.max_clipped, c.max_clipped / 3))
    bright = min(_ramp(value, 99.0, c.max_brightness, c.max_brightness - 10),
                 _ramp(blown, clip_bad, c.max_clipped, c.max_clipped / 3))
    return value, min(dark, bright), "exposure_dark" if dark <= bright else "exposure_bright"


def _noise(v: QualityViews, c: QualityConfig) -> tuple[float, float, str]:
    value = v.noise_sigma
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


def _color_cast(v: QualityViews, c: QualityConfig, dermoscopic: bool) -> tuple[float, float, str]:
    # Skin is not grey, so grey-world would flag every skin photo; compare with where skin of any tone lies.
    # A dermoscope's own light tints every image it takes, so that modality gets a wider limit.
    center = _center(v.lab)
    value = _distance_to_skin_chroma(float(center[..., 1].mean()), float(center[..., 2].mean()))
    limit = c.max_color_cast_dermoscopic if dermoscopic else c.max_color_cast
    return value, _ramp(value, limit * 4, limit, 0.0), "colorCast"


def _framing(v: QualityViews, c: QualityConfig, dermoscopic: bool) -> tuple[float, float, str]:
    """Share of the image centre that shows what is analysed.

    A dermoscope touches the skin, so everything inside its field stop is skin or lesion:
    there the share of the centre outside the dark field stop counts (a lesion filling the
    frame is the ideal, not a defect). A clinical photo must show skin in its centre.
    """
    shown = ~_center(v.vignette) if dermoscopic else _center(v.region)
    value = float(shown.mean())
    return value, _ramp(value, c.min_skin_center / 4, c.min_skin_center, min(1.0, c.min_skin_center * 1.75)), "framing"


def _resolution(shape: tuple[int, ...], c: QualityConfig) -> tuple[float, float, str]:
    value = float(min(shape[:2]))
    return value, _ramp(value, c.min_short_side_px / 3.5, c.min_short_side_px, c.min_short_side_px * 1.75), "resolution"


CHECKS: dict[str, Callable[[QualityViews, QualityConfig], tuple[float, float, str]]] = {
    "exposure": _exposure,
    "noise": _noise,
}


def _finite(value: float) -> float:
    """Degenerate images (1 px wide, all one grey) can give NaN or inf; reports hold finite JSON numbers."""
    return float(value) if math.isfinite(value) else 0.0


def _metric(value: float, subscore: float, hint_key: str) -> dict[str, Any]:
    ok = subscore >= LIMIT_SUBSCORE
    return {"value": round(_finite(value), 4), "acceptable": ok, "hint": "" if ok else HINTS[hint_key]}


def _confidence(margin: float, cap: float) -> float:
    """Confidence (percent) in a decision: 50 at the boundary, rising logistically with |margin| to `cap`."""
    return 50.0 + (cap - 50.0) * math.tanh(MARGIN_GAIN * abs(margin))


def _skin_texture(v: QualityViews) -> float:
    """Median 7×7 grey-level std inside the skin mask, with the noise's share removed in quadrature."""
    if not v.skin.any():
        return 0.0
    mean = cv2.blur(v.gray, (7, 7))
    std = np.sqrt(np.maximum(cv2.blur(v.gray * v.gray, (7, 7)) - mean * mean, 0.0))
    texture = float(np.median(std[v.skin]))
    return math.sqrt(max(texture**2 - _immerkaer_sigma(v.gray) ** 2, 0.0))


def classical_gate(v: QualityViews, c: QualityConfig) -> GateProbs:
    """The colour-and-texture fallback for bundles without a learned gate head.

    Domain: a skin-coloured area (YCrCb model, `pipeline.skin`) of at least
    `min_skin_fraction` of the frame outside the field stop, smooth (fur, coffee and
    stained tissue are skin-coloured but textured) and not oversaturated. Modality:
    Dermoscopic when skin fills the field of view, Clinical when a large non-skin
    background shows. Its probabilities are a margin mapped onto caps, the 95 % Wilson
    lower bounds of its hit rates on the ISIC sample and scikit-image photos; Clinical is
    capped at 60 %. On real held-out photographs it is far weaker than the learned gate
    (`dermq bench gate --classical`; docs/image-gate.md), which is why it is only a fallback.
    """
    fraction = skin_fraction(v.rgb, region=v.region, vignette=v.vignette)
    saturation = float(_center(cv2.cvtColor(v.rgb, cv2.COLOR_RGB2HSV)[..., 1]).mean())
    margin = min((fraction - c.min_skin_fraction) / c.min_skin_fraction,
                 (c.max_skin_texture - _skin_texture(v)) / c.max_skin_texture,
                 (c.max_mean_saturation - saturation) / c.max_mean_saturation)
    conf = _confidence(margin, wilson_lower_bound(*MEASURED["domain"])) / 100.0
    p_skin = conf if margin >= 0 else 1.0 - conf
    # Dermoscopic: skin fills the field of view (a dark field stop aside). Clinical: non-skin background.
    background = float((~v.region & ~v.vignette).mean())
    # A visible field stop is itself evidence of a dermoscope, so it buys some extra tolerance for background.
    limit = c.max_background_dermoscopic + (0.1 if v.vignette.mean() > 0.02 else 0.0)
    modality_margin = (limit - background) / limit
    dermoscopic = modality_margin >= 0
    cap = wilson_lower_bound(*MEASURED["modality"]) if dermoscopic else UNVALIDATED_CAP
    modality_conf = _confidence(modality_margin, cap) / 100.0
    p_derm = modality_conf if dermoscopic else 1.0 - modality_conf
    return GateProbs(other=1.0 - p_skin, clinical=p_skin * (1.0 - p_derm), dermoscopic=p_skin * p_derm)


DOMAIN_CONFIDENCE_TEXT = "AI model confidence in the image being dermatological"
MODALITY_CONFIDENCE_TEXT = "AI model confidence in identifying the image's modality as {}"


def assess_media_validity(
    rgb: np.ndarray, config: QualityConfig = QualityConfig(), gate: GateProbs | None = None,
    views: QualityViews | None = None, source_shape: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The `mediaValidity` block for one decoded (EXIF-rotated) HxWx3 uint8 RGB image.

    `gate` holds the learned gate's calibrated probabilities for this image (from the
    classifier's forward pass); without it the classical colour-and-texture gate decides.
    `views`: this image's `QualityViews` (with this config) if already made, e.g. prepared
    while the forward pass ran. `source_shape`: (height, width) of the original when `rgb` was
    decoded reduced; `resolution` judges the original.
    """
    v = views if views is not None else QualityViews(rgb, config)
    gate = gate if gate is not None else classical_gate(v, config)
    is_derm = gate.dermatological >= 0.5
    p_dermoscopic = gate.dermoscopic_given_skin
    dermoscopic = p_dermoscopic >= 0.5
    results = {"sharpness": _sharpness(v, config, gate.blurred)}
    results |= {name: check(v, config) for name, check in CHECKS.items()}
    results["resolution"] = _resolution(source_shape or rgb.shape, config)
    results["colorCast"] = _color_cast(v, config, dermoscopic)
    results["framing"] = _framing(v, config, dermoscopic)
    metrics = {name: _metric(*result) for name, result in results.items()}
    score = round(100.0 * min(_finite(result[1]) for result in results.values()), 1)
    acceptable = score >= config.min_score
    modality = ("Dermoscopic" if dermoscopic else "Clinical") if is_derm else "None"
    return {
        "isValid": bool(acceptable and is_derm),
        "quality": {
            "acceptable": bool(acceptable),
            "score": score,
            "interpretation": interpret_score(score),
            "metrics": metrics,
        },
        # aiConfidence: P(the image is dermatological), in percent.
        "domain": {"isDermatological": bool(is_derm),
                   "additionalData": {"aiConfidence": additional_data(
                       "aiConfidence", DOMAIN_CONFIDENCE_TEXT, round(100.0 * gate.dermatological, 1))}},
        "modality": {
            "value": modality,
            "additionalData": {  # conditional on the image being dermatological
                "aiConfidenceClinical": additional_data(
                    "aiConfidenceClinical", MODALITY_CONFIDENCE_TEXT.format("clinical"),
                    round(100.0 * (1.0 - p_dermoscopic), 1)),
                "aiConfidenceDermoscopic": additional_data(
                    "aiConfidenceDermoscopic", MODALITY_CONFIDENCE_TEXT.format("dermoscopic"),
                    round(100.0 * p_dermoscopic, 1)),
            },
        },
    }
