"""Image attachments of the severity reports: probability masks, their binary masks, a coloured
overlay and an annotated image with detection boxes.

Every attachment is ``{title, contentType: "image/jpeg", data (plain base64), height, width,
colorModel: "RGB"}`` at the size of the image it describes, masks included, because clients
lay them over the photo pixel for pixel. A map computed at a working size is enlarged once to
the image's size and both of its masks are derived from that one enlargement, so a client
thresholding ``…MaskRaw`` at ``round(255 * threshold)`` gets ``…MaskBinary`` (up to JPEG's
loss at the edges).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import cv2
import numpy as np

from pipeline.imaging import jpeg_attachment
from pipeline.segmentation import Segmentation

__all__ = ["ANNOTATION_TITLE", "MaskMap", "annotated_attachment", "map_attachments", "mask_attachments"]

OVERLAY_TITLE = "Segmentation"
ANNOTATION_TITLE = "Annotated image with bounding boxes"
FILL_RGB = (0, 200, 255)
CONTOUR_RGB = (255, 230, 0)
FILL_ALPHA = 0.35
# Box colours cycle by detection class, in the order the classes first appear.
BOX_RGB = ((255, 64, 64), (64, 220, 64), (64, 128, 255), (255, 200, 0), (220, 64, 220), (0, 220, 220))


class MaskMap(NamedTuple):
    """One map to attach: ``label`` names it in the titles, ``prob`` is 0..1 at any size, binary is ≥ threshold."""

    label: str
    prob: np.ndarray
    threshold: float = 0.5


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")


def _levels(prob: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """The map as 0-255 levels at the image's size: its one resize (bilinear, so edges stay soft)."""
    p = prob.astype(np.float32)
    if p.shape != hw:
        p = cv2.resize(p, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
    return np.rint(np.clip(p, 0.0, 1.0) * 255.0).astype(np.uint8)


def _overlay(rgb: np.ndarray, region: np.ndarray) -> np.ndarray:
    tinted = np.where(region[..., None], np.asarray(FILL_RGB, np.uint8), rgb)
    out = cv2.addWeighted(rgb, 1.0 - FILL_ALPHA, tinted, FILL_ALPHA, 0.0)
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, CONTOUR_RGB, _line(rgb), lineType=cv2.LINE_AA)
    return out


def _line(rgb: np.ndarray) -> int:
    return max(1, round(max(rgb.shape[:2]) / 256))


def _key(stem: str, suffix: str) -> str:
    """``<stem>MaskRaw``; the lesion's unnamed stem gives the plain ``maskRaw``."""
    return stem + suffix if stem else suffix[0].lower() + suffix[1:]


def map_attachments(rgb: np.ndarray, maps: Mapping[str, MaskMap], *, overlay: str | None = None) -> dict[str, dict]:
    """``<stem>MaskRaw`` ("<Label> mask raw") and ``<stem>MaskBinary`` ("<Label> mask binary") per map,
    plus ``segmentation``, the binary of map ``overlay`` drawn over the image, when ``overlay`` is given."""
    _check_rgb(rgb)
    if overlay is not None and overlay not in maps:
        raise ValueError(f"no map {overlay!r} to draw over the image")
    hw = rgb.shape[:2]
    out: dict[str, dict] = {}
    for stem, m in maps.items():
        if m.prob.ndim != 2:
            raise ValueError(f"map {stem!r} is not 2-D: {m.prob.shape}")
        raw = _levels(m.prob, hw)
        binary = raw >= round(255 * m.threshold)
        out[_key(stem, "MaskRaw")] = jpeg_attachment(raw, f"{m.label} mask raw")
        out[_key(stem, "MaskBinary")] = jpeg_attachment(np.where(binary, 255, 0).astype(np.uint8),
                                                         f"{m.label} mask binary")
        if stem == overlay:
            out["segmentation"] = jpeg_attachment(_overlay(np.ascontiguousarray(rgb), binary), OVERLAY_TITLE)
    return out


def mask_attachments(rgb: np.ndarray, seg: Segmentation) -> dict[str, dict]:
    """The lesion's ``{"maskRaw", "maskBinary", "segmentation"}`` attachments at the image's size."""
    if seg.prob.shape != rgb.shape[:2]:
        raise ValueError(f"mask {seg.prob.shape} does not match the image {rgb.shape[:2]}")
    return map_attachments(rgb, {"": MaskMap("Lesion", seg.prob, seg.threshold)}, overlay="")


def annotated_attachment(rgb: np.ndarray, boxes: Sequence[tuple[str, tuple[int, int, int, int]]],
                         title: str = ANNOTATION_TITLE) -> dict:
    """The image with each ``(class, (x1, y1, x2, y2))`` box drawn, one colour per class."""
    _check_rgb(rgb)
    out = np.ascontiguousarray(rgb).copy()
    colours: dict[str, tuple[int, int, int]] = {}
    for cls, (x1, y1, x2, y2) in boxes:
        colour = colours.setdefault(cls, BOX_RGB[len(colours) % len(BOX_RGB)])
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2) - 1, int(y2) - 1), colour, _line(rgb), lineType=cv2.LINE_AA)
    return jpeg_attachment(out, title)
