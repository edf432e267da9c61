"""Classical skin detection: a chrominance model in YCrCb after a brightness normalisation.

`skin_mask` marks skin-coloured pixels; `skin_region` fills the holes that
lesions (brown, dark, red) leave inside the skin, so it approximates "the skin
area of the photo" including the lesion. The dark round vignette of a
dermoscope is reported separately by `vignette_mask`.
"""

from __future__ import annotations

import cv2
import numpy as np

# Chai & Ngan (1999) skin cluster in CrCb, widened slightly for darker skin tones and dermoscopic light.
CR_RANGE = (135, 180)
CB_RANGE = (77, 130)
VIGNETTE_GRAY = 25  # dermoscope vignettes are near black


def normalise_brightness(rgb: np.ndarray) -> np.ndarray:
    """Stretch so the 95th percentile of luminance sits at 220: chrominance survives under- and overexposure."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    p95 = float(np.percentile(gray, 95))
    gain = float(np.clip(220.0 / max(p95, 1.0), 0.5, 8.0))
    if abs(gain - 1.0) < 0.05:
        return rgb
    return np.clip(rgb.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean HxW mask of skin-coloured pixels."""
    ycc = cv2.cvtColor(normalise_brightness(rgb), cv2.COLOR_RGB2YCrCb)
    y, cr, cb = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    return (cr >= CR_RANGE[0]) & (cr <= CR_RANGE[1]) & (cb >= CB_RANGE[0]) & (cb <= CB_RANGE[1]) & (y > 30)


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


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Pixels enclosed by the mask (not reachable from the border through non-mask pixels) join it."""
    m = mask.astype(np.uint8)
    padded = np.pad(m, 1, constant_values=0)
    flood = padded.copy()
    ff_mask = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(flood, ff_mask, (0, 0), 1)
    enclosed = flood[1:-1, 1:-1] == 0
    return mask | enclosed


def skin_region(rgb: np.ndarray) -> np.ndarray:
    """Skin including the lesions inside it: closed, hole-filled, small specks removed."""
    mask = skin_mask(rgb).astype(np.uint8)
    side = max(3, int(round(min(mask.shape) / 60)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    # The vignette counts as a wall, so a lesion touching the field stop is still enclosed.
    vignette = vignette_mask(rgb)
    return fill_holes(mask.astype(bool) | vignette) & ~vignette


def skin_fraction(rgb: np.ndarray) -> float:
    """Share of the non-vignette image that is skin (lesions inside the skin included)."""
    usable = ~vignette_mask(rgb)
    return float(skin_region(rgb)[usable].mean()) if usable.any() else 0.0
