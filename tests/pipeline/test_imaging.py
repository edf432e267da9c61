from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.imaging import ImageRejected, check_image, decode_base64, decode_image, sniff_format

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "isic2017-sample" / "images"


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_plain_base64_roundtrip_and_line_breaks_tolerated() -> None:
    data = (SAMPLE / "ISIC_0001769.jpg").read_bytes()
    text = base64.encodebytes(data).decode()  # wrapped at 76 columns like the `base64` tool
    assert decode_base64(text, max_bytes=10**7) == data


@pytest.mark.parametrize("text, kind", [
    ("data:image/jpeg;base64,/9j/4AAQ", "value_error.data_uri"),
    ("not*base64!", "value_error.base64"),
    ("   ", "value_error.empty"),
])
def test_bad_base64(text: str, kind: str) -> None:
    with pytest.raises(ImageRejected) as err:
        decode_base64(text, max_bytes=10**6)
    assert err.value.kind == kind and err.value.status == 422


def test_too_many_bytes_is_413_before_decoding() -> None:
    with pytest.raises(ImageRejected) as err:
        decode_base64("A" * 4000, max_bytes=1000)
    assert err.value.status == 413


@pytest.mark.parametrize("fmt, mime", [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_formats_are_sniffed_from_bytes(fmt: str, mime: str) -> None:
    data = encode(Image.new("RGB", (40, 30), (200, 150, 120)), fmt)
    assert sniff_format(data) == fmt
    checked = check_image(data, declared_type=None, max_pixels=10**6)
    assert (checked.content_type, checked.width, checked.height) == (mime, 40, 30)
    assert check_image(data, declared_type=mime, max_pixels=10**6).format == fmt


def test_declared_type_contradicting_the_bytes() -> None:
    data = encode(Image.new("RGB", (8, 8)), "PNG")
    with pytest.raises(ImageRejected) as err:
        check_image(data, declared_type="image/jpeg", max_pixels=10**6)
    assert err.value.field == "contentType" and err.value.status == 422


def test_unsupported_formats() -> None:
    gif = encode(Image.new("RGB", (8, 8)), "GIF")
    with pytest.raises(ImageRejected, match="unsupported image format"):
        check_image(gif, declared_type=None, max_pixels=10**6)
    png = encode(Image.new("RGB", (8, 8)), "PNG")
    with pytest.raises(ImageRejected, match="unsupported contentType"):
        check_image(png, declared_type="image/gif", max_pixels=10**6)


def test_decompression_bomb_refused_from_the_header() -> None:
    bomb = encode(Image.new("L", (6000, 6000)), "PNG", optimize=True)  # tiny file, 36 Mpx
    assert len(bomb) < 200_000
    with pytest.raises(ImageRejected) as err:
        check_image(bomb, declared_type=None, max_pixels=4_000_000)
    assert err.value.status == 413 and err.value.kind == "value_error.too_many_pixels"


def test_truncated_image_is_rejected() -> None:
    data = (SAMPLE / "ISIC_0001769.jpg").read_bytes()
    with pytest.raises(ImageRejected, match="decoded|read"):
        check_image(data[: len(data) // 3], declared_type=None, max_pixels=10**7)


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (60, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    data = encode(img, "JPEG", exif=exif.tobytes(), quality=95)
    rgb = decode_image(data, max_pixels=10**6)
    assert rgb.shape == (60, 20, 3)
    top = rgb[:8].reshape(-1, 3).mean(axis=0)
    assert top[2] > 150 and top[0] < 100, "the blue strip should now be at the top"


def test_alpha_is_composited_on_white() -> None:
    data = encode(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), "PNG")
    rgb = decode_image(data, max_pixels=10**6)
    assert rgb.dtype == np.uint8 and (rgb == 255).all()
