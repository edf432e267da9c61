"""Finding, mapping, splitting and loading training data."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from support import SAMPLE

from pipeline.classify import preprocess_image
from pipeline.models.bundle import IMAGENET_MEAN, IMAGENET_STD
from training.phantoms import export_dataset
from training.augment import AugmentConfig, augment
from training.data import (
    LABEL_MAP_DIR,
    ClassificationDataset,
    DatasetError,
    SegmentationDataset,
    find_classification_samples,
    find_segmentation_samples,
    load_label_map,
    read_rgb,
    split_indices,
)


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_isic_fixture_maps_onto_catalogue_codes() -> None:
    samples = find_classification_samples(SAMPLE, label_map=load_label_map("isic"))
    assert samples.classes == ["2C30", "2F20", "2F21.0"]  # catalogue order
    assert Counter(samples.codes) == {"2F20": 16, "2F21.0": 15, "2C30": 9}
    assert samples.source["label_column"] == "diagnosis"
    assert all(p.is_file() for p in samples.images)


def test_label_map_notes_approximations_and_refuses_unmapped_labels(tmp_path: Path) -> None:
    image = "images/ISIC_0001769.jpg"
    shutil.copytree(SAMPLE / "images", tmp_path / "images")
    rows = [{"image": image, "dx": dx} for dx in ["bkl", "bkl", "nv", "nv", "df"]]
    csv_path = _write_csv(tmp_path / "ham.csv", rows)
    isic = load_label_map("isic")
    assert "group" in find_classification_samples(csv_path, label_map=isic).source["label_notes"]["bkl"]
    # A map may know a label yet have no catalogue condition for it (code null).
    mapping = json.loads((LABEL_MAP_DIR / "isic.json").read_text())
    mapping["name"], mapping["labels"]["df"] = "isic-without-df", {"code": None, "note": "left out"}
    (tmp_path / "map.json").write_text(json.dumps(mapping))
    without_df = load_label_map(tmp_path / "map.json")
    with pytest.raises(DatasetError, match=r"df \(1 images\).*--drop-unmapped"):
        find_classification_samples(csv_path, label_map=without_df)
    samples = find_classification_samples(csv_path, label_map=without_df, drop_unmapped=True)
    assert samples.classes == ["2F20", "2F21.0"]
    assert samples.source["dropped_unmapped"] == {"df": 1}

    _write_csv(csv_path, rows + [{"image": image, "dx": "pemphigus-like"}])
    with pytest.raises(DatasetError, match="not in label map 'isic'"):
        find_classification_samples(csv_path, label_map=isic, drop_unmapped=True)
    with pytest.raises(DatasetError, match="bundled maps: .*isic"):
        load_label_map("no-such-map")


def test_folder_names_must_be_catalogue_codes(tmp_path: Path) -> None:
    for name in ("2F20", "XX99"):
        (tmp_path / name).mkdir()
        shutil.copy(SAMPLE / "images" / "ISIC_0001769.jpg", tmp_path / name / "a.jpg")
    with pytest.raises(DatasetError, match=r"not in the catalogue: \['XX99'\]"):
        find_classification_samples(tmp_path)


def test_stratified_split_keeps_every_class_in_validation() -> None:
    labels = ["a"] * 40 + ["b"] * 3 + ["c"] * 2
    train, val = split_indices(labels, len(labels), 0.05, seed=3)
    assert {labels[i] for i in val} == {"a", "b", "c"}
    assert {labels[i] for i in train} == {"a", "b", "c"}
    assert sorted(train + val) == list(range(len(labels)))
    assert split_indices(labels, len(labels), 0.05, seed=3) == (train, val)
    with pytest.raises(DatasetError, match="fewer than 2 images.*'d'"):
        split_indices(labels + ["d"], len(labels) + 1, 0.2, seed=0)


def test_segmentation_pairs_from_isic_layout_and_csv(tmp_path: Path) -> None:
    from_csv = find_segmentation_samples(SAMPLE)
    assert len(from_csv.images) == len(from_csv.masks) == 40
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for image in sorted((SAMPLE / "images").glob("*.jpg"))[:3]:
        shutil.copy(image, tmp_path / "images")
        shutil.copy(SAMPLE / "masks" / f"{image.stem}_segmentation.png", tmp_path / "masks")
    found = find_segmentation_samples(tmp_path)
    assert [m.name for m in found.masks] == [f"{p.stem}_segmentation.png" for p in found.images]
    (tmp_path / "masks" / found.masks[0].name).unlink()
    with pytest.raises(DatasetError, match="1 image\\(s\\) have no mask"):
        find_segmentation_samples(tmp_path)


def test_evaluation_samples_use_the_serving_preprocessing(tmp_path: Path) -> None:
    export_dataset(tmp_path, count=4, seed=0, size=80, classes=["2F20", "ED63.0"])
    samples = find_segmentation_samples(tmp_path)
    kwargs = {"input_size": 64, "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "seed": 0}
    ds = ClassificationDataset(samples.images, [0, 1, 0, 1], augment_config=None, **kwargs)
    expected = preprocess_image(read_rgb(samples.images[2]), 64, IMAGENET_MEAN, IMAGENET_STD)
    assert np.array_equal(ds[2][0].numpy(), expected.numpy())
    seg = SegmentationDataset(samples.images, samples.masks, augment_config=AugmentConfig(), **kwargs)
    x, mask = seg[1]
    assert x.shape == (3, 64, 64) and mask.shape == (1, 64, 64)
    assert set(np.unique(mask.numpy())) <= {0.0, 1.0}
    assert np.array_equal(seg[1][0].numpy(), x.numpy())  # same (seed, epoch, index): same augmentation
    seg.epoch = 1
    assert not np.array_equal(seg[1][0].numpy(), x.numpy())


def test_augmentation_moves_the_mask_with_the_image() -> None:
    mask = np.zeros((90, 120), np.uint8)
    mask[20:50, 30:70] = 255
    rgb = np.dstack([mask, np.full_like(mask, 60), np.full_like(mask, 60)])
    geometric_only = AugmentConfig(brightness=0, contrast=0, saturation=0, hue=0)
    for seed in range(5):
        out, out_mask = augment(rgb, np.random.default_rng(seed), geometric_only, mask)
        assert out_mask is not None and out.shape[:2] == out_mask.shape
        agree = (out[..., 0] > 127) == (out_mask > 127)
        assert agree.mean() > 0.98  # only interpolated border pixels may differ
