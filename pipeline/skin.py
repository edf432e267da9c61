"""Classical skin detection: a chrominance model in YCrCb after a brightness normalisation.

Two clusters: the classic Chai & Ngan CrCb box (most skin tones, light to dark)
and a narrow pale-skin extension just off the neutral axis on its warm side
(Cr slightly above 128, Cb slightly below), which the box misses on very fair
skin under a dermoscope's white light. Pure greys (Cr = Cb = 128) are never skin.

`skin_mask` marks skin-coloured pixels; `skin_region` fills the holes that
lesions (brown, dark, red) leave inside the skin, so it approximates "the skin
area of the photo" including the lesion. The dark round vignette of a
dermoscope is reported separately by `vignette_mask`.

Colour alone cannot tell skin from skin-coloured things (cat fur, coffee, wood,
stained tissue cover 50-98 % of their photos); `pipeline.quality` adds a texture
test for the domain decision.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.resize import fitted_shape, resize_mask

# Chai & Ngan (1999) skin cluster in CrCb, widened slightly for darker skin tones and dermoscopic light.
CR_RANGE = (135, 180)
CB_RANGE = (77, 130)
# Pale skin: bright, only slightly warm. Bounded tightly so saturated orange (retina, fur) is not pulled in.
PALE_MIN_Y = 120
PALE_CR_RANGE = (130, 142)
PALE_CB_RANGE = (116, 128)
PALE_MIN_WARMTH = 4  # Cr - Cb
VIGNETTE_GRAY = 25  # dermoscope vignettes are near black
REGION_SIDE = 512  # skin_region's morphology runs at this long side, whatever the input size
MIN_USABLE = 0.3  # share of the frame outside the vignette below which skin_fraction reports 0


def normalise_brightness(rgb: np.ndarray) -> np.ndarray:
    """Stretch so the 95th percentile of luminance sits at 220: chrominance survives under- and overexposure."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cdf = np.cumsum(np.bincount(gray.ravel(), minlength=256))  # histogram percentile: faster than a sort
    p95 = float(np.searchsorted(cdf, 0.95 * cdf[-1]))
    gain = float(np.clip(220.0 / max(p95, 1.0), 0.5, 8.0))
    if abs(gain - 1.0) < 0.05:
        return rgb
    return np.clip(rgb.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean HxW mask of skin-coloured pixels (lesions that are brown or red mostly included)."""
    ycc = cv2.cvtColor(normalise_brightness(rgb), cv2.COLOR_RGB2YCrCb).astype(np.int16)
    y, cr, cb = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    box = (cr >= CR_RANGE[0]) & (cr <= CR_RANGE[1]) & (cb >= CB_RANGE[0]) & (cb <= CB_RANGE[1]) & (y > 30)
    pale = ((y > PALE_MIN_Y) & (cr >= PALE_CR_RANGE[0]) & (cr <= PALE_CR_RANGE[1])
            & (cb >= PALE_CB_RANGE[0]) & (cb <= PALE_CB_RANGE[1]) & (cr - cb >= PALE_MIN_WARMTH))
    return box | pale


def vignette_mask(rgb: np.ndarray) -> np.ndarray:
    """Near-black pixels connected to the image border (a dermoscope's circular field stop)."""
    # On the brightness-normalised image, so an underexposed photo is not all "vignette".
    dark = (cv2.cvtColor(normalise_brightness(rgb), cv2.COLOR_RGB2GRAY) < VIGNETTE_GRAY).astype(np.uint8)
    n, labels = cv2.connectedComponents(dark, connectivity=8)
    if n <= 1:
        return np.zeros(dark.shape, bool)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    border = border[border != 0]
    return np.isin(labels, border)


def fill_holes(mask: np.ndarray, wall: np.ndarray | None = None, min_share: float = 0.5) -> np.ndarray:
    """Fill the holes of `mask`: regions of non-mask pixels that do not reach the image border.

    `wall` (e.g. a dermoscope vignette) also encloses holes, so a lesion touching the
    field stop still counts as enclosed; but a hole is only filled when at least
    `min_share` of its rim is `mask`, otherwise a black frame alone would turn the
    whole picture it surrounds into "skin".
    """
    if wall is None:  # every hole is rimmed by the mask alone: fill them all with one flood from outside
        outside = np.pad(mask.astype(np.uint8), 1)
        cv2.floodFill(outside, None, (0, 0), 2)
        return outside[1:-1, 1:-1] != 2
    holes = (~mask & ~wall).astype(np.uint8)
    n, labels = cv2.connectedComponents(holes, connectivity=4)
    if n <= 1:
        return mask.copy()
    open_to_border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    # Each hole's rim: the pixels one step outside it, tagged with the hole's label by a max-dilation.
    grown = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
    rim = (labels == 0) & (grown > 0)
    rim_total = np.bincount(grown[rim], minlength=n)
    rim_skin = np.bincount(grown[rim], weights=mask[rim], minlength=n)
    fill = rim_skin >= min_share * np.maximum(rim_total, 1)
    fill[0] = False
    fill[open_to_border] = False
    return mask | fill[labels]


def skin_region(rgb: np.ndarray, *, mask: np.ndarray | None = None, vignette: np.ndarray | None = None) -> np.ndarray:
    """Skin including the lesions inside it: closed, opened, enclosed holes filled.

    The morphology runs on a copy of at most REGION_SIDE px (long side) so the result does not
    depend on the camera resolution: at 5 MP, scattered skin-coloured specks (a star field)
    would otherwise close into a net whose meshes all count as enclosed holes.
    `mask` and `vignette` may be passed when the caller already computed them for `rgb`.
    """
    mask = skin_mask(rgb) if mask is None else mask
    vignette = vignette_mask(rgb) if vignette is None else vignette
    full = mask.shape
    small = fitted_shape(full, REGION_SIDE)
    if small != full:
        mask, vignette = resize_mask(mask, small), resize_mask(vignette, small)
    side = max(3, round(min(mask.shape) / 60) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    closed = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, kernel)
    closed = cv2.morphologyEx(closed, cv2.MORPH_OPEN, kernel).astype(bool)
    region = fill_holes(closed & ~vignette, wall=vignette)
    return resize_mask(region, full) if small != full else region


def skin_fraction(rgb: np.ndarray, *, region: np.ndarray | None = None, vignette: np.ndarray | None = None) -> float:
    """Share of the non-vignette image that is skin (lesions inside the skin included).

    0 when less than `MIN_USABLE` of the frame is outside the vignette: a mostly black
    picture (night sky, lens cap) has too little content to call anything skin.
    """
    vignette = vignette_mask(rgb) if vignette is None else vignette
    region = skin_region(rgb, vignette=vignette) if region is None else region
    usable = ~vignette
    return float(region[usable].mean()) if usable.mean() >= MIN_USABLE else 0.0
