"""The image gate's recipe: a calibrated linear head on pooled statistics of the classifier backbone.

``dermq train image-gate`` fits the ``image_gate`` head of a classifier bundle (by default
the shipped dermoscopy classifier) on three kinds of real images laid out as in
``shared/data``:

* ``dermoscopic``: ``ham10000/`` and ``isic2017/``, split exactly as the classifier was
  (HAM10000 by lesion, ISIC 2017 by image), so the gate's test images are the
  classifier's held-out lesions too;
* ``clinical``: ``clinical/`` (MSLD split by patient group, SD-198 by image);
* ``other``: ``nonskin/`` (everyday photos, people and faces included), stratified by
  source and by its person flag.

Training images are seen several times: as they are, augmented (rotation, crop, colour and
exposure), degraded (blur, darkening, glare, noise, heavy JPEG, downscaling: the gate must
keep its domain call so that the *quality* check names the defect), as a 224-px centre
square (the ISIC challenge format), with the SD-198 watermark strip cropped off, and, for
clinical photos, shrunk onto a plain background (skin photographed from too far away is
still skin; ``framing`` then fails). The head is a multinomial logistic regression with
balanced class weights on standardised features, folded into one linear layer; its
temperature is fitted on the calibration split, and every figure is measured on the
held-out test split plus leave-one-source-out refits (how the gate does on a source it
never saw). The backbone and the classification head are left exactly as they were.

The same run fits the ``sharpness`` head (``training.sharpness_head``: sharp vs blurred on
the gate's input, the training views plus blurred copies of the training images), which
``pipeline.quality`` blends with the classical blur measure. ``feature_cache`` keeps the
extracted features in a file, so that the heads can be refitted without the forward passes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from core.fileio import atomic_write
from pipeline.classify import Classifier
from pipeline.gate import GATE_CLASSES, GATE_HEAD, SHARPNESS_CLASSES, SHARPNESS_HEAD
from pipeline.models.bundle import (
    HEAD_PREFIX,
    HeadSpec,
    ModelBundle,
    load_bundle,
    save_bundle,
)
from pipeline.quality import QualityConfig, sharpness_value
from training import sharpness_head
from training.augment import AugmentConfig, augment
from training.data import DatasetError, read_rgb
from training.dermoscopy import SplitConfig, load_records, split_records
from training.evaluation import (
    binary_ece,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    softmax,
)
from training.model_card import MODEL_CARD_FILE

__all__ = [
    "GateRecord",
    "ImageGateConfig",
    "degrade",
    "far_view",
    "load_gate_records",
    "split_gate_records",
    "train_image_gate",
]

OTHER, CLINICAL, DERMOSCOPIC = range(3)
PARTS = ("train", "calibration", "test")
DEGRADATIONS = ("gaussian_blur", "motion_blur", "dark", "overexposed", "noise", "jpeg", "downscale")
# Colour and exposure shifts wider than the classifier's: the gate must hold under any camera.
GATE_AUGMENT = AugmentConfig(crop_scale=(0.35, 1.0), crop_ratio=(1 / 2, 2.0), brightness=0.35, contrast=0.3,
                             saturation=0.35, hue=0.04)
SD198_STRIP = 0.12  # share of the height the DermQuest watermark strip takes at the bottom
# The head reads mean and std of every stage from the 48x48 one to the last feature map: on the
# held-out split this beat the last map's mean alone (other refused 97.0 -> 99.2 %, clinical photos
# called skin 93.9 -> 95.8 %, dermoscopic called Dermoscopic 98.3 -> 99.3 %).
GATE_TAPS = list(range(2, 9))
GATE_POOLING = ["mean", "std"]


@dataclass(frozen=True)
class GateRecord:
    image: Path
    label: int  # index into GATE_CLASSES
    source: str  # ham10000 | isic2017 | msld-v1 | sd198-subset | imagenet-sample | kodak24 | ...
    group: str  # split key: images of one lesion or patient stay together
    person: bool = False  # nonskin photo flagged as showing people


class ImageGateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Path
    bundle: Path  # the classifier bundle whose backbone the head reads (rewritten in place unless `out`)
    out: Path | None = None
    seed: int = 0
    # Dermoscopic images used per part (they outnumber the others ten to one; a few thousand suffice).
    dermoscopic_per_part: dict[str, int] = Field(default_factory=lambda: {"train": 1800, "calibration": 500, "test": 1200})
    calibration_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.25, ge=0.15, lt=0.5)
    augmented_views: int = Field(default=2, ge=0, le=8)
    # sklearn's C (inverse L2 strength): the one with the lowest calibration NLL is kept.
    regularisation: tuple[float, ...] = Field(default=(0.02, 0.05), min_length=1)
    # The sharpness head: blurred copies per training image, and its C candidates (lowest calibration NLL kept).
    blurred_views: int = Field(default=2, ge=1, le=8)
    sharpness_regularisation: tuple[float, ...] = Field(default=(0.01, 0.05), min_length=1)
    batch_size: int = Field(default=32, ge=1)
    # An .npz file for the extracted features: written after extraction, read instead of it when its
    # settings match (the heads can then be refitted in seconds). None: always extract.
    feature_cache: Path | None = None


# ---------------------------------------------------------------------------------- records


def _csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DatasetError(f"{path} not found (expected the shared/data layout, see docs/training.md)")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_gate_records(root: Path) -> list[GateRecord]:
    """The clinical and non-skin images under ``root`` (dermoscopic ones come from the classifier's records)."""
    records: list[GateRecord] = []
    groups = {row["file"]: row.get("group") or "" for row in _csv(root / "clinical" / "provenance.csv")}
    for row in _csv(root / "clinical" / "labels.csv"):
        # SD-198 has no patient key; MSLD's is the patient prefix (two prefixes share one photo, see its README).
        group = groups.get(row["file"]) or row["file"]
        group = {"msld-82": "msld-34"}.get(group, group)
        records.append(GateRecord(root / "clinical" / "images" / row["file"], CLINICAL, row["source"], group))
    for row in _csv(root / "nonskin" / "labels.csv"):
        person = "person" in row.get("note", "")
        records.append(GateRecord(root / "nonskin" / "images" / row["file"], OTHER, row["source"], row["file"], person))
    missing = [r.image for r in records if not r.image.is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} listed images are missing, e.g. {[str(p) for p in missing[:3]]}")
    return records


def _dermoscopic_records(root: Path, config: ImageGateConfig) -> dict[str, list[GateRecord]]:
    """The classifier's own split (its test lesions stay held out here too), subsampled per part."""
    split = split_records(load_records(root), SplitConfig(data=root, out=root, seed=config.seed))
    sources = {"train": split["train"], "calibration": split["calibration"], "test": split["test"] + split["external"]}
    rng = np.random.default_rng(config.seed)
    parts: dict[str, list[GateRecord]] = {}
    for part, records in sources.items():
        take = min(config.dermoscopic_per_part[part], len(records))
        chosen = sorted(rng.choice(len(records), size=take, replace=False).tolist())
        parts[part] = [GateRecord(records[i].image, DERMOSCOPIC, records[i].source, records[i].lesion) for i in chosen]
    return parts


def split_gate_records(records: Sequence[GateRecord], config: ImageGateConfig) -> dict[str, list[GateRecord]]:
    """Train / calibration / test by group, stratified by (source, person flag)."""
    strata: dict[tuple[str, bool], dict[str, list[GateRecord]]] = {}
    for r in records:
        strata.setdefault((r.source, r.person), {}).setdefault(r.group, []).append(r)
    rng = np.random.default_rng(config.seed + 1)
    parts: dict[str, list[GateRecord]] = {p: [] for p in PARTS}
    for key in sorted(strata):
        groups = sorted(strata[key])
        order = rng.permutation(len(groups))
        n_test = round(config.test_fraction * len(groups))
        n_cal = round(config.calibration_fraction * len(groups))
        for rank, g in enumerate(order):
            part = "test" if rank < n_test else "calibration" if rank < n_test + n_cal else "train"
            parts[part] += strata[key][groups[g]]
    return parts


# ---------------------------------------------------------------------------------- views


def degrade(rgb: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """One real-world defect, at a strength that should make the image unusable for analysis."""
    h, w = rgb.shape[:2]
    side = max(h, w)
    if kind == "gaussian_blur":
        sigma = side * rng.uniform(0.012, 0.03)
        return cv2.GaussianBlur(rgb, (0, 0), sigma)
    if kind == "motion_blur":
        length = max(5, round(side * rng.uniform(0.04, 0.08)))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        angle = rng.uniform(0, 180)
        kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0),
                                (length, length))
        return cv2.filter2D(rgb, -1, kernel / max(kernel.sum(), 1e-6))
    if kind == "dark":
        return (rgb.astype(np.float32) * rng.uniform(0.08, 0.2)).astype(np.uint8)
    if kind == "overexposed":
        return np.clip(rgb.astype(np.float32) * rng.uniform(2.2, 3.5) + rng.uniform(40, 90), 0, 255).astype(np.uint8)
    if kind == "noise":
        noisy = rgb.astype(np.float32) + rng.normal(0, rng.uniform(25, 40), rgb.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)
    if kind == "jpeg":
        ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(3, 8))])
        assert ok
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()
    if kind == "downscale":
        scale = rng.uniform(0.2, 0.35)
        return cv2.resize(rgb, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    raise ValueError(f"unknown degradation {kind!r}; known: {DEGRADATIONS}")


def far_view(rgb: np.ndarray, rng: np.random.Generator, scale: float | None = None) -> np.ndarray:
    """The photo shrunk onto a plain, lit background: skin photographed from too far away."""
    h, w = rgb.shape[:2]
    scale = rng.uniform(0.3, 0.5) if scale is None else scale
    colour = rng.uniform(40, 230, 3)
    gradient = np.linspace(rng.uniform(0.7, 1.0), rng.uniform(0.9, 1.2), w, dtype=np.float32)[None, :, None]
    canvas = np.clip(colour[None, None, :] * gradient + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)
    sh, sw = max(8, round(h * scale)), max(8, round(w * scale))
    top, left = int(rng.integers(0, h - sh + 1)), int(rng.integers(0, w - sw + 1))
    canvas[top : top + sh, left : left + sw] = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    return canvas


def _centre_square(rgb: np.ndarray, side: int = 224) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return cv2.resize(rgb[top : top + s, left : left + s], (side, side), interpolation=cv2.INTER_AREA)


def restyle(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera's or an archive's processing: sharpening ("HDR" look), smoothing, gamma, recompression.

    Applied to every kind of image alike, so that no processing look can stand for a kind
    (SD-198's contrast filter, say, must not mean "clinical").
    """
    kind = int(rng.integers(4))
    x = rgb.astype(np.float32)
    if kind == 0:  # unsharp mask
        x = x + rng.uniform(0.8, 2.0) * (x - cv2.GaussianBlur(x, (0, 0), rng.uniform(1.0, 3.0)))
    elif kind == 1:  # smoothing
        x = cv2.bilateralFilter(x, 7, 30, 5)
    elif kind == 2:  # gamma
        x = 255.0 * (x / 255.0) ** rng.uniform(0.6, 1.6)
    out = np.clip(x, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 95))])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


def training_views(rgb: np.ndarray, record: GateRecord, rng: np.random.Generator,
                   augmented: int) -> list[tuple[np.ndarray, int, str]]:
    """The image as it is, plus the variants a skin photo (or a non-skin one) arrives in, with labels and tags."""
    if record.source == "sd198-subset" and rng.random() < 0.5:
        rgb = rgb[: round(rgb.shape[0] * (1 - SD198_STRIP))]
    views = [(rgb, "plain"), (_centre_square(rgb), "square"), (restyle(augment(rgb, rng, GATE_AUGMENT)[0], rng), "restyled")]
    views += [(augment(rgb, rng, GATE_AUGMENT)[0], "augmented") for _ in range(augmented)]
    base = augment(rgb, rng, GATE_AUGMENT)[0]
    kind = str(rng.choice(DEGRADATIONS))  # drawn after the augmentation, as the recipe always has
    views.append((degrade(base, kind, rng), f"degraded:{kind}"))
    if record.label == CLINICAL:
        views.append((far_view(rgb, rng), "far"))
    return [(view, record.label, tag) for view, tag in views]


# ---------------------------------------------------------------------------------- features


def _batched(items: Iterator[tuple[np.ndarray, int]], size: int) -> Iterator[list[tuple[np.ndarray, int]]]:
    batch: list[tuple[np.ndarray, int]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


Views = Callable[[np.ndarray, GateRecord, int], list[tuple[np.ndarray, int, str]]]


@dataclass
class Extracted:
    """Head inputs of every view of every record, with its label, record index, tag and measure."""

    features: np.ndarray
    labels: np.ndarray
    owner: np.ndarray
    tags: np.ndarray
    measures: np.ndarray  # ``measure`` of each view (NaN where none was asked for)


def extract(classifier: Classifier, records: Sequence[GateRecord], views: Views, batch_size: int, desc: str,
            measure: Callable[[np.ndarray], float] | None = None) -> Extracted:
    """Run ``views`` of every record through the backbone (one pass per view), optionally measuring each view."""
    view_labels: list[int] = []
    tags: list[str] = []
    measures: list[float] = []

    def stream() -> Iterator[tuple[np.ndarray, int]]:
        for i, record in enumerate(records):
            for view, label, tag in views(read_rgb(record.image), record, i):
                view_labels.append(label)
                tags.append(tag)
                measures.append(measure(view) if measure else float("nan"))
                yield view, i

    feats: list[np.ndarray] = []
    owners: list[int] = []
    with tqdm(total=len(records), desc=desc, unit="img", leave=False) as bar:
        seen = -1
        for batch in _batched(stream(), batch_size):
            x = torch.stack([classifier.preprocess(view) for view, _ in batch])
            feats.append(classifier.head_inputs(x, GATE_TAPS, GATE_POOLING))
            owners += [i for _, i in batch]
            bar.update(batch[-1][1] - seen)
            seen = batch[-1][1]
    width = classifier.head_inputs(torch.zeros(1, 3, 64, 64), GATE_TAPS, GATE_POOLING).shape[1]
    features = np.concatenate(feats).astype(np.float64) if feats else np.zeros((0, width))
    return Extracted(features, np.asarray(view_labels, np.int64), np.asarray(owners, np.int64),
                     np.asarray(tags, dtype=str), np.asarray(measures, np.float64))


# ---------------------------------------------------------------------------------- head


def fit_head(features: np.ndarray, labels: np.ndarray, c: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced multinomial logistic regression on standardised features, folded into (W, b)."""
    from sklearn.linear_model import LogisticRegression

    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed)
    model.fit((features - mean) / std, labels)
    weight = model.coef_ / std
    bias = model.intercept_ - weight @ mean
    return weight, bias


def _rates(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The gate's decisions as the report makes them, per true kind of image."""
    skin = probs[:, CLINICAL] + probs[:, DERMOSCOPIC]
    derm_given_skin = probs[:, DERMOSCOPIC] / np.maximum(skin, 1e-12)
    is_skin = skin >= 0.5
    out: dict[str, float] = {}
    for label, name in enumerate(GATE_CLASSES):
        sel = labels == label
        if not sel.any():
            continue
        out[f"{name}_images"] = float(sel.sum())
        if label == OTHER:
            out[f"{name}_not_dermatological"] = round(float((~is_skin[sel]).mean()), 4)
        else:
            out[f"{name}_dermatological"] = round(float(is_skin[sel].mean()), 4)
            right = (derm_given_skin[sel] >= 0.5) if label == DERMOSCOPIC else (derm_given_skin[sel] < 0.5)
            out[f"{name}_modality_right"] = round(float((is_skin[sel] & right).mean()), 4)
    return out


def gate_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    skin = probs[:, CLINICAL] + probs[:, DERMOSCOPIC]
    on_skin = labels != OTHER
    derm_given_skin = probs[on_skin, DERMOSCOPIC] / np.maximum(skin[on_skin], 1e-12)
    return {
        **_rates(probs, labels),
        "accuracy": round(float((probs.argmax(axis=1) == labels).mean()), 4),
        "domain_ece": round(binary_ece(skin, on_skin), 4),
        "modality_ece": round(binary_ece(derm_given_skin, labels[on_skin] == DERMOSCOPIC), 4),
        "ece": round(expected_calibration_error(probs, labels), 4),
    }


# Sources left out one at a time to estimate how the gate does on images from a source it never saw.
LEAVE_OUT = {
    "isic2017": ("dermoscopic, a second archive", {"isic2017"}),
    "sd198-subset": ("clinical, SD-198", {"sd198-subset"}),
    "msld-v1": ("clinical, MSLD", {"msld-v1"}),
    "non-imagenet": ("non-skin photos outside ImageNet", {"kodak24", "scikit-image", "google-coral-test-data"}),
}


def _leave_one_out(feats: dict[str, np.ndarray], labels: dict[str, np.ndarray], sources: dict[str, np.ndarray],
                   c: float, seed: int) -> dict[str, dict[str, Any]]:
    """Refit without one source and score that source's test images."""
    out: dict[str, dict[str, Any]] = {}
    for name, (what, members) in LEAVE_OUT.items():
        held = {part: np.isin(sources[part], list(members)) for part in PARTS}
        if not held["test"].any():
            continue
        w, b = fit_head(feats["train"][~held["train"]], labels["train"][~held["train"]], c, seed)
        t = fit_temperature(feats["calibration"][~held["calibration"]] @ w.T + b, labels["calibration"][~held["calibration"]])
        probs = softmax(feats["test"][held["test"]] @ w.T + b, t)
        out[name] = {"held_out": what, **_rates(probs, labels["test"][held["test"]])}
    return out


def _cache_key(config: ImageGateConfig, bundle: ModelBundle, parts: dict[str, list[GateRecord]]) -> str:
    """What the cached features depend on: the backbone, the records and the view settings."""
    names = {part: [str(r.image) for r in records] for part, records in parts.items()}
    settings = {"weights": bundle.manifest.weights_sha256, "seed": config.seed, "augmented": config.augmented_views,
                "blurred": config.blurred_views, "taps": GATE_TAPS, "pooling": GATE_POOLING, "records": names}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


FIELDS = ("features", "labels", "owner", "tags", "measures")


def _load_cache(path: Path | None, key: str) -> tuple[dict[str, dict[str, Extracted]], float] | None:
    """The cached features and the seconds their extraction took, or None if absent or made for other settings."""
    if path is None or not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        if str(z["key"]) != key:
            return None
        out = {kind: {part: Extracted(*(z[f"{kind}.{part}.{f}"] for f in FIELDS)) for part in PARTS}
               for kind in ("gate", "blurred")}
        return out, float(z["seconds"]) if "seconds" in z else float("nan")


def _save_cache(path: Path, key: str, extracted: dict[str, dict[str, Extracted]], seconds: float) -> None:
    arrays = {f"{kind}.{part}.{f}": getattr(e, f) for kind, by_part in extracted.items() for part, e in by_part.items()
              for f in FIELDS}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, key=np.asarray(key), seconds=np.asarray(seconds), **arrays)
    tmp.replace(path)


def extract_features(config: ImageGateConfig, classifier: Classifier, bundle: ModelBundle,
                     parts: dict[str, list[GateRecord]]) -> tuple[dict[str, dict[str, Extracted]], float, bool]:
    """Head inputs of the gate's views (``gate``) and of the blurred copies (``blurred``), per part.

    Calibration and test images carry their classical sharpness measure (``measures``): the
    blend of both blur cues is chosen and measured on them. Also returns the seconds the
    extraction took (when it was done, for a cached one) and whether it came from the cache.
    """
    started = time.perf_counter()
    key = _cache_key(config, bundle, parts)
    cached = _load_cache(config.feature_cache, key)
    if cached is not None:
        return cached[0], cached[1], True

    def train_views(rgb: np.ndarray, record: GateRecord, index: int) -> list[tuple[np.ndarray, int, str]]:
        rng = np.random.default_rng([config.seed, index])
        return training_views(rgb, record, rng, config.augmented_views)

    def plain(rgb: np.ndarray, record: GateRecord, index: int) -> list[tuple[np.ndarray, int, str]]:
        return [(rgb, record.label, "plain")]

    def blurred(count: int, stream: int) -> Views:
        def views(rgb: np.ndarray, record: GateRecord, index: int) -> list[tuple[np.ndarray, int, str]]:
            rng = np.random.default_rng([config.seed, index, stream])
            return [(view, record.label, tag) for view, tag in sharpness_head.blurred_views(rgb, rng, count, GATE_AUGMENT)]
        return views

    out: dict[str, dict[str, Extracted]] = {"gate": {}, "blurred": {}}
    for part in PARTS:
        train = part == "train"
        out["gate"][part] = extract(classifier, parts[part], train_views if train else plain, config.batch_size,
                                    f"gate features ({part})", None if train else sharpness_value)
        # Sharpness examples: blurred copies (training: `blurred_views` each; calibration and test: one each).
        out["blurred"][part] = extract(classifier, parts[part], blurred(config.blurred_views if train else 1, 1 + PARTS.index(part)),
                                       config.batch_size, f"blurred features ({part})", None if train else sharpness_value)
    seconds = time.perf_counter() - started
    if config.feature_cache is not None:
        _save_cache(config.feature_cache, key, out, seconds)
    return out, seconds, False


def _sharpness_examples(extracted: dict[str, dict[str, Extracted]], part: str) -> tuple[np.ndarray, ...]:
    """Features, SHARP/BLURRED labels, classical measures and skin flags of one part's usable views."""
    gate, blurred = extracted["gate"][part], extracted["blurred"][part]
    x = np.concatenate([gate.features, blurred.features])
    y = np.concatenate([sharpness_head.sharpness_labels(gate.tags), np.full(len(blurred.labels), sharpness_head.BLURRED)])
    measures = np.concatenate([gate.measures, blurred.measures])
    skin = np.concatenate([gate.labels, blurred.labels]) != OTHER
    keep = y >= 0
    return x[keep], y[keep], measures[keep], skin[keep]


def fit_sharpness(extracted: dict[str, dict[str, Extracted]], config: ImageGateConfig,
                  dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray, float, float, dict[str, Any]]:
    """Weight, bias, temperature and C of the sharpness head, and its figures (calibration and test)."""
    x, y, _, _ = _sharpness_examples(extracted, "train")
    xc, yc, mc, sc = _sharpness_examples(extracted, "calibration")
    candidates = []
    for c in config.sharpness_regularisation:
        w, b = sharpness_head.fit_binary_head(x, y, c, config.seed)
        w, b = (torch.from_numpy(a).to(dtype).double().numpy() for a in (w, b))
        logits = xc @ w.T + b
        t = fit_temperature(logits, yc)
        candidates.append((negative_log_likelihood(logits, yc, t), c, w, b, t))
    _, chosen_c, weight, bias, temperature = min(candidates, key=lambda item: item[0])
    quality = QualityConfig()
    figures: dict[str, Any] = {"thresholds": {"max_blur_probability": quality.max_blur_probability,
                                              "sharp_probability": quality.sharp_probability}}
    for part, (xp, yp, mp, sp) in {"calibration": (xc, yc, mc, sc), "test": _sharpness_examples(extracted, "test")}.items():
        p = softmax(xp @ weight.T + bias, temperature)[:, sharpness_head.BLURRED]
        figures[part] = sharpness_head.sharpness_metrics(p, yp, mp, sp, quality)
    figures["train_views"] = {"sharp": int((y == sharpness_head.SHARP).sum()), "blurred": int((y == sharpness_head.BLURRED).sum())}
    return weight, bias, temperature, chosen_c, figures


def train_image_gate(config: ImageGateConfig) -> dict[str, Any]:
    """Fit, calibrate and measure the gate and sharpness heads; write them into the bundle. Returns the gate head's record."""
    torch.manual_seed(config.seed)
    bundle = load_bundle(config.bundle)
    classifier = Classifier.from_bundle(bundle)
    parts = split_gate_records(load_gate_records(config.data), config)
    for part, derm in _dermoscopic_records(config.data, config).items():
        parts[part] = derm + parts[part]

    extracted, extraction_s, from_cache = extract_features(config, classifier, bundle, parts)
    feats = {part: e.features for part, e in extracted["gate"].items()}
    labels = {part: e.labels for part, e in extracted["gate"].items()}
    sources = {part: np.asarray([parts[part][i].source for i in e.owner], dtype=str) for part, e in extracted["gate"].items()}
    fitting_started = time.perf_counter()

    # Measured as stored: the bundle keeps its tensors in the backbone's precision (fp16).
    dtype = next(v.dtype for v in bundle.state_dict.values() if v.is_floating_point())
    sharp_weight, sharp_bias, sharp_temperature, sharp_c, sharp = fit_sharpness(extracted, config, dtype)
    candidates = []
    for c in config.regularisation:
        w, b = fit_head(feats["train"], labels["train"], c, config.seed)
        w, b = (torch.from_numpy(a).to(dtype).double().numpy() for a in (w, b))
        cal_logits = feats["calibration"] @ w.T + b
        t = fit_temperature(cal_logits, labels["calibration"])
        candidates.append((negative_log_likelihood(cal_logits, labels["calibration"], t), c, w, b, t))
    _, chosen_c, weight, bias, temperature = min(candidates, key=lambda x: x[0])
    test_logits = feats["test"] @ weight.T + bias
    test = gate_metrics(softmax(test_logits, temperature), labels["test"])
    uncalibrated = gate_metrics(softmax(test_logits), labels["test"])
    per_source = {}
    for source in sorted(set(sources["test"])):
        sel = sources["test"] == source
        per_source[source] = _rates(softmax(test_logits[sel], temperature), labels["test"][sel])
    leave_one_out = _leave_one_out(feats, labels, sources, chosen_c, config.seed)
    summary = {f"test_{k}": v for k, v in test.items()} | {
        "test_domain_ece_uncalibrated": uncalibrated["domain_ece"],
        "test_modality_ece_uncalibrated": uncalibrated["modality_ece"],
        "temperature": round(temperature, 4),
        "regularisation_c": chosen_c,
        "training_views": float(len(labels["train"])),
        # A run on cached features took the extraction's seconds once, and only the fits this time.
        "seconds": round(extraction_s + time.perf_counter() - fitting_started, 1),
        "feature_extraction_seconds": round(extraction_s, 1),
        "features_from_cache": float(from_cache),
    }
    counts = {part: {name: int((np.asarray([r.label for r in parts[part]]) == i).sum()) for i, name in enumerate(GATE_CLASSES)}
              for part in PARTS}
    spec = HeadSpec(
        classes=list(GATE_CLASSES),
        taps=GATE_TAPS,
        pooling=GATE_POOLING,  # type: ignore[arg-type]
        temperature=temperature,
        summary_metrics=summary,
        training_data={
            "datasets": ["HAM10000 (CC BY-NC-SA 4.0)", "ISIC 2017", "clinical/: MSLD v1 (CC BY-NC-SA 4.0), SD-198 subset (research only)",
                         "nonskin/: ImageNet sample (research only), Kodak24, scikit-image, Coral test data"],
            "split": {"method": "dermoscopic: the classifier's split (HAM10000 by lesion, ISIC 2017 by image); clinical by patient "
                                "group (MSLD) or image (SD-198); non-skin by image, stratified by source and person flag",
                      "images": counts, "seed": config.seed},
            "views": "train: as-is, 224-px centre square, one restyled (sharpened, smoothed, gamma, recompressed), augmented "
                     "x{}, one degraded copy; clinical also shrunk onto a plain background; calibration and test: as-is".format(config.augmented_views),
            "head": f"multinomial logistic regression, balanced class weights, C={chosen_c} (lowest calibration NLL "
                    f"of {list(config.regularisation)}), standardised "
                    f"per-channel {'/'.join(GATE_POOLING)} of backbone stages {GATE_TAPS}",
            "licence": "CC BY-NC-SA 4.0 and research-only terms of the training images; non-commercial use only",
        },
        evaluation={"test": test, "test_uncalibrated": uncalibrated, "test_by_source": per_source,
                    "leave_one_source_out": leave_one_out},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    sharp_summary = {f"{part}_{k}": v for part in ("calibration", "test") for k, v in sharp[part].items()} | {
        "temperature": round(sharp_temperature, 4),
        "regularisation_c": sharp_c,
        "training_views": float(sum(sharp["train_views"].values())),
    }
    sharp_spec = HeadSpec(
        classes=list(SHARPNESS_CLASSES),
        taps=GATE_TAPS,
        pooling=GATE_POOLING,  # type: ignore[arg-type]
        temperature=sharp_temperature,
        summary_metrics=sharp_summary,
        training_data={
            "datasets": spec.training_data["datasets"],
            "split": "the image gate's (heads.image_gate.training_data.split); never fitted on the test split",
            "views": f"train: the gate's views as sharp (their blur-degraded ones as blurred; heavy-JPEG and downscaled "
                     f"ones left out) and {config.blurred_views} blurred copies of each image (Gaussian sigma "
                     f"{sharpness_head.GAUSSIAN_SIGMA[0]:.1%}-{sharpness_head.GAUSSIAN_SIGMA[1]:.1%} and motion "
                     f"{sharpness_head.MOTION_LENGTH[0]:.0%}-{sharpness_head.MOTION_LENGTH[1]:.0%} of the long side, "
                     "alternately); calibration and test: each image as is and one blurred copy",
            "head": f"binary logistic regression, balanced class weights, C={sharp_c} (lowest calibration NLL of "
                    f"{list(config.sharpness_regularisation)}), on the image gate's input",
            "views_used": sharp["train_views"],
            "licence": spec.training_data["licence"],
        },
        evaluation={"calibration": sharp["calibration"], "test": sharp["test"], "blend": sharp["thresholds"]},
        created=spec.created,
    )
    heads = {GATE_HEAD: (spec, weight, bias), SHARPNESS_HEAD: (sharp_spec, sharp_weight, sharp_bias)}
    state = {k: v for k, v in bundle.state_dict.items() if not any(k.startswith(f"{HEAD_PREFIX}{name}.") for name in heads)}
    for name, (_, w, b) in heads.items():
        state[f"{HEAD_PREFIX}{name}.weight"] = torch.from_numpy(w).to(dtype)
        state[f"{HEAD_PREFIX}{name}.bias"] = torch.from_numpy(b).to(dtype)
    write_head(bundle, state, {name: h[0] for name, h in heads.items()}, config.out or config.bundle, config.bundle)
    return spec.model_dump()


CARD_SECTION = "## Image gate head"


def card_section(spec: HeadSpec) -> str:
    """The model card's account of the gate head (replaced whenever the head is refitted)."""
    test = spec.evaluation["test"]
    lines = [
        CARD_SECTION, "",
        "A second head (`heads.image_gate`) on this backbone decides whether an image is a skin photograph and",
        "whether it is clinical or dermoscopic (`mediaValidity.domain` / `.modality`); see docs/image-gate.md.",
        f"Inputs: per-channel {' and '.join(spec.pooling)} of backbone stages {spec.taps}; temperature "
        f"{spec.temperature:.3f}. Fit: {spec.training_data['head']}.", "",
        "| held-out test split | images | rate |", "|---|---|---|",
        f"| everyday photos refused | {test['other_images']:.0f} | {test['other_not_dermatological']:.3f} |",
        f"| clinical photos called skin | {test['clinical_images']:.0f} | {test['clinical_dermatological']:.3f} |",
        f"| clinical photos called Clinical | {test['clinical_images']:.0f} | {test['clinical_modality_right']:.3f} |",
        f"| dermoscopic images called Dermoscopic | {test['dermoscopic_images']:.0f} | {test['dermoscopic_modality_right']:.3f} |",
        "", f"ECE: domain {test['domain_ece']:.4f}, modality {test['modality_ece']:.4f}. With one source left out of "
        "training, that source scores much lower (manifest: `leave_one_source_out`): the two clinical sources are "
        "narrow, so clinical photographs unlike both are the gate's known weakness.",
        "Trained on images under non-commercial terms (HAM10000, MSLD: CC BY-NC-SA 4.0; SD-198, ImageNet sample: "
        "research only): non-commercial use only.", "",
        "Refit (after any rebuild of the classifier): `dermq train image-gate --data ../shared/data`.", "",
    ]
    return "\n".join(lines)


def sharpness_card_section(spec: HeadSpec) -> str:
    """The model card's account of the sharpness head."""
    cal, test = spec.evaluation["calibration"], spec.evaluation["test"]
    blend = spec.evaluation["blend"]
    rows = [("sharp skin images failing `sharpness`", "sharp_images", "sharp_failing"),
            ("blurred copies failing `sharpness`", "blurred_images", "blurred_caught")]
    lines = [
        "### Sharpness head", "",
        "A third head (`heads.sharpness`, classes sharp / blurred) on the image gate's input gives a calibrated",
        f"P(blurred) (temperature {spec.temperature:.3f}; {spec.training_data['head']}). `pipeline.quality` blends it with",
        f"the classical blur ratio: `sharpness` fails above P = {blend['max_blur_probability']} and passes at or below "
        f"P = {blend['sharp_probability']} whatever the ratio says (thresholds chosen on the calibration split).", "",
        "| skin images (calibration / test split) | images | blur ratio alone | learned alone | blended |",
        "|---|---|---|---|---|",
    ]
    for what, count, key in rows:
        lines.append(f"| {what} | {cal[count]:.0f} / {test[count]:.0f} | {cal[key + '_classical']:.3f} / {test[key + '_classical']:.3f} "
                     f"| {cal[key + '_learned']:.3f} / {test[key + '_learned']:.3f} | {cal[key + '_blended']:.3f} / {test[key + '_blended']:.3f} |")
    lines += ["", f"Test AUC {test['auc']:.4f}, ECE {test['ece']:.4f}. Blurred copies: Gaussian sigma and motion-blur "
              "lengths as in `training.sharpness_head`; naturally out-of-focus photographs are rarer in the training data.", ""]
    return "\n".join(lines)


def write_head(bundle: ModelBundle, state: dict[str, torch.Tensor], specs: dict[str, HeadSpec], out: Path,
               source_dir: Path) -> None:
    """Re-save the bundle with the refitted heads; everything else in the manifest stays as it was."""
    m = bundle.manifest
    fields = m.model_dump(exclude={"format_version", "weights_sha256", "heads", "metrics"})
    save_bundle(out, state, metrics=m.metrics, heads={**m.heads, **specs}, **fields)
    card = out / MODEL_CARD_FILE
    source = card if card.is_file() else source_dir / MODEL_CARD_FILE
    text = source.read_text(encoding="utf-8") if source.is_file() else f"# {m.name} {m.version}\n"
    section = card_section(specs[GATE_HEAD])
    if SHARPNESS_HEAD in specs:
        section += "\n" + sharpness_card_section(specs[SHARPNESS_HEAD])
    text = text.split(CARD_SECTION)[0].rstrip("\n") + "\n\n" + section
    atomic_write(card, text.encode())
