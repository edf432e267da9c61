from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.skin import fill_holes, skin_fraction, skin_mask, skin_region, vignette_mask

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "isic2017-sample"


@pytest.mark.parametrize("path", sorted((SAMPLE / "images").glob("*.jpg"))[::5])
def test_skin_region_covers_the_field_and_the_lesion(path: Path) -> None:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    mask = np.asarray(Image.open(SAMPLE / "masks" / f"{path.stem}_segmentation.png")) > 127
    region = skin_region(rgb)
    usable = ~vignette_mask(rgb)
    assert region[usable].mean() > 0.5
    assert region[mask & usable].mean() > 0.6, "the lesion inside the skin belongs to the skin region"


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
