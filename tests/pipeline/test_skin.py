from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from pipeline.skin import (
    fill_holes,
    skin_fraction,
    skin_mask,
    skin_region,
    vignette_mask,
)

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "isic2017-sample"
PATHS = sorted((SAMPLE / "images").glob("*.jpg"))


def load(path: Path) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_skin_covers_the_field_and_the_lesion(path: Path) -> None:
    rgb = load(path)
    lesion = np.asarray(Image.open(SAMPLE / "masks" / f"{path.stem}_segmentation.png")) > 127
    usable = ~vignette_mask(rgb)
    assert skin_mask(rgb)[usable].mean() > 0.6
    region = skin_region(rgb)
    assert region[usable].mean() > 0.65
    assert region[lesion & usable].mean() > 0.85, "the lesion inside the skin belongs to the skin region"
    assert skin_fraction(rgb) == pytest.approx(region[usable].mean())


# Photos whose colours are not skin-like; skin-coloured non-skin (cat fur, coffee, a red motorcycle) is
# matched by colour and rejected by the texture rule in pipeline.quality instead.
NON_SKIN_COLOURS = ["rocket", "camera", "brick", "grass", "gravel", "moon", "coins", "page", "hubble_deep_field",
                    "retina", "cell", "logo", "colorwheel", "text", "clock"]


@pytest.mark.parametrize("name", NON_SKIN_COLOURS)
def test_non_skin_photographs_have_little_skin(name: str) -> None:
    from skimage import data

    try:
        img = getattr(data, name)()
    except (ImportError, OSError) as exc:  # not bundled in this install and no network
        pytest.skip(f"skimage.data.{name} not available offline: {exc}")
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    rgb = np.ascontiguousarray(img[..., :3])
    assert skin_mask(rgb).mean() < 0.25
    assert skin_fraction(rgb) < 0.25


def test_grey_image_has_no_skin() -> None:
    grey = np.full((100, 100, 3), 128, np.uint8)
    assert not skin_mask(grey).any() and skin_fraction(grey) == 0.0


def test_skin_tones_are_detected() -> None:
    for tone in [(241, 194, 167), (224, 172, 140), (198, 134, 96), (141, 85, 54), (92, 56, 38)]:
        patch = np.empty((50, 50, 3), np.uint8)
        patch[:] = tone
        assert skin_mask(patch).mean() > 0.9, tone


def test_fill_holes_and_vignette() -> None:
    ring = np.zeros((9, 9), bool)
    ring[2:7, 2:7] = True
    ring[4, 4] = False
    assert fill_holes(ring)[4, 4]
    img = np.full((60, 60, 3), 200, np.uint8)
    img[:5] = 0
    v = vignette_mask(img)
    assert v[:5].all() and not v[10:].any()


def test_a_black_frame_alone_does_not_make_its_content_skin() -> None:
    # A non-skin picture inside a dark border: enclosed by the wall, but its rim is not skin.
    mask = np.zeros((40, 40), bool)
    wall = np.ones((40, 40), bool)
    wall[5:35, 5:35] = False
    assert not fill_holes(mask, wall=wall).any()
    # A lesion touching the field stop but otherwise surrounded by skin is filled.
    mask[5:35, 5:35] = True
    mask[5:12, 15:22] = False
    assert fill_holes(mask, wall=wall)[5:12, 15:22].all()
