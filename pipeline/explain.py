"""CAM heat-map attachments: a class's attention map blended over the image as a JPEG."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.imaging import jpeg_attachment
from pipeline.resize import shrink

__all__ = ["HEATMAP_TITLE", "cam_to_heatmap", "heatmap_base", "hottest_point", "normalise_cam"]

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


def heatmap_base(rgb: np.ndarray, max_side: int = 384) -> np.ndarray:
    """The image every heat map of it is drawn on: downscaled once so its longer side is at most
    ``max_side`` (never enlarged), shared by all of its class maps."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    return shrink(np.ascontiguousarray(rgb), max_side, fast=True)


def cam_to_heatmap(
    rgb: np.ndarray,
    cam: np.ndarray,
    *,
    max_side: int = 384,
    alpha: float = 0.45,
    jpeg_quality: int = 85,
    base: np.ndarray | None = None,
) -> dict:
    """Blend one class map over the image (JET colours: warmer = more weight).

    Drawn on ``base`` (from :func:`heatmap_base`; computed here when not given, pass it when
    drawing several maps of one image); the map is stretched bilinearly over the whole image,
    matching the squash preprocessing in ``pipeline.classify``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    base = heatmap_base(rgb, max_side) if base is None else base
    h, w = base.shape[:2]
    weights = cv2.resize(normalise_cam(cam), (w, h), interpolation=cv2.INTER_LINEAR)
    levels = np.clip(np.rint(weights * 255.0), 0, 255).astype(np.uint8)
    colours = cv2.applyColorMap(levels, _JET)  # a user colour map: one table lookup per pixel, already RGB
    blended = cv2.addWeighted(base, 1.0 - alpha, colours, alpha, 0.0)
    return jpeg_attachment(blended, HEATMAP_TITLE, quality=jpeg_quality)


# OpenCV's JET colour map as a 256 x 1 RGB table, the shape `applyColorMap` takes as a user colour map
# (its built-in JET gives BGR, and the table skips a conversion per map).
_JET = cv2.cvtColor(cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None], cv2.COLORMAP_JET),
                    cv2.COLOR_BGR2RGB).reshape(256, 1, 3)


def hottest_point(cam: np.ndarray, out_hw: tuple[int, int]) -> tuple[int, int]:
    """(y, x) in an ``out_hw`` image of the centre of the map's strongest cell."""
    if cam.ndim != 2 or cam.size == 0:
        raise ValueError(f"expected a non-empty 2-D class map, got shape {cam.shape}")
    i, j = np.unravel_index(int(np.argmax(np.nan_to_num(cam, nan=-np.inf))), cam.shape)
    (ch, cw), (oh, ow) = cam.shape, out_hw
    y = min(oh - 1, int((i + 0.5) * oh / ch))
    x = min(ow - 1, int((j + 0.5) * ow / cw))
    return y, x
