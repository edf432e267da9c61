"""Classical estimators of the severity signs ("AI items") a skin photograph can show.

Each estimator looks inside a lesion mask and compares it with the surrounding
skin, all in CIELAB (D65, cv2's float conversion). One call of
`estimate_signs` shares the expensive parts (Lab conversion, skin region,
perilesional ring, reference skin colour) between the signs asked for.

- erythema: Δa* = median a* of the lesion surface (scale and pus excluded)
  minus the median a* of a perilesional ring of skin, mapped on [0, 1] through
  ERYTHEMA_ANCHORS.
- desquamation, dryness: share of lesion pixels that are bright, grey and
  rough (scale reflects white light diffusely and is flaky at pixel scale).
- wheals, acneLesions, nodules, pustules, abscesses, tunnels,
  inflammatoryLesions: connected components of "redder than the skin" (and
  pus-coloured) pixels near the lesion, each with a box and a confidence;
  touching lesions count as one. Their measure adds `skinCoverPercent`, the
  share of the skin the lesions cover (each as the ellipse inside its box).
- pustulation: the pustule count on PUSTULATION_ANCHORS.
- lesionArea: lesion as % of the skin in the frame; depigmentation: % of the
  skin much lighter and less chromatic than the reference skin; hairLoss: % of
  the frame whose density of dark thin structures (hairs) is far below that of
  the hairiest parts.
- induration, oedema, lichenification, excoriation, oozing: a photograph shows
  them poorly (elevation, palpable thickness and moisture are not colours);
  the estimates are conservative proxies with a fixed low confidence.
- woundArea and the 23 wound "presence" signs (AWOSI's yes/no items, each a
  0-100 probability): a red-yellow-black classification of the wound bed, see
  `_analyse_wound` and `WOUND_PRESENCE`.

Estimates that draw maps (hairLoss, depigmentation, the wound signs) return
them in `SignEstimate.maps`, float 0..1 at the size they were computed at, for
the report's mask attachments.

aiConfidence is each estimator's measured reliability on phantoms
(`training.phantoms`) with known truth: the 95 % Wilson lower bound of the
hit rate in MEASURED, capped for signs a photo or the phantoms do not show well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np
from scipy import ndimage

from pipeline.quality import wilson_lower_bound
from pipeline.resize import fitted_shape, nearest_mask, shrink
from pipeline.severity.systems import SIGN_KINDS, WOUND_BOOLEANS, SignKind
from pipeline.skin import fill_holes, skin_region, vignette_mask

Anchors = tuple[tuple[float, float], ...]

# The signs the scoring systems name (``systems.SIGN_KINDS``), plus woundArea, which carries the
# wound maps of the AWOSI report.
SIGNS: dict[str, SignKind] = {**SIGN_KINDS, "woundArea": "percent"}
# AWOSI's yes/no wound items, one presence sign (0-100 %) each, named as the item.
WOUND_PRESENCE: tuple[str, ...] = tuple(code for code, _ in WOUND_BOOLEANS)
# The maps the wound signs draw: wound bed, its tissues and the periwound skin.
WOUND_MAPS: tuple[str, ...] = ("erythema", "wound", "angiogenesisAndGranulatedTissue", "biofilmAndSlough", "necrosis",
                               "maceration", "orthopedic", "boneCartilageOrTendon")
# Detection class (key, text) of each count sign's boxes.
DETECTION_CLASSES: dict[str, tuple[str, str]] = {
    "wheals": ("wheal", "Wheal"), "nodules": ("nodule", "Nodule"), "tunnels": ("drainingTunnel", "Draining tunnel"),
    "abscesses": ("abscess", "Abscess"), "acneLesions": ("acne", "Acne"), "pustules": ("pustule", "Pustule"),
    "inflammatoryLesions": ("inflammatoryLesion", "Inflammatory lesion"),
}

# Δa* (lesion minus perilesional skin) -> ordinal severity. Colorimetric erythema studies put the
# threshold of visible redness at a Δa* of about 2-3 units and call differences above ~15-20 units
# severe (Fullerton et al., Contact Dermatitis 1996;35:1-10, ESCD guidelines on skin colour and erythema
# measurement; Takiwaki, Skin Res Technol 1998;4:1-9). The steps between are even, one per grade of a
# 0-4 scale (none, slight, moderate, severe, very severe): value = grade / 4.
ERYTHEMA_ANCHORS: Anchors = ((2.5, 0.0), (6.0, 0.25), (11.0, 0.5), (16.0, 0.75), (21.0, 1.0))
# Share of the lesion covered by scale -> ordinal severity (none, slight, moderate, marked, very marked).
SCALE_ANCHORS: Anchors = ((0.02, 0.0), (0.1, 0.25), (0.25, 0.5), (0.45, 0.75), (0.65, 1.0))
# Pustule count -> pustulation grade, after the GPPGA descriptors: none; occasional discrete pustules;
# groups of discrete pustules; dense pustules; very dense, coalescing.
PUSTULATION_ANCHORS: Anchors = ((0.0, 0.0), (1.0, 0.25), (4.0, 0.5), (8.0, 0.75), (14.0, 1.0))

RED_MIN = 4.0  # Δa* a blob must exceed whatever the image: above the ~2-3 unit visibility threshold
RED_SHARE = 0.4  # ... and this share of the reddest pixels' Δa* near the lesion (adapts to strong redness)
BRIGHT_DL = 8.0  # L* above the reference skin for scale, pus, depigmentation
GREY_CHROMA = 11.0  # C*ab below which a bright pixel is white/grey (scale)
ROUGH = 2.2  # local RMS of L* minus its 1-px blur: flaky scale ~4, skin ~1, a smooth step edge < 2
PUS_DB = 2.0  # b* above the reference skin for a yellow-white pustule head (scale and vitiligo are bluer)
HAIR_CONTRAST = 0.15  # black-hat depth of a hair strand, share of the skin's L* (dark hair on dark skin is subtle)
BALD_SHARE = 0.5  # hair density below this share of the hairiest parts' density is bald
WORK_SIDE = 512  # long side at which the wound maps are computed (colour classes need no finer detail)


@dataclass(frozen=True)
class Detection:
    confidence: float  # 0-100
    code: str  # the sign, e.g. "wheals", "pustules"
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in image pixels (x2, y2 exclusive)


@dataclass
class SignEstimate:
    sign: str
    kind: SignKind
    value: float  # ordinal: severity level in [0, 1]; count: number; percent, presence: 0-100
    confidence: float  # aiConfidence 0-100: this estimator's measured reliability
    measure: dict[str, float]  # the physical measurement behind it, e.g. {"deltaA": 11.2}
    detections: list[Detection] = field(default_factory=list)
    # Maps behind the estimate (HxW float 0..1 at the size it was computed at; binary is >= 0.5).
    maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


# Measured reliability on phantoms: (hits, trials) of `measure_reliability(per_sign=150, seed=2024)`
# (sides 128-320 px, all skin types, both modalities; count signs with the whole frame as the lesion),
# reproduce with `python -m training.sign_reliability 150 2024` (~80 s on one core). A hit: ordinal grade
# (round(4 x value)) within ±1 of the truth's grade; count within ±max(1, 20 %); percent within
# ±max(3 points, 15 %).
MEASURED: dict[str, tuple[int, int]] = {
    "erythema": (149, 150), "desquamation": (150, 150), "dryness": (150, 150), "pustulation": (150, 150),
    "wheals": (150, 150), "acneLesions": (150, 150), "pustules": (149, 150), "nodules": (150, 150),
    "lesionArea": (150, 150), "hairLoss": (139, 150), "depigmentation": (144, 150),
}
# Phantoms are cleaner than photographs (no competing lesions, even light, no make-up or tattoos), so
# until an estimator is measured on real annotated photos its confidence stays at this cap, the same
# policy as pipeline.quality's unvalidated Clinical modality call.
PHANTOM_ONLY_CAP = 60.0
# Caps on top of the measurement. Phantoms draw psoriatic scale, not the fine powdery scale of xerosis,
# so dryness's phantom score says little about dry skin. The rest are signs a photograph shows poorly
# (palpable thickness, swelling, moisture, the depth of an abscess, a tunnel under the skin) and the
# phantoms do not draw at all: fixed low confidences.
UNMEASURED_CAP = 30.0
CAPS: dict[str, float] = {
    "dryness": 50.0, "induration": 25.0, "oedema": 20.0, "lichenification": 20.0, "excoriation": 15.0,
    "oozing": 15.0, "abscesses": 15.0, "tunnels": 10.0,
    # The wound signs are unmeasured (no wound phantoms or annotated wound photos yet). Colour classes of
    # the wound bed get the unmeasured cap; what colour shows only indirectly (depth, exudate type, the
    # shape and relief of the edge) less; white tissue and hardware, which bright slough mimics, least.
    **dict.fromkeys(("bordersDamaged", "bordersThickened", "affectedTissueSubcutaneous", "biofilmCompatibleTissue",
                     "tissueInWoundBedEpithelia", "exudationGreenish"), 15.0),
    **dict.fromkeys(("perilesionalMaceration", "bordersDiffused", "bordersIndistinguishable",
                     "affectedTissueHealedSkin", "tissueInWoundBedScarred", "exudationFibrinous"), 20.0),
    **dict.fromkeys(("affectedTissueBoneAndOrAdjacent", "affectedTissueMuscle", "exudationPurulent",
                     "exudationBloody", "exudationSerous"), 10.0),
}


def confidence_of(sign: str) -> float:
    """aiConfidence of a sign's estimator: the Wilson lower bound of its measured hit rate, capped;
    an unmeasured estimator gets its cap (at most UNMEASURED_CAP)."""
    if sign not in MEASURED:
        return min(CAPS.get(sign, UNMEASURED_CAP), UNMEASURED_CAP)
    measured = min(wilson_lower_bound(*MEASURED[sign]), PHANTOM_ONLY_CAP)
    return round(min(measured, CAPS.get(sign, 100.0)), 1)


def on_anchors(anchors: Anchors, x: float) -> float:
    xs, ys = zip(*anchors)
    return float(np.interp(x, xs, ys))


def _odd(n: float) -> int:
    return max(3, round(n) | 1)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` dilated by a disk: on its bounding box grown by the radius only, since the dilation is
    empty beyond it (the same pixels; a lesion of a few % of a photo costs a few % of a whole-image pass)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    out = np.zeros(mask.shape, bool)
    if not rows.size:
        return out
    y0, y1 = max(0, rows[0] - radius), min(mask.shape[0], rows[-1] + radius + 1)
    x0, x1 = max(0, cols[0] - radius), min(mask.shape[1], cols[-1] + radius + 1)
    out[y0:y1, x0:x1] = cv2.dilate(mask[y0:y1, x0:x1].astype(np.uint8), _disk(radius)).astype(bool)
    return out


def _local_rms(x: np.ndarray, window: int) -> np.ndarray:
    return np.sqrt(cv2.blur(x * x, (window, window)))


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    """A region decided as a whole, as a 0..1 map with a soft edge (>= 0.5 is the region, up to the edge)."""
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(0.5, sigma))


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


class _Scene:
    """What every estimator needs, computed at most once per call."""

    def __init__(self, rgb: np.ndarray, lesion: np.ndarray, skin: np.ndarray | None,
                 vignette: np.ndarray | None = None) -> None:
        self.rgb = rgb
        self.lesion = lesion.astype(bool)
        self._skin = skin
        self._vignette = vignette
        self.side = min(rgb.shape[:2])
        self.px = self.side / 256.0

    @cached_property
    def raw(self) -> np.ndarray:
        return cv2.cvtColor(self.rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)

    @cached_property
    def lab(self) -> np.ndarray:
        """Lab slightly smoothed: colour decisions should not follow 8-bit and sensor noise."""
        return cv2.GaussianBlur(self.raw, (0, 0), max(0.8, 0.8 * self.px))

    @cached_property
    def field(self) -> np.ndarray:
        return ~(vignette_mask(self.rgb) if self._vignette is None else self._vignette)

    @cached_property
    def skin(self) -> np.ndarray:
        skin = skin_region(self.rgb) if self._skin is None else self._skin.astype(bool)
        return (skin | self.lesion) & self.field

    @cached_property
    def ring(self) -> np.ndarray:
        """Perilesional skin: the lesion grown by ~4 % of the image side, minus the lesion and its rim."""
        rim = _grow(self.lesion, max(2, round(2 * self.px)))
        ring = _grow(self.lesion, max(3, round(self.side / 25))) & ~rim & self.skin
        least = max(20, int(0.002 * self.lesion.size))
        for fallback in (ring, self.skin & ~rim, self.skin, self.field):
            if fallback.sum() >= least:
                return fallback
        return np.ones_like(self.lesion)

    @cached_property
    def reference(self) -> np.ndarray:
        """Median L*, a*, b* of the perilesional skin."""
        return np.median(self.lab[self.ring], axis=0)

    @cached_property
    def chroma(self) -> np.ndarray:
        """C*ab, unsmoothed: thin white flakes would take up the red of the plaque around them."""
        return cv2.magnitude(np.ascontiguousarray(self.raw[..., 1]), np.ascontiguousarray(self.raw[..., 2]))

    @cached_property
    def roughness(self) -> np.ndarray:
        """Local RMS of the finest L* detail: flaky scale is rough, skin and smooth edges are not."""
        L = self.raw[..., 0]
        return _local_rms(L - cv2.GaussianBlur(L, (0, 0), 1.0), _odd(5 * self.px))

    @cached_property
    def bright(self) -> np.ndarray:
        return self.lab[..., 0] - self.reference[0] > BRIGHT_DL

    @cached_property
    def whites(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, depigmented): bright grey areas split by their median roughness. Deciding per area, not
        per pixel, keeps the rough rim of a smooth white patch (a step edge) out of the scale."""
        ref_chroma = float(np.hypot(self.reference[1], self.reference[2]))
        # Bright, or a little brighter and much greyer (vitiligo on fair skin differs more in b* than in L*).
        lighter = self.bright | ((self.lab[..., 0] - self.reference[0] > BRIGHT_DL / 2) & (self.chroma < 0.6 * ref_chroma))
        white = (lighter & (self.chroma < GREY_CHROMA) & self.skin).astype(np.uint8)
        n, labels = cv2.connectedComponents(white, connectivity=8)
        if n <= 1:
            empty = np.zeros_like(self.lesion)
            return empty, empty
        rough = np.zeros(n, bool)
        # scipy sorts every value it is given: only the white pixels' (a 1024-px photo: 70 -> ~1 ms).
        inside = labels > 0
        rough[1:] = np.asarray(ndimage.median(self.roughness[inside], labels[inside], np.arange(1, n))) > ROUGH
        return rough[labels] & (labels > 0), ~rough[labels] & (labels > 0)

    @cached_property
    def scale(self) -> np.ndarray:
        return self.whites[0]

    @cached_property
    def pus(self) -> np.ndarray:
        return self.bright & (self.lab[..., 2] - self.reference[2] > PUS_DB) & (self.lab[..., 1] < self.reference[1] + 4)

    @cached_property
    def delta_a(self) -> np.ndarray:
        return self.lab[..., 1] - self.reference[1]

    @cached_property
    def search(self) -> np.ndarray:
        """Where blobs are looked for: the lesion and a margin around it, inside the field of view."""
        return _grow(self.lesion, max(3, round(self.side / 20))) & self.field

    @cached_property
    def red_threshold(self) -> float:
        values = self.delta_a[self.search]
        return max(RED_MIN, RED_SHARE * float(np.percentile(values, 99))) if values.size else RED_MIN

    @cached_property
    def hair(self) -> np.ndarray:
        """Dark thin structures: L* black-hat deeper than a share of the skin's L* (taken between the hairs).
        The structuring disk (~3 % of the side) is wider than a tuft of crossing hairs, so dense hair reads as hair."""
        L = self.raw[..., 0]
        skin_l = float(np.percentile(L[self.field], 75)) if self.field.any() else 50.0
        depth = cv2.morphologyEx(L, cv2.MORPH_BLACKHAT, _disk(max(2, round(self.side / 32))))
        return depth > max(4.0, HAIR_CONTRAST * skin_l)

    @cached_property
    def blobs(self) -> tuple[int, np.ndarray, np.ndarray]:
        """Connected components of red (and pus-headed) areas, holes filled: (n, labels, stats).

        Hysteresis keeps a wheal's paler centre attached to its red rim; hairs crossing a blob are
        bridged (only hair pixels, so neighbouring blobs separated by skin stay apart)."""
        high = self.delta_a > self.red_threshold
        low = self.delta_a > 0.5 * self.red_threshold
        red = (_hysteresis(low, high) | self.pus) & self.search
        red = cv2.morphologyEx(red.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
        bridged = cv2.morphologyEx(red, cv2.MORPH_CLOSE, _disk(max(2, round(2 * self.px))))
        red |= (bridged.astype(bool) & self.hair).astype(np.uint8)
        filled = fill_holes(red.astype(bool)).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(filled, connectivity=8)
        return n, labels, stats

    @cached_property
    def working(self) -> _Scene:
        """This scene with its long side at most WORK_SIDE (itself when already that small)."""
        hw = fitted_shape(self.rgb.shape, WORK_SIDE)
        if hw == self.rgb.shape[:2]:
            return self
        return _Scene(shrink(self.rgb, WORK_SIDE), nearest_mask(self.lesion, hw), nearest_mask(self.skin, hw))

    @cached_property
    def wound(self) -> _Wound:
        return _analyse_wound(self.working)


def _hysteresis(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Components of `low` that contain a `high` pixel."""
    n, labels = cv2.connectedComponents(low.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[high & low])] = True
    keep[0] = False
    return keep[labels]


# ---------------------------------------------------------------- ordinal signs


def _erythema_measure(s: _Scene) -> dict[str, float]:
    surface = s.lesion & ~s.bright
    surface = surface if surface.sum() >= 5 else s.lesion
    if not surface.any():
        return {"deltaA": 0.0, "lesionA": float(s.reference[1]), "skinA": float(s.reference[1])}
    lesion_a = float(np.median(s.lab[..., 1][surface]))
    return {"deltaA": lesion_a - float(s.reference[1]), "lesionA": lesion_a, "skinA": float(s.reference[1])}


def _erythema(s: _Scene) -> tuple[float, dict[str, float]]:
    m = _erythema_measure(s)
    return on_anchors(ERYTHEMA_ANCHORS, m["deltaA"]), m


def _scale_share(s: _Scene) -> float:
    return float(s.scale[s.lesion].mean()) if s.lesion.any() else 0.0


def _desquamation(s: _Scene) -> tuple[float, dict[str, float]]:
    share = _scale_share(s)
    return on_anchors(SCALE_ANCHORS, share), {"scaleFraction": share}


def _relief(s: _Scene) -> float:
    """0-1: how much steeper L* is at the lesion edge than in the skin (raised edges shade)."""
    if not s.lesion.any():
        return 0.0
    L = s.lab[..., 0]
    grad = cv2.magnitude(cv2.Sobel(L, cv2.CV_32F, 1, 0), cv2.Sobel(L, cv2.CV_32F, 0, 1))
    edge = _grow(s.lesion, 2) & ~cv2.erode(s.lesion.astype(np.uint8), _disk(2)).astype(bool)
    ratio = np.percentile(grad[edge], 90) / max(float(np.percentile(grad[s.ring], 90)), 1e-3)
    return float(np.clip((ratio - 1.0) / 8.0, 0.0, 1.0))


def _raised(s: _Scene) -> tuple[float, dict[str, float]]:
    """Induration / oedema: a plaque's thickness follows its redness in practice, and a photo shows
    elevation only as shading at the edge; the proxy blends the two and is trusted little (CAPS)."""
    red, m = _erythema(s)
    relief = _relief(s)
    return float(np.clip(0.7 * red + 0.3 * relief, 0.0, 1.0)), {"deltaA": m["deltaA"], "edgeRelief": relief}


def _lichenification(s: _Scene) -> tuple[float, dict[str, float]]:
    """Exaggerated skin markings: fine L* texture of the lesion (scale excluded) against the skin's."""
    surface = s.lesion & ~s.scale
    if not surface.any():
        return 0.0, {"textureRatio": 1.0}
    ratio = float(np.median(s.roughness[surface]) / max(float(np.median(s.roughness[s.ring])), 1e-3))
    return float(np.clip((ratio - 1.2) / 2.0, 0.0, 1.0)), {"textureRatio": ratio}


def _excoriation(s: _Scene) -> tuple[float, dict[str, float]]:
    """Scratch marks: thin, elongated, strongly red streaks inside the lesion (share of its area)."""
    if not s.lesion.any():
        return 0.0, {"streakFraction": 0.0}
    red = ((s.delta_a > 2 * s.red_threshold) & s.lesion).astype(np.uint8)
    opened = cv2.morphologyEx(red, cv2.MORPH_OPEN, _disk(max(2, round(3 * s.px))))
    streaks = float(((red > 0) & (opened == 0)).sum() / s.lesion.sum())
    return float(np.clip(streaks / 0.1, 0.0, 1.0)), {"streakFraction": streaks}


def _oozing(s: _Scene) -> tuple[float, dict[str, float]]:
    """Crust and exudate: honey-yellow pixels (b* well above the skin, not as bright as pus)."""
    if not s.lesion.any():
        return 0.0, {"crustFraction": 0.0}
    crust = (s.lab[..., 2] - s.reference[2] > 8.0) & (np.abs(s.lab[..., 0] - s.reference[0]) < 15.0) & s.lesion
    share = float(crust.sum() / s.lesion.sum())
    return float(np.clip(share / 0.3, 0.0, 1.0)), {"crustFraction": share}


# ---------------------------------------------------------------- counts


@dataclass(frozen=True)
class _BlobRule:
    """Which blobs a count sign counts. Areas are shares of the image."""

    min_area: float
    max_area: float = 0.25
    needs_pus: bool = False
    elongated: bool = False  # tunnels: long and thin
    compact: bool = False  # papules: roughly round, not streaks or plaque edges


BLOB_RULES: dict[str, _BlobRule] = {
    "wheals": _BlobRule(1.5e-4),
    "acneLesions": _BlobRule(1.2e-4, max_area=0.01),
    "nodules": _BlobRule(1.2e-3),
    "abscesses": _BlobRule(1.2e-3, needs_pus=True),
    "tunnels": _BlobRule(6e-4, elongated=True),
    "inflammatoryLesions": _BlobRule(1.2e-4, max_area=0.01, compact=True),
}


def _blob_confidence(s: _Scene, delta_a: np.ndarray) -> float:
    """High when the blob (its Δa* values) is clearly redder than the threshold that found it."""
    contrast = float(np.median(delta_a)) / s.red_threshold
    return float(np.clip(50.0 + 40.0 * (contrast - 1.0), 30.0, 99.0))


def _elongation(inside: np.ndarray) -> float:
    ys, xs = np.nonzero(inside)
    if xs.size < 5:
        return 1.0
    evals = np.linalg.eigvalsh(np.cov(np.stack([xs, ys]).astype(np.float64)))
    return float(np.sqrt(evals[-1] / max(evals[0], 1e-6)))


def _blob_detections(s: _Scene, sign: str) -> list[Detection]:
    rule = BLOB_RULES[sign]
    n, labels, stats = s.blobs
    total = s.lesion.size
    found = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if not rule.min_area * total <= area <= rule.max_area * total:
            continue
        inside = labels[y:y + h, x:x + w] == i
        if rule.needs_pus and not s.pus[y:y + h, x:x + w][inside].any():
            continue
        if rule.elongated and _elongation(inside) < 3.0:
            continue
        if rule.compact and _elongation(inside) > 2.5:
            continue
        confidence = _blob_confidence(s, s.delta_a[y:y + h, x:x + w][inside])
        found.append(Detection(round(confidence, 1), sign, (x, y, x + w, y + h)))
    return found


def _pustule_detections(s: _Scene) -> list[Detection]:
    """Pus-coloured heads near the lesion, each boxed by the red blob around it when there is one."""
    heads = (s.pus & s.search).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(heads, connectivity=8)
    _, blob_labels, blob_stats = s.blobs
    found = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < max(2, 2e-5 * heads.size):
            continue
        owner = np.bincount(blob_labels[labels == i]).argmax()
        if owner:
            bx, by, bw, bh, _ = (int(v) for v in blob_stats[owner])
            x, y, w, h = bx, by, bw, bh
        contrast = float(np.median(s.lab[..., 2][labels == i]) - s.reference[2]) / PUS_DB
        found.append(Detection(round(float(np.clip(50 + 25 * (contrast - 1), 30, 99)), 1), "pustules",
                               (x, y, x + w, y + h)))
    return found


def _counted(s: _Scene, detections: list[Detection]) -> tuple[float, dict[str, float]]:
    mean_conf = float(np.mean([d.confidence for d in detections])) if detections else 0.0
    # Each lesion as the ellipse inscribed in its box: a box overstates a round papule by 4/pi.
    covered = sum(np.pi / 4 * (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) for d in detections)
    cover = float(min(100.0, 100.0 * covered / max(int(s.skin.sum()), 1)))
    return float(len(detections)), {"count": float(len(detections)), "meanDetectionConfidence": mean_conf,
                                    "skinCoverPercent": cover}


def _pustulation(s: _Scene) -> tuple[float, dict[str, float]]:
    count = len(_pustule_detections(s))
    return on_anchors(PUSTULATION_ANCHORS, count), {"pustules": float(count)}


# ---------------------------------------------------------------- percentages


def _lesion_area(s: _Scene) -> tuple[float, dict[str, float]]:
    skin = int(s.skin.sum())
    lesion = int((s.lesion & s.skin).sum())
    pct = 100.0 * lesion / skin if skin else 0.0
    return pct, {"lesionPixels": float(lesion), "skinPixels": float(skin), "imagePercent": 100.0 * s.lesion.mean()}


def _depigmentation(s: _Scene) -> tuple[float, dict[str, float]]:
    """Skin much lighter and greyer than the reference skin, in smooth areas (scale is rough)."""
    white = s.whites[1]
    skin = max(int(s.skin.sum()), 1)
    pct = 100.0 * white.sum() / skin
    return pct, {"depigmentedPixels": float(white.sum()), "skinPixels": float(skin),
                 "deltaL": float(np.median(s.lab[..., 0][white]) - s.reference[0]) if white.any() else 0.0}


def _hair_density(s: _Scene) -> tuple[np.ndarray, float]:
    """Local density of hair pixels and that of the hairiest parts (its 95th percentile in the frame)."""
    density = cv2.blur(s.hair.astype(np.float32), (_odd(s.side / 12),) * 2)
    return density, float(np.percentile(density[s.field], 95)) if s.field.any() else 0.0


def _hair_loss(s: _Scene) -> tuple[float, dict[str, float]]:
    """Share of the frame whose hair density is below BALD_SHARE of the hairiest parts' (95th percentile)."""
    density, full = _hair_density(s)
    area = s.field
    if full < 0.05:  # no hair anywhere in the frame
        return 100.0, {"hairDensity": full, "baldPixels": float(area.sum())}
    bald = (density < BALD_SHARE * full) & area
    return 100.0 * bald.sum() / max(int(area.sum()), 1), {"hairDensity": full, "baldPixels": float(bald.sum())}


def _hair_maps(s: _Scene) -> dict[str, np.ndarray]:
    """hair: density relative to the hairiest parts, stretched so BALD_SHARE lands on 0.5; baldness: its complement."""
    density, full = _hair_density(s)
    hair = np.zeros(density.shape, np.float32) if full < 0.05 else \
        np.interp(density / full, (0.0, BALD_SHARE, 1.0), (0.0, 0.5, 1.0)).astype(np.float32)
    inside = s.field.astype(np.float32)
    return {"hair": hair * inside, "baldness": (1.0 - hair) * inside}


def _depigmentation_maps(s: _Scene) -> dict[str, np.ndarray]:
    """Both regions are decided as wholes (skin colour cluster; smooth white areas): soft-edged masks."""
    return {"skin": _soft(s.skin, s.px), "depigmentation": _soft(s.whites[1], s.px)}


# ---------------------------------------------------------------- wounds


@dataclass(frozen=True)
class _Wound:
    maps: dict[str, np.ndarray]  # WOUND_MAPS at the working size
    presence: dict[str, float]  # WOUND_PRESENCE, 0-100
    evidence: dict[str, dict[str, float]]  # per presence sign, the measurements it comes from
    area_percent: float  # wound bed, % of the skin in the frame


def _tissue_colours(lab: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
    """Soft (0..1) red-yellow-black wound-bed classes, the usual colour reading of a wound bed.

    red (granulation): a* at least ~20 above the skin's and a red hue (h_ab below ~42°; skin is
    ~50-60°); yellow (slough, fibrin): a yellow hue (above ~68°), b* well above the skin's, not dark;
    black (necrosis, eschar): dark (L* below 35, or 25 under the skin's) and nearly achromatic."""
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    chroma, hue = np.hypot(a, b), np.degrees(np.arctan2(b, a))
    return {
        "red": _sigmoid((a - ref[1] - 20.0) / 3.0) * _sigmoid((42.0 - hue) / 4.0),
        "yellow": _sigmoid((hue - 68.0) / 4.0) * _sigmoid((b - ref[2] - 10.0) / 3.0) * _sigmoid((L - 45.0) / 4.0),
        "black": _sigmoid((min(float(ref[0]) - 25.0, 35.0) - L) / 3.0) * _sigmoid((30.0 - chroma) / 4.0),
    }


def _wound_bed(s: _Scene, colours: dict[str, np.ndarray]) -> np.ndarray:
    """Wound-tissue-coloured regions on or beside the skin: hairs opened away, tissues merged, holes filled;
    the regions touching the segmented lesion when any do (a red towel elsewhere is no wound)."""
    r = max(1, round(1.5 * s.px))
    tissue = cv2.morphologyEx(np.maximum.reduce(list(colours.values())).astype(np.float32), cv2.MORPH_OPEN, _disk(r))
    near_skin = _grow(s.skin, max(3, round(s.side / 20))) | s.lesion
    bed = cv2.morphologyEx(((tissue >= 0.5) & near_skin & s.field).astype(np.uint8), cv2.MORPH_CLOSE, _disk(2 * r))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fill_holes(bed.astype(bool)).astype(np.uint8), connectivity=8)
    big = np.zeros(n, bool)
    big[1:] = stats[1:, cv2.CC_STAT_AREA] >= max(30, 0.002 * labels.size)
    touching = np.zeros(n, bool)
    touching[np.unique(labels[_grow(s.lesion, 2 * r)])] = True
    keep = big & touching if (big & touching).any() else big
    return keep[labels]


def _share(m: np.ndarray, region: np.ndarray) -> float:
    return float((m[region] >= 0.5).mean()) if region.any() else 0.0


def _presence(share: float, half: float, width: float) -> float:
    """0-100: a logistic step of a share (half: the share read as 50 %; width: its softness)."""
    return float(100.0 * _sigmoid((share - half) / width))


def _analyse_wound(s: _Scene) -> _Wound:
    """The wound bed, its tissues and the periwound skin from colour, and AWOSI's 23 yes/no items as
    presence probabilities. Every probability is a heuristic reading of these maps, unvalidated (no
    annotated wound photographs yet), hence the low confidences (CAPS):

    - open wound (`affectedTissueDermisEpidermis`): the wound bed covers over ~0.4 % of the frame;
      `tissueInWoundBedScarred` and `affectedTissueHealedSkin` are its complement (no open bed found).
    - `tissueInWoundBedGranulation` / `Slough` / `Necrotic`: red / yellow / black tissue on over ~5 % of the
      bed; `exudationFibrinous`: yellow on over ~3 % (fibrin is the yellow layer);
      `biofilmCompatibleTissue`: yellow plus glistening film on over ~8 %.
    - `tissueInWoundBedEpithelia`: pink (a* 4-18 over the skin, not darker) on over ~25 % of the bed's
      inner edge band.
    - `affectedTissueSubcutaneous`: any of granulation, slough or necrosis (they form in full-thickness loss);
      `affectedTissueMuscle`: dark red (L* < 35) on over ~10 %; `affectedTissueBoneAndOrAdjacent`: white
      or pale-yellow tissue (the `orthopedic` and `boneCartilageOrTendon` maps) on over ~3 %. Bright slough
      and specular highlights mimic both: the weakest of the items.
    - `exudationSerous`: specular highlights (wet sheen) on over ~1 %; `exudationBloody`: vivid red
      (C*ab > 65, dark: granulation is nearly as red, so this one is weak); `exudationPurulent`: bright cream
      to yellow-green (h_ab 98-110°; slough is ~85-95°); `exudationGreenish`: green
      (h_ab > 110°): each on over a few % of the bed.
    - borders, from the colour difference ΔE across the wound's edge (median Lab of a band inside minus one
      outside): `bordersDelimited` ΔE > ~15, `bordersDiffused` < ~10, `bordersIndistinguishable` < ~6 (or no
      wound found); `bordersThickened`: the outer band lighter than the skin (rolled, keratotic edges);
      `bordersDamaged`: an irregular outline (perimeter² / 4π·area above ~2).
    - `perilesionalErythema`: over ~15 % of a ring of skin around the wound (~8 % of the image side wide)
      at Δa* > 6 (the "slight" erythema step); `perilesionalMaceration`: over ~8 % of it white and wet
      (8 L* lighter and much greyer than the skin).
    Items of the bed and its edge are scaled by the open-wound probability.
    """
    first = _tissue_colours(s.lab, np.median(s.lab[s.skin], axis=0) if s.skin.any() else s.reference)
    wound = _wound_bed(s, first)
    ring_r = max(3, round(s.side / 12))
    far_skin = s.skin & ~_grow(wound, 2 * ring_r)
    ref = np.median(s.lab[far_skin], axis=0) if far_skin.sum() >= 50 else s.reference
    colours = _tissue_colours(s.lab, ref)
    L, a, b = s.lab[..., 0], s.lab[..., 1], s.lab[..., 2]
    chroma, hue = np.hypot(a, b), np.degrees(np.arctan2(b, a))
    bed_map = _soft(wound, s.px)
    ring = _grow(wound, ring_r) & ~wound & s.skin

    pale = _sigmoid((L - max(72.0, float(ref[0]) + 12.0)) / 3.0)
    sheen = _sigmoid((L - cv2.GaussianBlur(L, (0, 0), 3 * s.px) - 10.0) / 2.0) * _sigmoid((15.0 - chroma) / 3.0)
    ref_chroma = float(np.hypot(ref[1], ref[2]))
    maps = {
        "erythema": _sigmoid((a - ref[1] - 6.0) / 1.5) * ring,
        "wound": bed_map,
        "angiogenesisAndGranulatedTissue": colours["red"] * bed_map,
        "biofilmAndSlough": colours["yellow"] * bed_map,
        "necrosis": colours["black"] * bed_map,
        "maceration": _sigmoid((L - ref[0] - 8.0) / 2.5) * _sigmoid((0.6 * ref_chroma - chroma) / 2.0) * ring,
        "orthopedic": pale * _sigmoid((6.0 - chroma) / 1.5) * bed_map,  # white-grey, achromatic
        "boneCartilageOrTendon": pale * _sigmoid((chroma - 6.0) / 1.5) * _sigmoid((25.0 - chroma) / 3.0)
        * _sigmoid((hue - 60.0) / 6.0) * bed_map,  # pale yellow-white
    }
    maps = {k: np.clip(v, 0.0, 1.0).astype(np.float32) for k, v in maps.items()}
    red = colours["red"]
    inner = {
        "darkRed": red * _sigmoid((35.0 - L) / 3.0) * _sigmoid((50.0 - chroma) / 4.0),
        "vividRed": red * _sigmoid((chroma - 65.0) / 3.0) * _sigmoid((40.0 - L) / 3.0),
        "creamy": _sigmoid((hue - 98.0) / 3.0) * _sigmoid((110.0 - hue) / 3.0) * _sigmoid((L - 65.0) / 3.0)
        * _sigmoid((chroma - 20.0) / 3.0),
        "green": _sigmoid((hue - 110.0) / 5.0) * _sigmoid((chroma - 12.0) / 3.0),
        "sheen": sheen,
    }
    g, y, n = (_share(maps[k], wound) for k in ("angiogenesisAndGranulatedTissue", "biofilmAndSlough", "necrosis"))
    white = _share(np.maximum(maps["orthopedic"], maps["boneCartilageOrTendon"]), wound)
    shares = {k: _share(v, wound) for k, v in inner.items()}

    band = max(2, round(s.side / 80))
    inside = wound & ~cv2.erode(wound.astype(np.uint8), _disk(band)).astype(bool)
    outside = _grow(wound, band) & ~wound & s.field
    pink = (_sigmoid((a - ref[1] - 4.0) / 1.5) * _sigmoid((ref[1] + 18.0 - a) / 2.0)
            * _sigmoid((L - ref[0] + 5.0) / 3.0))
    epithelia = _share(pink, inside)  # new epithelium grows in from the margin
    delta_e = (float(np.linalg.norm(np.median(s.lab[inside], axis=0) - np.median(s.lab[outside], axis=0)))
               if inside.any() and outside.any() else 0.0)
    rim_light = float(np.median(L[outside]) - ref[0]) if outside.any() else 0.0
    irregularity = _irregularity(wound)
    erythema_ring, maceration_ring = _share(maps["erythema"], ring), _share(maps["maceration"], ring)

    wound_frac = float(wound.sum() / max(int(s.field.sum()), 1))
    open_p = _presence(wound_frac, 0.004, 0.0012)
    bed = open_p / 100.0
    tissue = {"tissueInWoundBedGranulation": _presence(g, 0.05, 0.015),
              "tissueInWoundBedSlough": _presence(y, 0.05, 0.015),
              "tissueInWoundBedNecrotic": _presence(n, 0.05, 0.015)}
    in_bed = {
        **tissue,
        "tissueInWoundBedEpithelia": _presence(epithelia, 0.25, 0.07),
        "affectedTissueSubcutaneous": max(tissue.values()),
        "affectedTissueMuscle": _presence(shares["darkRed"], 0.10, 0.03),
        "affectedTissueBoneAndOrAdjacent": _presence(white, 0.03, 0.01),
        "bordersDelimited": float(100 * _sigmoid((delta_e - 15.0) / 4.0)),
        "bordersDiffused": float(100 * _sigmoid((10.0 - delta_e) / 3.0)),
        "bordersThickened": float(100 * _sigmoid((rim_light - 3.0) / 1.5)),
        "bordersDamaged": float(100 * _sigmoid((irregularity - 2.0) / 0.35)),
        "perilesionalErythema": _presence(erythema_ring, 0.15, 0.05),
        "perilesionalMaceration": _presence(maceration_ring, 0.08, 0.03),
        "biofilmCompatibleTissue": _presence(y + shares["sheen"], 0.08, 0.03),
        "exudationFibrinous": _presence(y, 0.03, 0.01),
        "exudationPurulent": _presence(shares["creamy"], 0.08, 0.03),
        "exudationBloody": _presence(shares["vividRed"], 0.08, 0.03),
        "exudationSerous": _presence(shares["sheen"], 0.01, 0.004),
        "exudationGreenish": _presence(shares["green"], 0.03, 0.01),
    }
    presence = {k: v * bed for k, v in in_bed.items()}
    presence.update({
        "affectedTissueDermisEpidermis": open_p,
        "tissueInWoundBedScarred": 100.0 - open_p,
        "affectedTissueHealedSkin": 100.0 - open_p,
        "bordersIndistinguishable": max(100.0 - open_p, bed * float(100 * _sigmoid((6.0 - delta_e) / 1.5))),
    })
    measured = {"woundFraction": wound_frac, "granulationShare": g, "sloughShare": y, "necrosisShare": n,
                "whiteTissueShare": white, "epitheliaEdgeShare": epithelia, "edgeDeltaE": delta_e,
                "rimLightness": rim_light, "irregularity": irregularity, "erythemaRingShare": erythema_ring,
                "macerationRingShare": maceration_ring, **{f"{k}Share": v for k, v in shares.items()}}
    evidence = {sign: measured for sign in WOUND_PRESENCE}
    skin = max(int((s.skin | wound).sum()), 1)
    return _Wound(maps, {k: round(float(np.clip(v, 0.0, 100.0)), 1) for k, v in presence.items()}, evidence,
                  100.0 * float(wound.sum()) / skin)


def _irregularity(region: np.ndarray) -> float:
    """perimeter² / (4π area) of the largest component: 1 for a disc, larger for ragged outlines."""
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return 1.0
    largest = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(largest)
    return float(cv2.arcLength(largest, True) ** 2 / (4 * np.pi * area)) if area > 0 else 1.0


def _wound_area(s: _Scene) -> tuple[float, dict[str, float]]:
    return s.wound.area_percent, {"woundFraction": s.wound.evidence[WOUND_PRESENCE[0]]["woundFraction"]}


def _presence_estimator(sign: str) -> Estimator:
    def presence(s: _Scene) -> tuple[float, dict[str, float]]:
        return s.wound.presence[sign], s.wound.evidence[sign]

    return presence


# ---------------------------------------------------------------- dispatch

Estimator = Callable[[_Scene], tuple[float, dict[str, float]]]


Counter = Callable[[_Scene], tuple[float, dict[str, float], list[Detection]]]


def _count_estimator(sign: str) -> Counter:
    def count(s: _Scene) -> tuple[float, dict[str, float], list[Detection]]:
        detections = _pustule_detections(s) if sign == "pustules" else _blob_detections(s, sign)
        return (*_counted(s, detections), detections)

    return count


ESTIMATORS: dict[str, Estimator] = {
    "erythema": _erythema, "desquamation": _desquamation, "dryness": _desquamation, "induration": _raised,
    "oedema": _raised, "lichenification": _lichenification, "excoriation": _excoriation, "oozing": _oozing,
    "pustulation": _pustulation, "lesionArea": _lesion_area, "depigmentation": _depigmentation,
    "hairLoss": _hair_loss,
}
ESTIMATORS.update({"woundArea": _wound_area, **{sign: _presence_estimator(sign) for sign in WOUND_PRESENCE}})
COUNTERS = {sign: _count_estimator(sign) for sign, kind in SIGNS.items() if kind == "count"}
# Signs whose estimate carries maps, and how they are drawn (shared work is cached on the scene).
MAPPERS: dict[str, Callable[[_Scene], dict[str, np.ndarray]]] = {
    "hairLoss": _hair_maps, "depigmentation": _depigmentation_maps,
    **{sign: (lambda s: s.wound.maps) for sign in ("woundArea", *WOUND_PRESENCE)},
}


def estimate_signs(rgb: np.ndarray, lesion: np.ndarray, skin: np.ndarray | None,
                   signs: Iterable[str], *, vignette: np.ndarray | None = None) -> dict[str, SignEstimate]:
    """Estimate each requested sign inside `lesion` (HxW bool) against the surrounding `skin` (HxW bool;
    None: `pipeline.skin.skin_region` of the image). `vignette`: the image's `vignette_mask`, when the
    caller has it already. Unknown sign names raise ValueError."""
    wanted = list(dict.fromkeys(signs))
    unknown = [sign for sign in wanted if sign not in SIGNS]
    if unknown:
        raise ValueError(f"unknown signs {unknown}; known: {', '.join(SIGNS)}")
    if any(m is not None and m.shape != rgb.shape[:2] for m in (lesion, skin, vignette)):
        raise ValueError("lesion, skin and vignette masks must have the image's height and width")
    scene = _Scene(rgb, lesion, skin, vignette)
    out: dict[str, SignEstimate] = {}
    for sign in wanted:
        if sign in COUNTERS:
            value, measure, detections = COUNTERS[sign](scene)
        else:
            (value, measure), detections = ESTIMATORS[sign](scene), []
        out[sign] = SignEstimate(sign, SIGNS[sign], round(float(value), 3), confidence_of(sign),
                                 {k: round(float(v), 3) for k, v in measure.items()}, detections,
                                 MAPPERS[sign](scene) if sign in MAPPERS else {})
    return out
