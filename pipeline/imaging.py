"""Image intake: strict base64, format sniffed from the bytes, size limits, EXIF orientation.

The API calls `check_attachment` before anything is stored, so a rejected image
leaves nothing behind; the worker calls `decode` on the stored bytes.
Only Pillow and numpy are used here so the API image stays free of torch/OpenCV.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image

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
_B64_PIECE = 1 << 18  # base64 characters per decode call (whole 4-character quanta)
_WHITESPACE = b" \t\n\r\x0b\x0c"  # what base64 tools wrap lines with (the ASCII whitespace of `\s`)


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
    # bytes.translate: one pass in C, several times faster than a regex on megabytes of base64.
    raw = text.encode("ascii", errors="replace").translate(None, _WHITESPACE)
    if not raw:
        raise ImageRejected("image data is empty", kind="value_error.empty")
    # Reject before decoding anything huge: base64 inflates by 4/3.
    if len(raw) * 3 // 4 > max_bytes:
        raise ImageRejected(f"image is larger than {max_bytes} bytes", status=413, kind="value_error.too_large")
    # In pieces: a base64 decode holds the interpreter lock throughout, and the API decodes on a thread
    # beside its event loop. The pieces are whole quanta and padding may only end the text, so decoding
    # them one by one accepts and yields exactly what decoding the whole would.
    if len(raw) % 4 or raw.find(b"=", 0, len(raw) - 2) != -1:
        raise ImageRejected("image data is not valid base64", kind="value_error.base64")
    view = memoryview(raw)
    try:
        data = b"".join(base64.b64decode(view[start : start + _B64_PIECE], validate=True)
                        for start in range(0, len(raw), _B64_PIECE))
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


def check_image(data: bytes, *, declared_type: str | None, max_pixels: int, min_side: int = 1,
                max_aspect_ratio: float = math.inf) -> CheckedImage:
    """Validate an image fully (header, size limits, complete decode) without keeping the pixels."""
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
    with _open(data, max_pixels, min_side, max_aspect_ratio) as img:
        width, height = img.size
        if fmt == "jpeg":
            # At 1/8 scale libjpeg still entropy-decodes every block, so a truncated or corrupt stream
            # fails as it would at full size, for about half the cost (the inverse DCTs shrink to 1×1).
            img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
        try:
            img.load()  # a truncated or corrupt stream fails here, not in the worker
        except Exception as exc:  # Pillow raises several unrelated types for corrupt data
            raise ImageRejected(f"image could not be decoded: {exc}", kind="value_error.decode") from None
    return CheckedImage(data=data, format=fmt, width=width, height=height)


@dataclass(frozen=True, slots=True)
class DecodedImage:
    rgb: np.ndarray  # HxWx3 uint8, upright, at the working resolution
    source_shape: tuple[int, int]  # (height, width) of the upright original, before any reduction


def decode(data: bytes, *, max_pixels: int, min_side: int = 1, max_aspect_ratio: float = math.inf,
           max_side: int | None = None, reduce_to: int | None = None) -> DecodedImage:
    """Bytes → upright RGB with EXIF orientation applied; the same size limits as `check_image`.

    ``max_side``: the working resolution. A larger image is decoded reduced (JPEG's DCT scaling, so a
    40-Mpx photo never exists at full size in memory) and then fitted, keeping worker memory bounded.
    ``reduce_to``: an analysis that needs no more than this many pixels on the long side takes a JPEG
    at the smallest DCT scale (1/2, 1/4, 1/8) that still has them, and no fit after it: the inverse
    DCTs shrink with the scale, so a 5-Mpx photo decodes in about half the time and every copy made
    from it costs less.
    """
    with _open(data, max_pixels, min_side, max_aspect_ratio) as img:
        source = img.size
        target = min(side for side in (max_side, reduce_to, math.inf) if side is not None)
        if max(img.size) > target:
            scale = target / max(img.size)
            img.draft("RGB", (max(1, round(img.width * scale)), max(1, round(img.height * scale))))
        if max_side is not None and max(img.size) > max_side:
            # Area averaging (BOX): alias-free like the analysis copies' INTER_AREA, and half Lanczos's cost on 5 MP.
            img.thumbnail((max_side, max_side), Image.Resampling.BOX)
        stored = img.size
        img = _upright(img)
        if img.size != stored:  # a quarter turn: the original's sides swap too
            source = source[::-1]
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            background = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, img)
        rgb = img if img.mode == "RGB" else img.convert("RGB")  # convert() would copy an RGB image
        return DecodedImage(np.asarray(rgb), (source[1], source[0]))


def decode_image(data: bytes, *, max_pixels: int, min_side: int = 1,
                 max_aspect_ratio: float = math.inf, max_side: int | None = None) -> np.ndarray:
    """`decode`'s pixels alone (training data, benchmarks)."""
    return decode(data, max_pixels=max_pixels, min_side=min_side, max_aspect_ratio=max_aspect_ratio,
                  max_side=max_side).rgb


# EXIF orientation → the transpose that shows the image upright: ImageOps.exif_transpose's table. That
# function also rewrites the EXIF block onto its copy, and so fails on a corrupt block the pixels never need.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _upright(img: Image.Image) -> Image.Image:
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # an unreadable EXIF block (Pillow raises several types): the pixels as stored
        return img
    method = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return img.transpose(method) if method is not None else img


def _open(data: bytes, max_pixels: int, min_side: int, max_aspect_ratio: float) -> Image.Image:
    """Open lazily and enforce the size limits from the header, before any decoding."""
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
    # Slivers (1 px high, 40000x2) carry no analysable skin and make every measure degenerate.
    if min(width, height) < min_side:
        img.close()
        raise ImageRejected(f"image is {width}x{height} pixels; each side must be at least {min_side}",
                            kind="value_error.too_small")
    if max(width, height) > max_aspect_ratio * min(width, height):
        img.close()
        raise ImageRejected(f"image is {width}x{height} pixels; its long side may be at most {max_aspect_ratio:g} "
                            "times its short side: crop it to the skin", kind="value_error.aspect_ratio")
    return img


def jpeg_attachment(pixels: np.ndarray, title: str, *, quality: int = 85) -> dict:
    """A report attachment ``{title, contentType, data, height, width, colorModel}``: an RGB JPEG at the
    pixels' size; a single-channel map is written as grey RGB (clients expect RGB)."""
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="JPEG", quality=quality)
    h, w = pixels.shape[:2]
    return {
        "title": title,
        "contentType": "image/jpeg",
        "data": base64.b64encode(buf.getvalue()).decode("ascii"),
        "height": int(h),
        "width": int(w),
        "colorModel": "RGB",
    }
