import base64
import io

import numpy as np
import pytest
from PIL import Image

from pipeline.masks import mask_attachments
from pipeline.segmentation import Segmentation

KEYS = {"title", "contentType", "data", "height", "width", "colorModel"}


def _segmentation(h: int, w: int, threshold: float = 0.5) -> Segmentation:
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - h / 2) / h, (xx - w / 2) / w)
    prob = np.clip(1.2 - 3 * r, 0, 1).astype(np.float32)  # a smooth ramp crossing every level
    return Segmentation(prob, prob >= threshold, threshold, "classical", False)


def _decode(att: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(att["data"], validate=True)))


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (683, 1024, 3), dtype=np.uint8)


def test_shapes_formats_and_declared_sizes(rgb):
    atts = mask_attachments(rgb, _segmentation(683, 1024))
    assert set(atts) == {"maskRaw", "maskBinary", "segmentation"}
    expected = {"maskRaw": ("PNG", "L", "Grayscale"), "maskBinary": ("PNG", "L", "Grayscale"),
                "segmentation": ("JPEG", "RGB", "RGB")}
    for key, (fmt, mode, model) in expected.items():
        att = atts[key]
        assert set(att) == KEYS
        image = _decode(att)
        assert (image.format, image.mode, att["colorModel"]) == (fmt, mode, model)
        assert att["contentType"] == f"image/{fmt.lower()}"
        assert (image.height, image.width) == (att["height"], att["width"]) == (342, 512)  # 683 / 2 rounds up
        assert "clinical decisions" in att["title"]


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.77])
def test_binary_agrees_with_raw_at_the_threshold(rgb, threshold):
    atts = mask_attachments(rgb, _segmentation(683, 1024, threshold), max_side=300)
    raw = np.asarray(_decode(atts["maskRaw"]))
    binary = np.asarray(_decode(atts["maskBinary"]))
    assert set(np.unique(binary)) == {0, 255}
    assert np.array_equal(binary == 255, raw >= round(255 * threshold))


def test_raw_encodes_the_probability():
    seg = _segmentation(40, 60)
    raw = np.asarray(_decode(mask_attachments(np.zeros((40, 60, 3), np.uint8), seg)["maskRaw"]))
    assert np.array_equal(raw, np.rint(seg.prob * 255).astype(np.uint8))  # not enlarged, not resampled


def test_small_images_are_never_enlarged():
    atts = mask_attachments(np.zeros((30, 45, 3), np.uint8), _segmentation(30, 45), max_side=512)
    assert all((a["height"], a["width"]) == (30, 45) for a in atts.values())


def test_overlay_marks_the_lesion(rgb):
    grey = np.full((200, 300, 3), 128, np.uint8)
    seg = _segmentation(200, 300)
    overlay = np.asarray(_decode(mask_attachments(grey, seg)["segmentation"])).astype(int)
    assert np.abs(overlay[100, 150] - 128).sum() > 30  # tinted inside
    assert np.abs(overlay[5, 5] - 128).sum() < 10  # untouched far outside


def test_mismatched_mask_is_refused(rgb):
    with pytest.raises(ValueError, match="does not match"):
        mask_attachments(rgb, _segmentation(100, 100))
