"""CAM heat-map attachments: a class's attention map blended over the image as a JPEG."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.imaging import jpeg_attachment

__all__ = ["HEATMAP_TITLE", "cam_to_heatmap", "hottest_point", "normalise_cam"]

HEATMAP_TITLE = (
    "Heat map showing which regions of the image the AI focuses its attention to predict this class."
)


def normalise_cam(cam: np.ndarray) -> np.ndarray:
    """Min-max scale a 2-D map to [0, 1] float32; a constant (or empty) map becomes zeros."""
    if cam.ndim != 2:
        raise ValueError(f"expected a 2-D class map, got shape {cam.shape}")
    c = np.nan_to_num(cam.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if c.size == 0:
        return c
    lo, hi = float(c.min()), float(c.max())
    span = hi - lo
    if span <= 1e-12 * max(1.0, abs(hi), abs(lo)):
        return np.zeros_like(c)
    return (c - lo) / np.float32(span)


def _fit(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def cam_to_heatmap(
    rgb: np.ndarray,
    cam: np.ndarray,
    *,
    max_side: int = 384,
    alpha: float = 0.45,
    jpeg_quality: int = 85,
) -> dict:
    """Blend one class map over the image (JET colours: warmer = more weight).

    The image is downscaled so its longer side is at most ``max_side`` (never
    enlarged); the map is stretched bilinearly over the whole image, matching the
    squash preprocessing in ``pipeline.classify``.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    base = _fit(np.ascontiguousarray(rgb), max_side)
    h, w = base.shape[:2]
    weights = cv2.resize(normalise_cam(cam), (w, h), interpolation=cv2.INTER_LINEAR)
    levels = np.clip(np.rint(weights * 255.0), 0, 255).astype(np.uint8)
    colours = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    blended = cv2.addWeighted(base, 1.0 - alpha, colours, alpha, 0.0)
    return jpeg_attachment(blended, HEATMAP_TITLE, quality=jpeg_quality)


def hottest_point(cam: np.ndarray, out_hw: tuple[int, int]) -> tuple[int, int]:
    """(y, x) in an ``out_hw`` image of the centre of the map's strongest cell."""
    if cam.ndim != 2 or cam.size == 0:
        raise ValueError(f"expected a non-empty 2-D class map, got shape {cam.shape}")
    i, j = np.unravel_index(int(np.argmax(np.nan_to_num(cam, nan=-np.inf))), cam.shape)
    (ch, cw), (oh, ow) = cam.shape, out_hw
    y = min(oh - 1, int((i + 0.5) * oh / ch))
    x = min(ow - 1, int((j + 0.5) * ow / cw))
    return y, x
