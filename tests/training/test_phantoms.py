"""Synthetic phantoms: determinism, ground truth that matches the drawing, framing, defects, export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.catalogue import DEFAULT_CATALOGUE_PATH
from training.phantoms import (
    CSV_COLUMNS,
    DEFECTS,
    FITZPATRICK_LAB,
    PHANTOM_CLASSES,
    export_dataset,
    make_phantom,
)
from pipeline.skin import vignette_mask


def lab_of(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def ring(mask: np.ndarray, width: int) -> np.ndarray:
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    near = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
    return near & ~cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)


def test_classes_are_catalogue_codes_in_a_stable_order() -> None:
    codes = {c["code"] for c in json.loads(DEFAULT_CATALOGUE_PATH.read_text())}
    assert set(PHANTOM_CLASSES) <= codes
    assert list(PHANTOM_CLASSES)[:2] == ["2F20", "2C30"]
    assert {"2F20", "2C30", "2F21.0", "EA90", "EB00", "ED80", "ED63.0", "ED70.2"} <= set(PHANTOM_CLASSES)


def test_same_seed_same_phantom_other_seed_other_phantom() -> None:
    a, b, other = make_phantom(11), make_phantom(11), make_phantom(12)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.mask, b.mask)
    assert (a.label, a.fitzpatrick, a.erythema_delta_a, a.spots) == (b.label, b.fitzpatrick, b.erythema_delta_a, b.spots)
    assert not np.array_equal(a.rgb, other.rgb)


@pytest.mark.parametrize("code", list(PHANTOM_CLASSES))
def test_every_class_and_skin_type_renders_with_a_mask_that_matches_the_drawing(code: str) -> None:
    for fitzpatrick in FITZPATRICK_LAB:
        p = make_phantom(fitzpatrick, label=code, fitzpatrick=fitzpatrick, size=128, count=None)
        assert p.rgb.shape == (128, 128, 3) and p.rgb.dtype == np.uint8 and p.mask.shape == (128, 128)
        assert (p.label, p.fitzpatrick) == (code, fitzpatrick)
        assert p.mask.any() and p.area_fraction == pytest.approx(p.mask.mean())
        lab = lab_of(p.rgb)
        core = cv2.erode(p.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        inside, outside = np.median(lab[core], axis=0), np.median(lab[ring(p.mask, 6)], axis=0)
        assert np.linalg.norm(inside - outside) > 5.0, (code, fitzpatrick)


def test_skin_darkens_with_fitzpatrick_type() -> None:
    lightness = [np.median(lab_of(p.rgb)[..., 0][~p.mask]) for p in
                 (make_phantom(3, label="2F20", fitzpatrick=f, modality="Clinical", size=96) for f in FITZPATRICK_LAB)]
    assert all(np.diff(lightness) < -4)


def test_dermoscopic_framing_has_a_dark_circular_vignette() -> None:
    derm = make_phantom(5, label="2C30", modality="Dermoscopic")
    clin = make_phantom(5, label="2C30", modality="Clinical")
    vig = vignette_mask(derm.rgb)
    assert derm.modality == "Dermoscopic" and vig[[0, 0, -1, -1], [0, -1, 0, -1]].all()
    assert 0.1 < vig.mean() < 0.4 and not vig[128, 128]
    assert not (derm.mask & vig).any()
    assert not vignette_mask(clin.rgb).any()
    assert derm.area_fraction > clin.area_fraction  # the dermoscope magnifies


def test_defects_change_the_image_but_not_the_truth() -> None:
    clean = make_phantom(8, label="EA90", fitzpatrick=3)
    gray = cv2.cvtColor(clean.rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    for defect in DEFECTS:
        bad = make_phantom(8, label="EA90", fitzpatrick=3, defects=(defect,))
        assert bad.defects == (defect,) and np.array_equal(bad.mask, clean.mask)
        assert bad.erythema_delta_a == clean.erythema_delta_a
        g = cv2.cvtColor(bad.rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        sharp, mean = cv2.Laplacian(g, cv2.CV_32F).std(), g.mean()
        expected = {"blur": sharp < 0.5 * cv2.Laplacian(gray, cv2.CV_32F).std(), "dark": mean < 0.3 * gray.mean(),
                    "overexposed": mean > 1.4 * gray.mean(), "noise": sharp > 3 * cv2.Laplacian(gray, cv2.CV_32F).std()}
        assert expected[defect], defect
    with pytest.raises(ValueError):
        make_phantom(8, defects=("fog",))


@pytest.mark.parametrize("code", ["EB00", "ED80", "ED92.0"])
def test_spot_counts_and_boxes_are_exact(code: str) -> None:
    for n in (0, 3, 12):
        p = make_phantom(n, label=code, count=n)
        assert len(p.spots) == n and p.spot_kind is not None
        labels = cv2.connectedComponents(p.mask.astype(np.uint8), connectivity=8)[0] - 1
        assert labels == n
        for x1, y1, x2, y2 in p.spots:
            assert p.mask[y1:y2, x1:x2].any() and 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 256
        assert set(p.pustules) <= set(p.spots)


def test_redness_and_scale_are_the_ground_truth_asked_for() -> None:
    for redness in (5.0, 15.0, 25.0):
        p = make_phantom(2, label="EA90", redness=redness, scale=0.3, fitzpatrick=2)
        assert p.erythema_delta_a == pytest.approx(redness, abs=0.5)
        assert p.scale_fraction == pytest.approx(0.3, abs=0.02)
        measured = np.median(lab_of(p.rgb)[..., 1][p.mask & ~cv2.dilate(
            (lab_of(p.rgb)[..., 0] > 75).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)])
        assert measured - np.median(lab_of(p.rgb)[..., 1][ring(p.mask, 8)]) == pytest.approx(redness, abs=2.5)


def test_depigmentation_and_hair_loss_fractions() -> None:
    vit = make_phantom(4, label="ED63.0")
    assert vit.depigmented_fraction == pytest.approx(vit.area_fraction) and vit.hair_loss_fraction == 0
    scalp = make_phantom(4, label="ED70.2")
    assert scalp.hair_loss_fraction == pytest.approx(scalp.area_fraction) and 0 < scalp.hair_loss_fraction < 0.6
    gray = cv2.cvtColor(scalp.rgb, cv2.COLOR_RGB2GRAY)
    dark = gray < np.median(gray[scalp.mask]) - 20
    assert dark[scalp.mask].mean() < 0.05 and dark[~scalp.mask].mean() > 0.2  # hair everywhere but the patches


def test_export_writes_an_image_folder_dataset(tmp_path: Path) -> None:
    csv_path = export_dataset(tmp_path / "ds", count=6, seed=1, size=64, classes=["2F20", "EB00"])
    rows = list(csv.DictReader(csv_path.open()))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 6
    assert sorted(r["code"] for r in rows) == ["2F20"] * 3 + ["EB00"] * 3
    for row in rows:
        image, mask = csv_path.parent / row["image"], csv_path.parent / row["mask"]
        assert image.parent.name == row["code"] and image.parent.parent.name == "images"
        assert cv2.imread(str(image)).shape == (64, 64, 3)
        m = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
        assert set(np.unique(m)) <= {0, 255} and (m > 0).mean() == pytest.approx(float(row["area_fraction"]), abs=1e-3)
    with pytest.raises(ValueError):
        export_dataset(tmp_path / "bad", count=1, seed=1, classes=["XX00"])
