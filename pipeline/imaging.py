"""Image intake: strict base64, format sniffed from the bytes, size limits, EXIF orientation.

The API calls `check_attachment` before anything is stored, so a rejected image
leaves nothing behind; the worker calls `decode_image` on the stored bytes.
Only Pillow and numpy are used here so the API image stays free of torch/OpenCV.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

# Decoded bytes decide the format; these are the declared types we understand.
MIME_BY_FORMAT = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSION_BY_FORMAT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
DECLARED_ALIASES = {
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/pjpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
}
_WHITESPACE = re.compile(rb"\s+")


class ImageRejected(ValueError):
    """A client error in one image: `status` is 422 (malformed) or 413 (too large)."""

    def __init__(self, message: str, *, status: int = 422, field: str = "data", kind: str = "value_error"):
        super().__init__(message)
        self.status = status
        self.field = field
        self.kind = kind


@dataclass(frozen=True, slots=True)
class CheckedImage:
    data: bytes
    format: str  # "JPEG" | "PNG" | "WEBP"
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return MIME_BY_FORMAT[self.format]

    @property
    def extension(self) -> str:
        return EXTENSION_BY_FORMAT[self.format]


def decode_base64(text: str, *, max_bytes: int) -> bytes:
    """Plain base64 only. Line breaks (as `base64` wraps them) are tolerated; a data: URI is not."""
    if text.lstrip()[:5].lower() == "data:":
        raise ImageRejected(
            "send plain base64 without a 'data:<type>;base64,' prefix", kind="value_error.data_uri"
        )
    raw = _WHITESPACE.sub(b"", text.encode("ascii", errors="replace"))
    if not raw:
        raise ImageRejected("image data is empty", kind="value_error.empty")
    # Reject before decoding anything huge: base64 inflates by 4/3.
    if len(raw) * 3 // 4 > max_bytes:
        raise ImageRejected(f"image is larger than {max_bytes} bytes", status=413, kind="value_error.too_large")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRejected("image data is not valid base64", kind="value_error.base64") from None
    if len(data) > max_bytes:
        raise ImageRejected(f"image is larger than {max_bytes} bytes", status=413, kind="value_error.too_large")
    return data


def sniff_format(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def check_image(data: bytes, *, declared_type: str | None, max_pixels: int) -> CheckedImage:
    """Validate an image fully (header, pixel budget, complete decode) without keeping the pixels."""
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected("unsupported image format: send JPEG, PNG or WebP", kind="value_error.format")
    if declared_type is not None:
        declared = DECLARED_ALIASES.get(declared_type.strip().lower())
        if declared is None:
            raise ImageRejected(
                f"unsupported contentType {declared_type!r}: use image/jpeg, image/png or image/webp",
                field="contentType",
                kind="value_error.content_type",
            )
        if declared != fmt:
            raise ImageRejected(
                f"contentType {declared_type!r} contradicts the image bytes, which are {MIME_BY_FORMAT[fmt]}",
                field="contentType",
                kind="value_error.content_type_mismatch",
            )
    with _open(data, max_pixels) as img:
        width, height = img.size
        try:
            img.load()  # a truncated or corrupt stream fails here, not in the worker
        except Exception as exc:  # Pillow raises several unrelated types for corrupt data
            raise ImageRejected(f"image could not be decoded: {exc}", kind="value_error.decode") from None
    return CheckedImage(data=data, format=fmt, width=width, height=height)


def decode_image(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Bytes → HxWx3 uint8 RGB with EXIF orientation applied."""
    with _open(data, max_pixels) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            background = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, img)
        return np.asarray(img.convert("RGB"))


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open lazily and enforce the pixel budget from the header, before any decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("image has too many pixels", status=413, kind="value_error.too_many_pixels") from None
    except Exception as exc:
        raise ImageRejected(f"image could not be read: {exc}", kind="value_error.decode") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageRejected("image has no pixels", kind="value_error.decode")
    if width * height > max_pixels:
        img.close()
        raise ImageRejected(
            f"image has {width}x{height} pixels, more than the limit of {max_pixels}",
            status=413,
            kind="value_error.too_many_pixels",
        )
    return img
