"""Synthetic skin photographs ("phantoms") with exact ground truth.

No clinical image set can be downloaded in the build environment, so tests,
benchmarks and model training use these renderings. Every image is a
deterministic function of its seed (numpy Generator) and comes with what was
drawn: the lesion mask, its ICD-11 label, the Fitzpatrick type, the modality,
the erythema as the true Δa* (CIELAB a* of the erythematous lesion surface
minus the perilesional skin), the scale (desquamation) cover fraction, the
spot boxes of countable lesions, and the depigmented / hair-loss fractions.

Rendering works in CIELAB (the space the estimators measure in):
1. skin: a base colour per Fitzpatrick type (below) with a small jitter;
2. lesions: each class draws its items as blended colour layers, either
   absolute colours (pigment, depigmentation, pus, scale) or shifts relative to
   the local skin (erythema), so the drawn Δa* is known exactly;
3. ground truth is read off the canvas before anything that is not skin or
   lesion (hairs) is added;
4. hairs, low-frequency shading and pore/micro-relief texture (both change L*
   only, so Δa* is untouched), conversion to 8-bit sRGB, the dermoscope's
   circular field stop, then the requested defects.

Skin colours follow the individual typology angle ITA° = atan((L*-50)/b*)
(Chardon et al. 1991; Del Bino et al. 2006: very light > 55°, light 41-55°,
intermediate 28-41°, tan 10-28°, brown -30-10°, dark < -30°), one category
per Fitzpatrick type I-VI; ITA of the chosen colours: 62, 47, 31, 11, -18, -51°.
Colour layers are driven by the `_Look` table, one row per class, so adding a
class means adding a row and, at most, a colour palette.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

Lab = tuple[float, float, float]
Box = tuple[int, int, int, int]
Window = tuple[slice, slice]
FULL: Window = (slice(None), slice(None))

MODALITIES = ("Clinical", "Dermoscopic")
DEFECTS = ("blur", "dark", "overexposed", "noise")
FITZPATRICK_LAB: dict[int, Lab] = {
    1: (74.0, 9.0, 13.0),
    2: (67.0, 11.0, 16.0),
    3: (61.0, 12.0, 18.0),
    4: (54.0, 13.0, 20.0),
    5: (44.0, 13.0, 19.0),
    6: (33.0, 11.0, 14.0),
}

# Pigment colours as (L* offset from the skin at L* 65, a*, b*); the offset shrinks on darker skin so
# a brown lesion on Fitzpatrick VI stays dark brown instead of going below black.
PIGMENTS: dict[str, Lab] = {
    "light_brown": (-14.0, 13.0, 22.0),
    "tan": (-10.0, 11.0, 25.0),
    "brown": (-22.0, 14.0, 20.0),
    "dark_brown": (-31.0, 11.0, 13.0),
    "black": (-46.0, 4.0, 2.0),
    "blue_grey": (-18.0, -1.0, -5.0),
}
# Absolute colours of the whitish structures: (L* floor, L* offset from skin, a*, b*).
WHITES: dict[str, tuple[float, float, float, float]] = {
    "scale": (80.0, 20.0, 1.5, 5.0),  # silvery psoriatic scale
    "pus": (78.0, 22.0, 3.0, 27.0),  # yellow-white pustule head
    "depigmented": (84.0, 12.0, 2.5, 7.0),  # chalk-white vitiligo
}


@dataclass(frozen=True)
class _Look:
    """How one class is drawn. Radii are fractions of the image side (Clinical; Dermoscopic magnifies)."""

    description: str
    kind: str  # renderer: "pigmented", "plaque", "spots", "patches", "scalp"
    items: tuple[int, int]  # default number of items drawn (inclusive range)
    radius: tuple[float, float]
    irregularity: float  # amplitude of the low harmonics of the outline
    ragged: float  # amplitude of the high harmonics (a ragged, notched border)
    edge: float  # border blur in px at 256 px: sharp < 1, fuzzy > 1.5
    dermoscopic: float  # probability of a Dermoscopic framing when none is asked for
    pigments: tuple[str, ...] = ()  # palette to choose from (pigmented lesions)
    colours: tuple[int, int] = (1, 1)  # how many palette colours one lesion shows
    redness: tuple[float, float] = (0.0, 0.0)  # default Δa* range of the erythematous surface
    shift: Lab = (0.0, 1.0, 0.0)  # (ΔL*, Δa*, Δb*) per unit of redness
    centre: str | None = None  # what sits in a spot's centre: "pale" or "pus"
    centre_share: float = 0.0  # share of spots that have it
    spot_kind: str | None = None  # the count sign the spots are, when countable
    dome: float = 0.0  # L* highlight of raised lesions
    scale: tuple[float, float] = (0.0, 0.0)  # default scale cover fraction range
    texture: str | None = None  # "cerebriform" surface


PHANTOM_LOOKS: dict[str, _Look] = {
    "2F20": _Look("melanocytic naevus: round, even brown, sharp border", "pigmented", (1, 1), (0.07, 0.13),
                  0.05, 0.0, 0.7, 0.5, pigments=("light_brown", "brown", "dark_brown")),
    "2C30": _Look("melanoma: asymmetric, brown/black/blue-grey, ragged border", "pigmented", (1, 1), (0.1, 0.17),
                  0.2, 0.05, 1.8, 0.5, pigments=("light_brown", "brown", "dark_brown", "black", "blue_grey"),
                  colours=(3, 4)),
    "2F21.0": _Look("seborrhoeic keratosis: waxy tan, cerebriform surface, stuck-on border", "pigmented", (1, 1),
                    (0.08, 0.15), 0.1, 0.01, 0.5, 0.5, pigments=("tan", "light_brown", "brown"), dome=3.0,
                    texture="cerebriform"),
    "EA90": _Look("psoriasis: red plaque with silvery-white scale", "plaque", (1, 2), (0.11, 0.2), 0.14, 0.01,
                  1.2, 0.2, redness=(8.0, 26.0), shift=(-0.3, 1.0, 0.2), scale=(0.1, 0.6)),
    "EB00": _Look("urticaria: pink raised wheals with a pale centre", "spots", (2, 9), (0.04, 0.09), 0.2, 0.0,
                  1.5, 0.0, redness=(6.0, 18.0), shift=(-0.15, 1.0, 0.1), centre="pale", centre_share=0.7,
                  spot_kind="wheals", dome=2.0),
    "ED80": _Look("acne: small red papules, some with a yellow-white pustule", "spots", (5, 25), (0.014, 0.026),
                  0.06, 0.0, 0.8, 0.0, redness=(10.0, 26.0), shift=(-0.3, 1.0, 0.15), centre="pus",
                  centre_share=0.3, spot_kind="acneLesions", dome=3.0),
    "ED92.0": _Look("hidradenitis suppurativa: deep red-violaceous inflammatory nodules", "spots", (1, 6),
                    (0.035, 0.065), 0.1, 0.0, 1.6, 0.0, redness=(12.0, 28.0), shift=(-0.4, 1.0, -0.25),
                    spot_kind="nodules", dome=7.0),
    "ED63.0": _Look("vitiligo: chalk-white depigmented patches", "patches", (1, 4), (0.07, 0.18), 0.25, 0.02,
                    1.0, 0.0),
    "ED70.2": _Look("alopecia areata: scalp with round bald patches", "scalp", (1, 3), (0.09, 0.18), 0.08, 0.0,
                    1.0, 0.0),
}
PHANTOM_CLASSES: dict[str, str] = {code: look.description for code, look in PHANTOM_LOOKS.items()}

DERMOSCOPIC_ZOOM = 2.4  # a dermoscope shows the lesion this much larger than a clinical photo
SPOT_ZOOM = 1.6  # spots are drawn less magnified so several still fit the field
HAIR_LAB: Lab = (18.0, 3.0, 5.0)
CSV_COLUMNS = ("image", "code", "mask", "fitzpatrick", "modality", "erythema_delta_a", "scale_fraction",
               "area_fraction", "spot_count", "depigmented_fraction", "hair_loss_fraction", "defects")


@dataclass
class Phantom:
    """One rendered image and what was drawn in it (fractions are of the usable field of view)."""

    rgb: np.ndarray  # HxWx3 uint8
    mask: np.ndarray  # HxW bool: the lesion (spots, plaques, patches, bald patches)
    label: str  # ICD-11 code, a key of PHANTOM_CLASSES
    fitzpatrick: int
    modality: str  # "Clinical" or "Dermoscopic"
    erythema_delta_a: float  # median a* of the erythematous lesion surface minus the perilesional ring
    scale_fraction: float  # share of lesion pixels covered by scale
    area_fraction: float  # lesion pixels / image pixels
    spots: list[Box]  # (x1, y1, x2, y2), x2/y2 exclusive, one per countable lesion
    spot_kind: str | None  # the count sign the spots are ("wheals", "acneLesions", "nodules")
    depigmented_fraction: float  # depigmented skin / usable field
    hair_loss_fraction: float  # bald area / hair-bearing area
    defects: tuple[str, ...]
    pustules: list[Box] = field(default_factory=list)  # boxes of the spots that carry a pustule head
    field_of_view: np.ndarray | None = None  # HxW bool: the usable field (inside a dermoscope's field stop)


@dataclass
class _Canvas:
    """The picture being drawn, in CIELAB float32, and the drawing's ground-truth layers."""

    rng: np.random.Generator
    lab: np.ndarray
    skin: Lab
    field: np.ndarray  # usable area (inside the dermoscope's field stop)
    centre: tuple[float, float]  # (x, y) of the field
    reach: float  # field radius (Dermoscopic) or half side (Clinical)
    round_field: bool
    zoom: float
    look: _Look
    mask: np.ndarray = field(init=False)
    red: np.ndarray = field(init=False)  # the erythematous surface (Δa* truth is measured on it)
    scale: np.ndarray = field(init=False)
    spots: list[Box] = field(default_factory=list)
    pustules: list[Box] = field(default_factory=list)
    hair_loss: float = 0.0
    bald: np.ndarray | None = None  # coverage of the bald patches (scalp scenes): no hair is drawn there

    def __post_init__(self) -> None:
        shape = self.lab.shape[:2]
        self.mask, self.red, self.scale = (np.zeros(shape, bool) for _ in range(3))

    @property
    def size(self) -> int:
        return self.lab.shape[0]

    @property
    def px(self) -> float:
        """Pixels per unit of the 256-px reference frame (edge widths, gaps, texture scales)."""
        return self.size / 256.0


# ---------------------------------------------------------------- geometry


def _smooth_noise(rng: np.random.Generator, size: int, period: float) -> np.ndarray:
    """Zero-mean, unit-std noise whose features are about `period` px wide (bicubic upsampling)."""
    cells = max(2, round(size / max(period, 1.0)) + 1)
    small = rng.standard_normal((cells, cells)).astype(np.float32)
    big = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    return (big - big.mean()) / max(float(big.std()), 1e-6)


def _outline(rng: np.random.Generator, centre: tuple[float, float], radius: float, look: _Look,
             max_stretch: float) -> np.ndarray:
    """Closed polygon (N x 2, x/y) of a star-shaped blob: radius modulated by random harmonics."""
    theta = np.linspace(0.0, 2.0 * np.pi, 240, endpoint=False)
    r = np.ones_like(theta)
    for ks, amp in ((np.arange(2, 7), look.irregularity), (np.arange(7, 30), look.ragged)):
        if amp > 0:
            a = amp * rng.standard_normal(len(ks)) / np.sqrt(ks - 1)
            r += (a[:, None] * np.cos(ks[:, None] * theta + rng.uniform(0, 2 * np.pi, len(ks))[:, None])).sum(0)
    r = np.clip(r, 0.45, max_stretch) * radius
    aspect, turn = rng.uniform(0.75, 1.0), rng.uniform(0, np.pi)
    x, y = r * np.cos(theta), r * np.sin(theta) * aspect
    c, s = np.cos(turn), np.sin(turn)
    return np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)


@dataclass
class _Item:
    """One drawn item: its coverage (0-1) inside a window of the image (drawing stays local, hence fast)."""

    alpha: np.ndarray
    window: Window

    @property
    def inside(self) -> np.ndarray:
        return self.alpha >= 0.5


def _fill(outline: np.ndarray, c: _Canvas, edge_px: float) -> _Item:
    """Anti-aliased coverage of a polygon, its border softened by a Gaussian of `edge_px`, clipped to the field."""
    margin = int(np.ceil(3 * edge_px + 12 * c.px))
    x0, y0 = np.maximum(np.floor(outline.min(0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(outline.max(0)).astype(int) + margin, c.size)
    x0, y0 = min(x0, x1 - 1), min(y0, y1 - 1)
    img = np.zeros((max(y1 - y0, 1), max(x1 - x0, 1)), np.uint8)
    local = np.round((outline - [x0, y0]) * 16).astype(np.int32)
    cv2.fillPoly(img, [local], 255, lineType=cv2.LINE_AA, shift=4)
    alpha = img.astype(np.float32) / 255.0
    if edge_px > 0.3:
        alpha = cv2.GaussianBlur(alpha, (0, 0), edge_px)
    window = (slice(y0, y0 + img.shape[0]), slice(x0, x0 + img.shape[1]))
    return _Item(alpha * c.field[window], window)


def _box(mask: np.ndarray) -> Box:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _place(c: _Canvas, radii: list[float], separate: bool) -> list[tuple[float, float]]:
    """Centres inside the field; with `separate`, far enough apart that the items never touch."""
    gap = 3.0 * c.px
    centres: list[tuple[float, float]] = []
    for i, r in enumerate(radii):
        for attempt in range(400):
            room = max(c.reach - 1.35 * r - gap, 1.0)
            if c.round_field:
                rho, phi = room * np.sqrt(c.rng.uniform()), c.rng.uniform(0, 2 * np.pi)
                p = (c.centre[0] + rho * np.cos(phi), c.centre[1] + rho * np.sin(phi))
            else:
                p = (c.centre[0] + c.rng.uniform(-room, room), c.centre[1] + c.rng.uniform(-room, room))
            clear = all(np.hypot(p[0] - q[0], p[1] - q[1]) > 1.35 * (r + radii[j]) + gap
                        for j, q in enumerate(centres))
            if clear or not separate:
                break
            if attempt % 100 == 99:  # crowded: shrink this item rather than give up
                r = radii[i] = r * 0.8
        centres.append(p)
    return centres


def _items(c: _Canvas, count: int, separate: bool, zoom: float) -> list[_Item]:
    """Coverage maps of `count` items of the class's look, placed in the field."""
    lo, hi = c.look.radius
    radii = [c.rng.uniform(lo, hi) * c.size * zoom for _ in range(count)]
    if count == 1 and not separate:  # a single lesion sits near the middle, as it is photographed
        radii[0] = min(radii[0], 0.6 * c.reach)
        jitter = 0.25 * (c.reach - 1.35 * radii[0])
        centres = [(c.centre[0] + c.rng.uniform(-jitter, jitter), c.centre[1] + c.rng.uniform(-jitter, jitter))]
    else:
        centres = _place(c, radii, separate)
    stretch = 1.3 if separate else 1.6
    return [_fill(_outline(c.rng, p, r, c.look, stretch), c, c.look.edge * c.px) for p, r in zip(centres, radii)]


# ---------------------------------------------------------------- colour layers


def _blend(c: _Canvas, alpha: np.ndarray, colour: np.ndarray | Lab, window: Window = FULL) -> None:
    """Cover the canvas by `colour` (one Lab triple, or an image-sized Lab field) with coverage `alpha`."""
    colour = np.asarray(colour, np.float32)
    lab = c.lab[window]
    lab += alpha[..., None] * ((colour[window] if colour.ndim == 3 else colour) - lab)


def _shift(c: _Canvas, item: _Item, redness: float, alpha: np.ndarray | None = None) -> None:
    """Erythema: move the local skin by redness x (ΔL*, Δa*, Δb*), so Δa* is exactly `redness` under full cover."""
    alpha = item.alpha if alpha is None else alpha
    c.lab[item.window] += alpha[..., None] * (redness * np.asarray(c.look.shift, np.float32))


def _pigment(c: _Canvas, name: str) -> np.ndarray:
    dl, a, b = PIGMENTS[name]
    return np.array([max(6.0, c.skin[0] + dl * c.skin[0] / 65.0), a, b], np.float32)


def _white(c: _Canvas, name: str) -> np.ndarray:
    floor, dl, a, b = WHITES[name]
    return np.array([min(93.0, max(floor, c.skin[0] + dl)), a, b], np.float32)


def _dome(c: _Canvas, item: _Item, height: float) -> None:
    """Raised lesion lit from the upper left: brighter where the coverage's gradient faces the light."""
    if height <= 0:
        return
    smooth = cv2.GaussianBlur(item.alpha, (0, 0), 3.0 * c.px)
    gy, gx = np.gradient(smooth)
    c.lab[item.window][..., 0] += height * np.clip(-(gx + gy) * 4.0 * c.px, -1.0, 1.0) * item.alpha


# ---------------------------------------------------------------- class renderers


def _pigmented(c: _Canvas, count: int, redness: float, scale: float) -> None:
    """Melanocytic and keratotic lesions: palette colours in zones of a smooth noise field."""
    look = c.look
    for item in _items(c, count, separate=count > 1, zoom=c.zoom):
        k = int(c.rng.integers(look.colours[0], look.colours[1] + 1))
        names = list(c.rng.choice(look.pigments, size=min(k, len(look.pigments)), replace=False))
        if k > 1 and not {"black", "blue_grey"} & set(names):  # melanoma shows at least one dark or blue zone
            names[-1] = str(c.rng.choice(["black", "blue_grey"]))
        zones = _smooth_noise(c.rng, c.size, 0.35 * look.radius[1] * c.size * c.zoom)
        inside = zones[item.window][item.inside]
        edges = np.quantile(inside, np.linspace(0, 1, len(names) + 1)[1:-1]) if inside.size else []
        colour = np.stack([_pigment(c, n) for n in names])[np.digitize(zones, edges)]
        colour = cv2.GaussianBlur(colour, (0, 0), 1.5 * c.px)
        if look.texture == "cerebriform":
            colour[..., 0] += _cerebriform(c)
        _blend(c, item.alpha, colour, item.window)
        _dome(c, item, look.dome)
        c.mask[item.window] |= item.inside


def _cerebriform(c: _Canvas) -> np.ndarray:
    """L* relief of gyri and sulci: dark lines along the zero crossings of band-pass noise."""
    n = _smooth_noise(c.rng, c.size, 7.0 * c.px * c.zoom / 2.0)
    sulci = np.exp(-((n / 0.22) ** 2))
    return 4.0 - 14.0 * sulci


def _plaque(c: _Canvas, count: int, redness: float, scale: float) -> None:
    """Psoriasis: erythematous plaques, a share `scale` of their surface covered by silvery scale."""
    for item in _items(c, count, separate=True, zoom=c.zoom):
        _shift(c, item, redness)
        c.mask[item.window] |= item.inside
    if scale <= 0 or not c.mask.any():
        return
    flakes = _smooth_noise(c.rng, c.size, 5.0 * c.px * c.zoom)
    c.scale = c.mask & (flakes >= np.quantile(flakes[c.mask], 1.0 - scale))
    relief = 6.0 * c.rng.standard_normal(c.lab.shape[:2]).astype(np.float32)
    colour = _white(c, "scale") + np.stack([relief, 0 * relief, 0 * relief], axis=-1)
    _blend(c, c.scale.astype(np.float32), colour)
    c.red = c.mask & ~c.scale


def _spots(c: _Canvas, count: int, redness: float, scale: float) -> None:
    """Countable lesions (wheals, papules/pustules, nodules): separated, each with its own box."""
    look = c.look
    for item in _items(c, count, separate=True, zoom=c.zoom if c.zoom == 1 else SPOT_ZOOM):
        _shift(c, item, redness)
        _dome(c, item, look.dome)
        if not item.inside.any():
            continue
        x1, y1, x2, y2 = _box(item.inside)
        box = (x1 + item.window[1].start, y1 + item.window[0].start, x2 + item.window[1].start,
               y2 + item.window[0].start)
        c.spots.append(box)
        c.mask[item.window] |= item.inside
        c.red[item.window] |= item.inside
        if look.centre and c.rng.uniform() < look.centre_share:
            core = _core(item.alpha, 0.45 if look.centre == "pus" else 0.5)
            if look.centre == "pus":
                _blend(c, core, _white(c, "pus"), item.window)
                c.pustules.append(box)
            else:  # pale centre of a wheal: oedema presses the dermal vessels empty
                _shift(c, item, -0.7 * redness, core)
                c.lab[item.window][..., 0] += 3.0 * core
            c.red[item.window] &= ~(core > 0.2)


def _core(alpha: np.ndarray, share: float) -> np.ndarray:
    """The central part of a blob (about `share` of its radius), soft-edged."""
    inside = (alpha >= 0.5).astype(np.uint8)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    return np.clip((depth / max(float(depth.max()), 1e-6) - (1.0 - share)) * 4.0 / share, 0.0, 1.0)


def _patches(c: _Canvas, count: int, redness: float, scale: float) -> None:
    """Vitiligo: chalk-white depigmented patches (they may merge)."""
    for item in _items(c, count, separate=False, zoom=c.zoom):
        _blend(c, item.alpha, _white(c, "depigmented"), item.window)
        c.mask[item.window] |= item.inside


def _scalp(c: _Canvas, count: int, redness: float, scale: float) -> None:
    """Alopecia areata: dense scalp hair everywhere except in round bald patches."""
    bald = np.zeros(c.lab.shape[:2], np.float32)
    for item in _items(c, count, separate=False, zoom=c.zoom):
        np.maximum(bald[item.window], item.alpha, out=bald[item.window])
    c.bald = bald
    c.mask = (bald >= 0.5) & c.field
    c.hair_loss = float(c.mask.sum() / max(c.field.sum(), 1))


RENDERERS: dict[str, Callable[[_Canvas, int, float, float], None]] = {
    "pigmented": _pigmented, "plaque": _plaque, "spots": _spots, "patches": _patches, "scalp": _scalp,
}


# ---------------------------------------------------------------- hair, light, texture, camera


def _hairs(c: _Canvas, n: int, length: tuple[float, float], direction: float | None, spread: float) -> np.ndarray:
    """Coverage of `n` thin dark strands (slightly curved), starting also outside the frame."""
    layer = np.zeros(c.lab.shape[:2], np.uint8)
    if n <= 0:
        return layer.astype(np.float32)
    start = c.rng.uniform(-0.1 * c.size, 1.1 * c.size, (n, 1, 2))
    base = c.rng.uniform(0, np.pi, n) if direction is None else np.full(n, direction)
    angle = base + c.rng.normal(0, spread, n)
    bend = c.rng.normal(0, 0.25, n)
    heading = angle[:, None] + bend[:, None] * np.linspace(0, 1, 6)[None, :]  # 5 segments per strand
    seg = c.rng.uniform(*length, n)[:, None, None] * c.size / 5.0
    steps = np.stack([np.cos(heading), np.sin(heading)], axis=-1) * seg
    pts = np.round((start + np.cumsum(steps, axis=1)) * 16).astype(np.int32)
    cv2.polylines(layer, list(pts), False, 255, max(1, round(c.px)), cv2.LINE_AA, shift=4)
    return layer.astype(np.float32) / 255.0


def _add_hair(c: _Canvas) -> None:
    if c.bald is not None:
        coverage = _hairs(c, int(1500 * min(c.px, 1.0)), (0.15, 0.3), c.rng.uniform(0, np.pi), 0.25) * (1.0 - c.bald)
    elif c.rng.uniform() < 0.3:  # body hair on some photos, a classic nuisance for every estimator
        coverage = _hairs(c, int(c.rng.integers(2, 14)), (0.3, 0.7), None, 0.2)
    else:
        return
    hair = np.array([min(HAIR_LAB[0] + c.rng.uniform(-6, 8), c.skin[0] - 12), HAIR_LAB[1], HAIR_LAB[2]], np.float32)
    _blend(c, coverage * 0.9, hair)


def _light_and_texture(c: _Canvas) -> None:
    """Low-frequency shading, pores and micro-relief: L* only, so a* and b* (and Δa*) stay exact."""
    amp = 0.03 if c.zoom > 1 else 0.05
    gy, gx = np.mgrid[0:c.size, 0:c.size].astype(np.float32) / c.size - 0.5
    tilt = c.rng.normal(0, 1, 2)
    shading = 1.0 + amp * _smooth_noise(c.rng, c.size, c.size / 2.5) + amp * (tilt[0] * gx + tilt[1] * gy)
    relief = cv2.GaussianBlur(c.rng.standard_normal((c.size, c.size)).astype(np.float32), (0, 0), 0.7 * c.px)
    pores = (c.rng.uniform(size=(c.size, c.size)) < 0.004 / c.px ** 2).astype(np.float32)
    pores = cv2.GaussianBlur(pores, (0, 0), 0.8 * c.px) * 2 * np.pi * (0.8 * c.px) ** 2
    c.lab[..., 0] = c.lab[..., 0] * shading + 1.6 * relief / max(float(relief.std()), 1e-6) - 4.0 * pores


def _to_rgb(lab: np.ndarray) -> np.ndarray:
    lab = lab.copy()
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _vignette(c: _Canvas, rgb: np.ndarray) -> np.ndarray:
    """A dermoscope's field stop: near-black outside the circle, a little light fall-off inside."""
    yy, xx = np.mgrid[0:c.size, 0:c.size].astype(np.float32)
    rho = np.hypot(xx - c.centre[0], yy - c.centre[1]) / c.reach
    inside = np.clip((1.0 - rho) * c.reach / (1.5 * c.px), 0.0, 1.0)
    falloff = (1.0 - 0.2 * np.clip(rho, 0, 1) ** 4) * inside
    dark = c.rng.uniform(4, 14) + c.rng.normal(0, 1.5, rgb.shape)
    out = rgb.astype(np.float32) * falloff[..., None] + dark * (1.0 - inside[..., None])
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def apply_defect(rgb: np.ndarray, defect: str, rng: np.random.Generator) -> np.ndarray:
    """One acquisition defect: 'blur', 'dark', 'overexposed' or 'noise'."""
    img = rgb.astype(np.float32)
    side = min(rgb.shape[:2])
    if defect == "blur":
        img = cv2.GaussianBlur(img, (0, 0), max(2.0, side / 64.0) * rng.uniform(1.0, 1.5))
    elif defect == "dark":
        img = img * rng.uniform(0.1, 0.2)
    elif defect == "overexposed":
        img = img * rng.uniform(2.2, 3.0) + 40.0
    elif defect == "noise":
        img = img + rng.normal(0.0, rng.uniform(30.0, 40.0), img.shape)
    else:
        raise ValueError(f"unknown defect {defect!r}; known: {', '.join(DEFECTS)}")
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- public API


def _choose(rng: np.random.Generator, given: object, options: Sequence[object]) -> object:
    """Draw from `options` even when a value is given, so the rest of the image does not depend on it."""
    drawn = options[int(rng.integers(len(options)))]
    return drawn if given is None else given


def _canvas(rng: np.random.Generator, size: int, look: _Look, fitzpatrick: int, dermoscopic: bool) -> _Canvas:
    base = np.array(FITZPATRICK_LAB[fitzpatrick], np.float32) + rng.normal(0, [1.5, 1.0, 1.0]).astype(np.float32)
    lab = np.broadcast_to(base, (size, size, 3)).copy()
    if dermoscopic:
        centre = (size / 2 + rng.uniform(-0.02, 0.02) * size, size / 2 + rng.uniform(-0.02, 0.02) * size)
        reach = size * rng.uniform(0.44, 0.48)
        yy, xx = np.mgrid[0:size, 0:size]
        field_ = np.hypot(xx - centre[0], yy - centre[1]) <= reach - 2.0 * size / 256
    else:
        centre, reach, field_ = (size / 2, size / 2), size / 2, np.ones((size, size), bool)
    zoom = DERMOSCOPIC_ZOOM if dermoscopic else 1.0
    return _Canvas(rng, lab, tuple(float(v) for v in base), field_, centre, reach, dermoscopic, zoom, look)


def _erythema_truth(c: _Canvas) -> float:
    """Median a* of the erythematous surface (or the whole lesion) minus that of a perilesional ring."""
    surface = c.red if c.red.any() else c.mask
    if not surface.any():
        return 0.0
    width = max(3, round(c.size / 32))
    near = cv2.dilate(c.mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1,) * 2))
    ring = near.astype(bool) & ~cv2.dilate(c.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & c.field
    if not ring.any():
        ring = c.field & ~c.mask
    return float(np.median(c.lab[..., 1][surface]) - np.median(c.lab[..., 1][ring])) if ring.any() else 0.0


def make_phantom(seed: int, *, label: str | None = None, size: int = 256, fitzpatrick: int | None = None,
                 modality: str | None = None, defects: Sequence[str] = (), redness: float | None = None,
                 count: int | None = None, scale: float | None = None) -> Phantom:
    """Render one phantom; every choice not given is drawn from `seed`.

    `redness`: Δa* of the erythematous surface over the skin (red classes); `count`: number of items
    (spots, plaques, patches); `scale`: share of a psoriatic plaque covered by scale, 0-1.
    """
    if label is not None and label not in PHANTOM_LOOKS:
        raise ValueError(f"unknown phantom class {label!r}; known: {', '.join(PHANTOM_LOOKS)}")
    if modality is not None and modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}")
    rng = np.random.default_rng(seed)
    label = str(_choose(rng, label, list(PHANTOM_LOOKS)))
    look = PHANTOM_LOOKS[label]
    fitzpatrick = int(_choose(rng, fitzpatrick, list(FITZPATRICK_LAB)))
    drawn_modality = MODALITIES[int(rng.uniform() < look.dermoscopic)]
    modality = modality or drawn_modality
    drawn_items = int(rng.integers(look.items[0], look.items[1] + 1))
    drawn_red, drawn_scale = rng.uniform(*look.redness), rng.uniform(*look.scale)
    n = drawn_items if count is None else int(count)
    red = drawn_red if redness is None else float(redness)
    cover = drawn_scale if scale is None else float(np.clip(scale, 0.0, 1.0))

    c = _canvas(rng, size, look, fitzpatrick, modality == "Dermoscopic")
    RENDERERS[look.kind](c, n, red, cover)
    erythema = _erythema_truth(c)
    _add_hair(c)
    _light_and_texture(c)
    rgb = _to_rgb(c.lab)
    if c.round_field:
        rgb = _vignette(c, rgb)
    for defect in defects:
        rgb = apply_defect(rgb, defect, rng)

    lesion_px = int(c.mask.sum())
    usable = max(int(c.field.sum()), 1)
    countable = look.spot_kind is not None
    return Phantom(
        rgb=rgb, mask=c.mask, label=label, fitzpatrick=fitzpatrick, modality=modality,
        erythema_delta_a=round(erythema, 3),
        scale_fraction=float(c.scale.sum() / lesion_px) if lesion_px else 0.0,
        area_fraction=lesion_px / c.mask.size,
        spots=list(c.spots) if countable else [], spot_kind=look.spot_kind,
        depigmented_fraction=lesion_px / usable if look.kind == "patches" else 0.0,
        hair_loss_fraction=c.hair_loss, defects=tuple(defects), pustules=list(c.pustules),
        field_of_view=c.field,
    )


def _item_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def export_dataset(out: Path, *, count: int, seed: int, size: int = 256, classes: Sequence[str] | None = None,
                   progress: Callable[[int], None] | None = None) -> Path:
    """Write `count` phantoms, balanced over `classes`, as images/<code>/<id>.png, masks/<id>.png, labels.csv.

    Returns the CSV path; its image and mask paths are relative to the CSV's folder. `progress` is
    called with 1 after each image (a progress bar's update).
    """
    codes = list(classes) if classes else list(PHANTOM_CLASSES)
    unknown = [code for code in codes if code not in PHANTOM_CLASSES]
    if unknown:
        raise ValueError(f"unknown phantom classes {unknown}; known: {', '.join(PHANTOM_CLASSES)}")
    out = Path(out)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    for code in codes:
        (out / "images" / code).mkdir(parents=True, exist_ok=True)
    csv_path = out / "labels.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for i in range(count):
            writer.writerow(_export_one(out, i, codes[i % len(codes)], seed, size))
            if progress is not None:
                progress(1)
    return csv_path


def _export_one(out: Path, index: int, code: str, seed: int, size: int) -> list[object]:
    p = make_phantom(_item_seed(seed, index), label=code, size=size)
    name = f"{index:06d}.png"
    image, mask = Path("images") / code / name, Path("masks") / name
    cv2.imwrite(str(out / image), cv2.cvtColor(p.rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(out / mask), p.mask.astype(np.uint8) * 255)
    return [image.as_posix(), code, mask.as_posix(), p.fitzpatrick, p.modality, f"{p.erythema_delta_a:.3f}",
            f"{p.scale_fraction:.4f}", f"{p.area_fraction:.4f}", len(p.spots), f"{p.depigmented_fraction:.4f}",
            f"{p.hair_loss_fraction:.4f}", ";".join(p.defects)]
