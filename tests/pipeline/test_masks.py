import base64
import io

import numpy as np
import pytest
from PIL import Image

from pipeline.masks import MaskMap, annotated_attachment, map_attachments, mask_attachments
from pipeline.segmentation import Segmentation

KEYS = {"title", "contentType", "data", "height", "width", "colorModel"}


def _segmentation(h: int, w: int, threshold: float = 0.5) -> Segmentation:
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - h / 2) / h, (xx - w / 2) / w)
    prob = np.clip(1.2 - 3 * r, 0, 1).astype(np.float32)  # a smooth ramp crossing every level
    return Segmentation(prob, prob >= threshold, threshold, "classical", False)


def _decode(att: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(att["data"], validate=True)))


def _check_jpeg(att: dict, hw: tuple[int, int]) -> np.ndarray:
    """Every attachment: the six fields, an RGB JPEG whose declared and actual size is the image's."""
    assert set(att) == KEYS and att["contentType"] == "image/jpeg" and att["colorModel"] == "RGB"
    image = _decode(att)
    assert (image.format, image.mode) == ("JPEG", "RGB")
    assert (image.height, image.width) == (att["height"], att["width"]) == hw
    return np.asarray(image)


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (683, 1024, 3), dtype=np.uint8)


@pytest.mark.parametrize("hw", [(683, 1024), (509, 945), (1067, 800), (30, 45)])
def test_lesion_masks_are_rgb_jpegs_at_the_image_size(hw: tuple[int, int]) -> None:
    image = np.random.default_rng(1).integers(0, 256, (*hw, 3), dtype=np.uint8)
    atts = mask_attachments(image, _segmentation(*hw))
    assert {k: a["title"] for k, a in atts.items()} == {
        "maskRaw": "Lesion mask raw", "maskBinary": "Lesion mask binary", "segmentation": "Segmentation"}
    for att in atts.values():
        _check_jpeg(att, hw)


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.77])
def test_binary_agrees_with_raw_at_the_threshold(rgb, threshold):
    atts = mask_attachments(rgb, _segmentation(683, 1024, threshold))
    raw = np.asarray(_decode(atts["maskRaw"]))[..., 0].astype(int)
    binary = np.asarray(_decode(atts["maskBinary"]))[..., 0]
    level = round(255 * threshold)
    # JPEG blurs both a little at the edge; away from the threshold level they agree exactly.
    clear = np.abs(raw - level) > 6
    assert np.array_equal(binary[clear] > 127, raw[clear] >= level)
    assert np.isin(binary, (0, 255)).mean() > 0.95 and ((binary > 127) == (raw >= level)).mean() > 0.99


def test_raw_encodes_the_probability():
    seg = _segmentation(40, 60)
    raw = np.asarray(_decode(mask_attachments(np.zeros((40, 60, 3), np.uint8), seg)["maskRaw"])).astype(int)
    assert np.all(raw.max(axis=2) - raw.min(axis=2) <= 2)  # grey: the map in every channel
    assert np.abs(raw[..., 0] - np.rint(seg.prob * 255)).mean() < 2  # up to JPEG's loss


def test_working_size_maps_are_enlarged_once_to_the_image():
    image = np.zeros((509, 945, 3), np.uint8)
    small = np.zeros((128, 237), np.float32)
    small[32:96, 60:180] = 1.0
    atts = map_attachments(image, {"hair": MaskMap("Hair", small), "baldness": MaskMap("Baldness", 1 - small)},
                           overlay="baldness")
    assert {k: a["title"] for k, a in atts.items()} == {
        "hairMaskRaw": "Hair mask raw", "hairMaskBinary": "Hair mask binary", "baldnessMaskRaw": "Baldness mask raw",
        "baldnessMaskBinary": "Baldness mask binary", "segmentation": "Segmentation"}
    binary = _check_jpeg(atts["hairMaskBinary"], (509, 945))[..., 0] > 127
    assert binary[254, 472] and not binary[10, 10]
    assert binary.mean() == pytest.approx(small.mean(), abs=0.01)  # the region lands where it was, scaled up
    with pytest.raises(ValueError, match="no map"):
        map_attachments(image, {"hair": MaskMap("Hair", small)}, overlay="baldness")


def test_overlay_marks_the_lesion():
    grey = np.full((200, 300, 3), 128, np.uint8)
    seg = _segmentation(200, 300)
    overlay = np.asarray(_decode(mask_attachments(grey, seg)["segmentation"])).astype(int)
    assert np.abs(overlay[100, 150] - 128).sum() > 30  # tinted inside
    assert np.abs(overlay[5, 5] - 128).sum() < 10  # untouched far outside


def test_annotation_draws_the_boxes_at_full_size():
    grey = np.full((454, 701, 3), 128, np.uint8)
    att = annotated_attachment(grey, [("wheals", (100, 50, 200, 150)), ("nodules", (300, 300, 400, 420))], "Boxes")
    drawn = _check_jpeg(att, (454, 701)).astype(int)
    assert att["title"] == "Boxes"
    assert np.abs(drawn[50, 150] - 128).sum() > 60 and np.abs(drawn[300, 350] - 128).sum() > 60  # the top edges
    assert np.abs(drawn[100, 150] - 128).sum() < 12  # inside a box the image is untouched
    assert not np.array_equal(drawn[50, 150], drawn[300, 350])  # one colour per class


def test_mismatched_mask_is_refused(rgb):
    with pytest.raises(ValueError, match="does not match"):
        mask_attachments(rgb, _segmentation(100, 100))
