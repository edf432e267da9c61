"""Segmentation attachments: raw probability mask, binary mask and a coloured overlay.

Same attachment shape as the diagnosis heat map (``pipeline.explain.cam_to_heatmap``):
``{title, contentType, data (plain base64), height, width, colorModel}``.  The
probability is resized once and both masks are derived from that resized map, so a
client thresholding ``maskRaw`` at ``round(255 * threshold)`` gets ``maskBinary``
exactly.
"""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
from PIL import Image

from pipeline.segmentation import Segmentation

__all__ = ["MASK_BINARY_TITLE", "MASK_RAW_TITLE", "OVERLAY_TITLE", "mask_attachments"]

_NOT_ALONE = "For visualisation; do not use it for clinical decisions on its own."
MASK_RAW_TITLE = f"Lesion probability mask: pixel intensity is the estimated probability that it belongs to the lesion. {_NOT_ALONE}"
MASK_BINARY_TITLE = f"Binary lesion mask (white: lesion, black: background), the probability mask thresholded. {_NOT_ALONE}"
OVERLAY_TITLE = f"Lesion segmentation drawn over the image: filled lesion area and its outline. {_NOT_ALONE}"
FILL_RGB = (0, 200, 255)
CONTOUR_RGB = (255, 230, 0)
FILL_ALPHA = 0.35


def _fitted_size(h: int, w: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def _resize(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if a.shape[:2] == hw:
        return a
    return cv2.resize(a, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)  # only ever shrinks


def _attachment(pixels: np.ndarray, fmt: str, title: str, color_model: str) -> dict:
    buf = io.BytesIO()
    options = {"quality": 85} if fmt == "JPEG" else {"optimize": True}
    Image.fromarray(pixels).save(buf, format=fmt, **options)
    h, w = pixels.shape[:2]
    return {
        "title": title,
        "contentType": f"image/{fmt.lower()}",
        "data": base64.b64encode(buf.getvalue()).decode("ascii"),
        "height": int(h),
        "width": int(w),
        "colorModel": color_model,
    }


def _overlay(rgb: np.ndarray, lesion: np.ndarray) -> np.ndarray:
    tinted = np.where(lesion[..., None], np.asarray(FILL_RGB, np.uint8), rgb)
    out = cv2.addWeighted(rgb, 1.0 - FILL_ALPHA, tinted, FILL_ALPHA, 0.0)
    contours, _ = cv2.findContours(lesion.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thickness = max(1, round(max(rgb.shape[:2]) / 256))
    cv2.drawContours(out, contours, -1, CONTOUR_RGB, thickness, lineType=cv2.LINE_AA)
    return out


def mask_attachments(rgb: np.ndarray, seg: Segmentation, *, max_side: int = 512) -> dict[str, dict]:
    """``{"maskRaw", "maskBinary", "segmentation"}`` attachments, long side at most ``max_side``."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    if seg.prob.shape != rgb.shape[:2]:
        raise ValueError(f"mask {seg.prob.shape} does not match the image {rgb.shape[:2]}")
    if max_side < 1:
        raise ValueError("max_side must be positive")
    hw = _fitted_size(*rgb.shape[:2], max_side)
    raw = np.rint(np.clip(_resize(seg.prob.astype(np.float32), hw), 0.0, 1.0) * 255.0).astype(np.uint8)
    binary = raw >= round(255 * seg.threshold)
    return {
        "maskRaw": _attachment(raw, "PNG", MASK_RAW_TITLE, "Grayscale"),
        "maskBinary": _attachment(np.where(binary, 255, 0).astype(np.uint8), "PNG", MASK_BINARY_TITLE, "Grayscale"),
        "segmentation": _attachment(_overlay(_resize(np.ascontiguousarray(rgb), hw), binary), "JPEG", OVERLAY_TITLE, "RGB"),
    }
