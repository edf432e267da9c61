from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.imaging import ImageRejected, check_image, decode, decode_base64, decode_image, sniff_format

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


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_a_jpeg_is_checked_to_its_last_block_although_at_reduced_scale(cut: float) -> None:
    # The intake check decodes JPEG at 1/8 scale: damage anywhere in the stream, even near its end, still fails.
    data = (SAMPLE / "ISIC_0001769.jpg").read_bytes()
    with pytest.raises(ImageRejected, match="decoded"):
        check_image(data[: int(len(data) * cut)], declared_type=None, max_pixels=10**7)
    garbled = bytearray(data)
    start = int(len(data) * cut) - 2000
    garbled[start:start + 1000] = np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    with pytest.raises(ImageRejected, match="decoded"):
        check_image(bytes(garbled), declared_type=None, max_pixels=10**7)
    assert check_image(data, declared_type="image/jpeg", max_pixels=10**7).width > 0


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


def test_a_corrupt_exif_block_does_not_stop_the_decode() -> None:
    # FillOrder (a number in TIFF) holding text: readable, but not writable back, as ImageOps.exif_transpose does.
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "cam"
    block = exif.tobytes().replace(b"\x01\x0f\x00\x02", b"\x01\x0a\x00\x02")
    data = encode(Image.new("RGB", (60, 40), (200, 150, 120)), "JPEG", exif=block)
    check_image(data, declared_type=None, max_pixels=10**6)
    assert decode_image(data, max_pixels=10**6).shape == (60, 40, 3), "the orientation still applies"


def test_alpha_is_composited_on_white() -> None:
    data = encode(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), "PNG")
    rgb = decode_image(data, max_pixels=10**6)
    assert rgb.dtype == np.uint8 and (rgb == 255).all()


@pytest.mark.parametrize("size, kind", [
    ((1, 1), "value_error.too_small"),
    ((31, 200), "value_error.too_small"),
    ((40000, 2), "value_error.too_small"),
    ((2, 20000), "value_error.too_small"),
    ((330, 32), "value_error.aspect_ratio"),
    ((40, 1000), "value_error.aspect_ratio"),
])
def test_slivers_and_specks_are_refused_from_the_header(size: tuple[int, int], kind: str) -> None:
    data = encode(Image.new("L", size), "PNG")
    for check in (lambda: check_image(data, declared_type=None, max_pixels=10**6, min_side=32, max_aspect_ratio=10),
                  lambda: decode_image(data, max_pixels=10**6, min_side=32, max_aspect_ratio=10)):
        with pytest.raises(ImageRejected) as err:
            check()
        assert (err.value.status, err.value.kind, err.value.field) == (422, kind, "data")
        assert f"{size[0]}x{size[1]}" in str(err.value)


@pytest.mark.parametrize("size", [(32, 32), (320, 32), (32, 320), (200, 150), (1024, 683)])
def test_sizes_at_the_limits_and_archive_sizes_pass(size: tuple[int, int]) -> None:
    data = encode(Image.new("RGB", size, (200, 150, 120)), "JPEG")
    assert check_image(data, declared_type=None, max_pixels=10**6, min_side=32, max_aspect_ratio=10).width == size[0]
    assert decode_image(data, max_pixels=10**6, min_side=32, max_aspect_ratio=10).shape == (size[1], size[0], 3)


def test_every_sample_image_passes_the_default_limits() -> None:
    from core.settings import Settings

    s = Settings()
    for path in sorted(SAMPLE.glob("*.jpg")):
        check_image(path.read_bytes(), declared_type="image/jpeg", max_pixels=s.max_image_pixels,
                    min_side=s.min_image_side, max_aspect_ratio=s.max_aspect_ratio)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_large_images_are_decoded_at_the_working_resolution(fmt: str) -> None:
    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 255, (3000, 4000, 3), dtype=np.uint8))
    rgb = decode_image(encode(big, fmt), max_pixels=10**8, max_side=1024)
    assert rgb.shape == (768, 1024, 3) and rgb.dtype == np.uint8
    small = decode_image(encode(big.resize((400, 300)), fmt), max_pixels=10**8, max_side=1024)
    assert small.shape == (300, 400, 3), "images within the working size are left as they are"


def test_an_analysis_takes_a_large_jpeg_at_a_reduced_dct_scale() -> None:
    # 2592x1936 (the sample's large images): 1/2 keeps 1296 >= 1024 px, 1/4 would not; no fit after the draft.
    rng = np.random.default_rng(1)
    big = Image.fromarray(rng.integers(0, 255, (1936, 2592, 3), dtype=np.uint8))
    reduced = decode(encode(big, "JPEG"), max_pixels=10**8, max_side=2048, reduce_to=1024)
    assert reduced.rgb.shape == (968, 1296, 3) and reduced.source_shape == (1936, 2592)
    assert decode(encode(big, "JPEG"), max_pixels=10**8, max_side=2048).rgb.shape == (1530, 2048, 3)
    # PNG has no DCT scale: fitted to max_side as before, whatever reduce_to asks.
    png = decode(encode(big, "PNG"), max_pixels=10**8, max_side=2048, reduce_to=1024)
    assert png.rgb.shape == (1530, 2048, 3) and png.source_shape == (1936, 2592)
    small = decode(encode(big.resize((800, 600)), "JPEG"), max_pixels=10**8, reduce_to=1024)
    assert small.rgb.shape == (600, 800, 3) and small.source_shape == (600, 800)


def test_the_source_shape_is_the_upright_originals() -> None:
    img = Image.fromarray(np.zeros((1000, 3000, 3), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # stored sideways: shown rotated a quarter turn
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    out = decode(buf.getvalue(), max_pixels=10**8, max_side=2048, reduce_to=1024)
    assert out.rgb.shape == (1500, 500, 3) and out.source_shape == (3000, 1000)
