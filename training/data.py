"""Training data: finding labelled images, mapping labels to catalogue codes, splitting, loading.

Layouts understood (see docs/training.md):

* classification — an image folder ``DIR/<label>/*.jpg|png|webp``, or a CSV with an
  ``image`` column (path relative to the CSV) and a label column (``code`` by default).
  A directory holding ``labels.csv`` is read as that CSV.
* segmentation — ``DIR/images/*`` with ``DIR/masks/<stem>.png`` or
  ``<stem>_segmentation.png`` (the ISIC layout), or a CSV with ``image`` and ``mask``.

Labels are ICD-11 catalogue codes, or public label names translated through a label
map (``training/label_maps/<name>.json``).  Images are decoded with the serving decoder
(EXIF orientation, alpha flattened) and every sample ends in
``pipeline.classify.preprocess_image``, so training sees what serving sees.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from pipeline.catalogue import Catalogue, load_catalogue
from pipeline.classify import preprocess_image
from pipeline.imaging import ImageRejected, decode_image
from training.augment import AugmentConfig, augment

__all__ = [
    "IMAGE_SUFFIXES",
    "LABEL_MAP_DIR",
    "ClassificationDataset",
    "ClassificationSamples",
    "DatasetError",
    "LabelMap",
    "SegmentationDataset",
    "SegmentationSamples",
    "find_classification_samples",
    "find_segmentation_samples",
    "load_label_map",
    "preprocess_mask",
    "read_mask",
    "read_rgb",
    "split_indices",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
LABEL_MAP_DIR = Path(__file__).resolve().parent / "label_maps"
CSV_NAME = "labels.csv"
# Training images are the user's own files; the limit only guards against corrupt headers.
_MAX_PIXELS = 400_000_000
_LABEL_COLUMNS = ("code", "diagnosis", "dx", "label")


class DatasetError(ValueError):
    """The training data cannot be used as given; the message says what to change."""


# ---------------------------------------------------------------------------- label maps


def _normalise_label(label: str) -> str:
    return label.strip().lower().replace(" ", "_").replace("-", "_")


@dataclass(frozen=True)
class LabelMap:
    """Public label names -> catalogue ICD-11 codes (``None``: no catalogue condition)."""

    name: str
    codes: dict[str, str | None]
    notes: dict[str, str] = field(default_factory=dict)

    def lookup(self, label: str) -> str | None:
        """The code for ``label``; ``KeyError`` when the map does not know the label."""
        return self.codes[_normalise_label(label)]

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and _normalise_label(label) in self.codes


def load_label_map(name_or_path: str | os.PathLike[str]) -> LabelMap:
    """A bundled map by name (``"isic"``) or a JSON file of the same shape."""
    path = Path(name_or_path)
    if not path.suffix:
        path = LABEL_MAP_DIR / f"{name_or_path}.json"
    try:
        raw = json.loads(path.read_text())
        entries = raw["labels"]
        codes = {_normalise_label(k): v["code"] for k, v in entries.items()}
        notes = {_normalise_label(k): v["note"] for k, v in entries.items() if v.get("note")}
    except FileNotFoundError:
        bundled = sorted(p.stem for p in LABEL_MAP_DIR.glob("*.json"))
        raise DatasetError(f"label map {name_or_path!r} not found; bundled maps: {bundled}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise DatasetError(f"label map {path} is malformed: {e!r}") from None
    return LabelMap(name=str(raw.get("name", path.stem)), codes=codes, notes=notes)


# ---------------------------------------------------------------------- sample discovery


@dataclass
class ClassificationSamples:
    images: list[Path]
    codes: list[str]  # one catalogue code per image
    classes: list[str]  # distinct codes, in catalogue order (= the model's class axis)
    source: dict[str, object]  # how the data was read, for the manifest's training_data


@dataclass
class SegmentationSamples:
    images: list[Path]
    masks: list[Path]
    source: dict[str, object]


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            columns = reader.fieldnames or []
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from None
    missing = [c for c in required if c not in columns]
    if missing:
        raise DatasetError(f"{path} lacks column(s) {missing}; it has {columns}")
    if not rows:
        raise DatasetError(f"{path} has no rows")
    return rows


def _resolve(base: Path, rows: list[dict[str, str]], column: str) -> list[Path]:
    paths = [base / r[column] for r in rows]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise DatasetError(f"{len(absent)} file(s) named in column {column!r} do not exist, e.g. {absent[:3]}")
    return paths


def _csv_for(data: Path) -> Path | None:
    if data.is_file():
        if data.suffix.lower() != ".csv":
            raise DatasetError(f"{data} is a file but not a .csv")
        return data
    if not data.is_dir():
        raise DatasetError(f"{data} does not exist")
    return data / CSV_NAME if (data / CSV_NAME).is_file() else None


def _to_codes(
    labels: list[str], label_map: LabelMap | None, catalogue: Catalogue, drop_unmapped: bool
) -> tuple[list[str | None], dict[str, int]]:
    """Catalogue code per label (``None`` = dropped) and the dropped counts per label.

    Every problem is collected before raising, so one run tells the user everything.
    """
    counts = Counter(labels)
    if label_map is None:
        unknown = sorted(lbl for lbl in counts if lbl not in catalogue)
        if unknown:
            raise DatasetError(
                f"class codes not in the catalogue: {unknown[:10]} "
                f"(labels must be ICD-11 codes from pipeline/data/conditions.json, or pass a label map)"
            )
        return list(labels), {}
    not_in_map = sorted(lbl for lbl in counts if lbl not in label_map)
    no_condition = sorted(lbl for lbl in counts if lbl in label_map and label_map.lookup(lbl) is None)
    bad_code = sorted(
        {c for lbl in counts if lbl in label_map and (c := label_map.lookup(lbl)) is not None and c not in catalogue}
    )
    problems = []
    if not_in_map:
        problems.append(f"labels not in label map {label_map.name!r}: {not_in_map[:10]}")
    if no_condition and not drop_unmapped:
        described = ", ".join(f"{lbl} ({counts[lbl]} images)" for lbl in no_condition)
        problems.append(f"labels with no catalogue condition: {described}; pass --drop-unmapped to leave them out")
    if bad_code:
        problems.append(f"label map {label_map.name!r} names codes missing from the catalogue: {bad_code}")
    if problems:
        raise DatasetError("; ".join(problems))
    dropped = {lbl: counts[lbl] for lbl in no_condition}
    return [label_map.lookup(lbl) for lbl in labels], dropped


def find_classification_samples(
    data: Path,
    *,
    label_map: LabelMap | None = None,
    label_column: str | None = None,
    drop_unmapped: bool = False,
    catalogue: Catalogue | None = None,
) -> ClassificationSamples:
    """Labelled images under ``data`` (folder layout or CSV), labels as catalogue codes."""
    catalogue = catalogue or load_catalogue()
    csv_path = _csv_for(data)
    if csv_path is not None:
        rows = _read_csv(csv_path, ["image"])
        label_column = label_column or next((c for c in _LABEL_COLUMNS if c in rows[0]), "code")
        if label_column not in rows[0]:
            raise DatasetError(f"{csv_path} has no label column {label_column!r}; columns: {list(rows[0])}")
        images = _resolve(csv_path.parent, rows, "image")
        labels = [r[label_column].strip() for r in rows]
        source: dict[str, object] = {"format": "csv", "path": str(csv_path), "label_column": label_column}
    else:
        images, labels = [], []
        for class_dir in sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith(".")):
            files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            images += files
            labels += [class_dir.name] * len(files)
        if not images:
            raise DatasetError(f"no images found in {data}/<class>/ (expected {sorted(IMAGE_SUFFIXES)})")
        source = {"format": "image-folder", "path": str(data)}
    codes, dropped = _to_codes(labels, label_map, catalogue, drop_unmapped)
    kept = [i for i, c in enumerate(codes) if c is not None]
    if label_map is not None:
        source["label_map"] = label_map.name
        notes = {lbl: label_map.notes[k] for lbl in set(labels) if (k := _normalise_label(lbl)) in label_map.notes}
        if notes:
            source["label_notes"] = dict(sorted(notes.items()))
    if dropped:
        source["dropped_unmapped"] = dropped
    final_codes = [codes[i] for i in kept]
    present = set(final_codes)
    classes = [c.code for c in catalogue if c.code in present]
    if len(classes) < 2:
        raise DatasetError(f"need at least 2 classes to train a classifier, found {classes}")
    return ClassificationSamples([images[i] for i in kept], final_codes, classes, source)  # type: ignore[misc]


def find_segmentation_samples(data: Path) -> SegmentationSamples:
    """Image/mask pairs under ``data``: a CSV with ``image`` and ``mask`` or images/ + masks/."""
    csv_path = _csv_for(data)
    if csv_path is not None:
        rows = _read_csv(csv_path, ["image", "mask"])
        return SegmentationSamples(
            _resolve(csv_path.parent, rows, "image"),
            _resolve(csv_path.parent, rows, "mask"),
            {"format": "csv", "path": str(csv_path)},
        )
    image_dir, mask_dir = data / "images", data / "masks"
    if not image_dir.is_dir() or not mask_dir.is_dir():
        raise DatasetError(f"{data} needs images/ and masks/ folders (or a labels.csv with image and mask columns)")
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DatasetError(f"no images in {image_dir}")
    masks: list[Path] = []
    unmatched: list[str] = []
    for img in images:
        found = next((m for m in (mask_dir / f"{img.stem}.png", mask_dir / f"{img.stem}_segmentation.png") if m.is_file()), None)
        if found is None:
            unmatched.append(img.name)
        else:
            masks.append(found)
    if unmatched:
        raise DatasetError(
            f"{len(unmatched)} image(s) have no mask masks/<stem>.png or masks/<stem>_segmentation.png, e.g. {unmatched[:3]}"
        )
    return SegmentationSamples(images, masks, {"format": "images+masks", "path": str(data)})


def split_indices(
    labels: Sequence[str] | None, n: int, val_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Train and validation indices, stratified by ``labels`` when given.

    Each class gives ``round(val_fraction * count)`` images to validation, but at least
    one and never all of them.  (scikit-learn's proportional allocation can leave a
    rare class out of validation entirely, and then it has no metrics.)
    """
    if not 0 < val_fraction < 1:
        raise DatasetError(f"val_fraction must be in (0, 1), got {val_fraction}")
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(labels if labels is not None else [""] * n):
        groups.setdefault(label, []).append(i)
    rare = sorted(label for label, members in groups.items() if len(members) < 2)
    if rare:
        raise DatasetError(
            f"classes with fewer than 2 images cannot appear in both splits: {rare}" if labels is not None
            else f"{n} image(s) are too few to split"
        )
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for label in sorted(groups):
        members = rng.permutation(groups[label]).tolist()
        k = min(max(1, round(val_fraction * len(members))), len(members) - 1)
        val += members[:k]
        train += members[k:]
    return sorted(train), sorted(val)


# -------------------------------------------------------------------------------- loading


def read_rgb(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB, decoded exactly as the service decodes uploads."""
    try:
        return decode_image(path.read_bytes(), max_pixels=_MAX_PIXELS)
    except (OSError, ImageRejected) as e:
        raise DatasetError(f"cannot read image {path}: {e}") from None


def read_mask(path: Path) -> np.ndarray:
    """HxW uint8 mask, 255 inside the lesion (any grey value above 127 counts as lesion)."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise DatasetError(f"cannot read mask {path}")
    return np.where(mask > 127, 255, 0).astype(np.uint8)


def preprocess_mask(mask: np.ndarray, input_size: int) -> Tensor:
    """HxW uint8 mask -> 1xSxS float {0, 1}, resampled like ``preprocess_image`` resamples the image."""
    shrinking = mask.shape[0] * mask.shape[1] >= input_size * input_size
    resized = cv2.resize(
        mask.astype(np.float32) / 255.0,
        (input_size, input_size),
        interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
    )
    return torch.from_numpy((resized > 0.5).astype(np.float32))[None]


class _AugmentedImages(Dataset):
    """Common part: per-sample RNG from (seed, epoch, index) so any worker reproduces it."""

    def __init__(
        self,
        images: Sequence[Path],
        input_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        augment_config: AugmentConfig | None,
        seed: int,
    ) -> None:
        self.images = list(images)
        self.input_size, self.mean, self.std = input_size, list(mean), list(std)
        self.augment_config = augment_config
        self.seed = seed
        self.epoch = 0  # set by the training loop before each epoch

    def __len__(self) -> int:
        return len(self.images)

    def _load(self, index: int, mask_path: Path | None = None) -> tuple[Tensor, np.ndarray | None]:
        rgb = read_rgb(self.images[index])
        mask = None if mask_path is None else read_mask(mask_path)
        if mask is not None and mask.shape != rgb.shape[:2]:
            raise DatasetError(f"mask {mask_path} is {mask.shape[::-1]}, image is {rgb.shape[1::-1]}")
        if self.augment_config is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            rgb, mask = augment(rgb, rng, self.augment_config, mask)
        return preprocess_image(rgb, self.input_size, self.mean, self.std), mask


class ClassificationDataset(_AugmentedImages):
    """(image tensor, class index) pairs; augmentation only when ``augment_config`` given."""

    def __init__(self, images: Sequence[Path], targets: Sequence[int], **kwargs: object) -> None:
        super().__init__(images, **kwargs)  # type: ignore[arg-type]
        self.targets = list(targets)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self._load(index)[0], self.targets[index]


class SegmentationDataset(_AugmentedImages):
    """(image tensor, 1xSxS {0,1} mask tensor) pairs."""

    def __init__(self, images: Sequence[Path], masks: Sequence[Path], **kwargs: object) -> None:
        super().__init__(images, **kwargs)  # type: ignore[arg-type]
        self.masks = list(masks)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x, mask = self._load(index, self.masks[index])
        assert mask is not None
        return x, preprocess_mask(mask, self.input_size)
