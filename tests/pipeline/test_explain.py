import base64
import io

import numpy as np
import pytest
from PIL import Image

from pipeline import explain
from pipeline.explain import HEATMAP_TITLE, cam_to_heatmap, heatmap_base, hottest_point, normalise_cam


def _decode(attachment: dict) -> np.ndarray:
    img = Image.open(io.BytesIO(base64.b64decode(attachment["data"], validate=True)))
    assert img.format == "JPEG" and img.mode == "RGB"
    return np.asarray(img)


def test_attachment_shape_and_fields():
    rgb = np.full((600, 800, 3), 128, np.uint8)
    cam = np.random.default_rng(0).normal(size=(7, 7)).astype(np.float32)
    att = cam_to_heatmap(rgb, cam)
    assert set(att) == {"title", "contentType", "data", "height", "width", "colorModel"}
    assert att["title"] == HEATMAP_TITLE
    assert att["contentType"] == "image/jpeg" and att["colorModel"] == "RGB"
    assert (att["height"], att["width"]) == (288, 384)  # longer side capped at max_side
    decoded = _decode(att)
    assert decoded.shape == (att["height"], att["width"], 3)


def test_small_image_is_not_enlarged():
    att = cam_to_heatmap(np.zeros((50, 70, 3), np.uint8), np.eye(7, dtype=np.float32))
    assert (att["height"], att["width"]) == (50, 70)
    assert _decode(att).shape == (50, 70, 3)


def test_hot_spot_upper_left_is_reddest_there():
    rgb = np.full((400, 400, 3), 128, np.uint8)
    cam = np.zeros((7, 7), np.float32)
    cam[1, 1] = 5.0
    decoded = _decode(cam_to_heatmap(rgb, cam)).astype(np.int32)
    redness = decoded[..., 0] - decoded[..., 2]
    h, w = redness.shape
    y, x = np.unravel_index(np.argmax(redness), redness.shape)
    assert y < h // 2 and x < w // 2
    red = (decoded[..., 0] > 150) & (decoded[..., 2] < 100)  # JET's warm end: red/orange
    assert red.sum() > 100
    assert red[: h // 2, : w // 2].sum() == red.sum()  # all of it in the upper-left quadrant
    assert hottest_point(cam, (h, w)) == (int(1.5 * h / 7), int(1.5 * w / 7))


def test_constant_and_degenerate_maps_do_not_crash():
    rgb = np.full((64, 64, 3), 200, np.uint8)
    for cam in (np.full((7, 7), 3.0, np.float32), np.zeros((7, 7), np.float32), np.full((7, 7), np.nan, np.float32)):
        att = cam_to_heatmap(rgb, cam)
        decoded = _decode(att).astype(np.int32)
        assert np.ptp(decoded.reshape(-1, 3), axis=0).max() < 12  # uniform colour: no spurious hot spot
    assert not normalise_cam(np.full((3, 3), 7.0)).any()


def test_normalise_cam_range():
    n = normalise_cam(np.array([[-2.0, 0.0], [1.0, 2.0]]))
    assert n.dtype == np.float32 and n.min() == 0.0 and n.max() == 1.0
    assert n[0, 1] == pytest.approx(0.5)


def test_input_validation():
    with pytest.raises(ValueError):
        cam_to_heatmap(np.zeros((8, 8), np.uint8), np.zeros((7, 7)))
    with pytest.raises(ValueError):
        cam_to_heatmap(np.zeros((8, 8, 3), np.uint8), np.zeros((2, 7, 7)))
    with pytest.raises(ValueError):
        hottest_point(np.zeros((0, 0)), (10, 10))


def test_maps_of_one_image_share_one_base():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (683, 1024, 3), dtype=np.uint8)
    cam = rng.random((6, 6)).astype(np.float32)
    base = heatmap_base(rgb)
    assert max(base.shape[:2]) <= 384 and base.dtype == np.uint8
    assert cam_to_heatmap(rgb, cam, base=base) == cam_to_heatmap(rgb, cam)  # same bytes as drawing it alone


def test_colour_table_is_opencv_jet():
    import cv2

    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    expected = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(cv2.applyColorMap(levels, explain._JET), expected)
