"""Photos for the severity tests: phantoms at the reference client's non-square sizes, and a drawn wound."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from training.phantoms import make_phantom

GRANULATION_RGB, SLOUGH_RGB, NECROSIS_RGB = (175, 45, 50), (215, 195, 110), (40, 30, 28)


def phantom_photo(label: str, width: int, height: int, seed: int = 1, **kw) -> np.ndarray:
    """A clinical phantom of ``label`` resized to width x height (the drawing is squeezed, not cropped)."""
    p = make_phantom(seed, label=label, size=max(width, height), modality="Clinical", **kw)
    return cv2.resize(p.rgb, (width, height), interpolation=cv2.INTER_AREA)


def wound_photo(width: int = 1024, height: int = 768, *, slough: bool = True, necrosis: bool = True,
                erythema: bool = True, wound: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fair skin with an elliptic wound bed: granulation, a slough side, a necrotic lower part and a ring of
    periwound erythema (Δa* +12), each optional. Returns the photo and the true wound mask."""
    skin = phantom_photo("2F20", width, height, seed, fitzpatrick=2, count=0)
    lab = cv2.cvtColor(skin.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    yy, xx = np.mgrid[:height, :width]
    cx, cy, rx, ry = width * 0.5, height * 0.5, width * 0.18, height * 0.2
    r = np.hypot((xx - cx) / rx, (yy - cy) / ry)
    bed = (r < 1) if wound else np.zeros((height, width), bool)
    if erythema and wound:
        lab[..., 1][(r >= 1) & (r < 1.6)] += 12
    out = np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255, 0, 255).astype(np.uint8)
    out[bed] = GRANULATION_RGB
    if slough:
        out[bed & (xx < cx - rx * 0.3)] = SLOUGH_RGB
    if necrosis:
        out[bed & (yy > cy + ry * 0.5)] = NECROSIS_RGB
    noise = np.random.default_rng(seed).normal(0, 4, out.shape)
    return np.clip(out + noise, 0, 255).astype(np.uint8), bed


@pytest.fixture
def make_photo() -> Callable[..., np.ndarray]:
    return phantom_photo


@pytest.fixture
def make_wound() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    return wound_photo
