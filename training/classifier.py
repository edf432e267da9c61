"""Train a skin-condition classifier bundle from labelled images.

The network is trained with the exact serving preprocessing (``preprocess_image`` with
the bundle's input size and ImageNet mean/std), its best-epoch weights are calibrated
by temperature scaling on the validation logits, and the bundle records per-class
validation metrics, which the diagnosis endpoint reports as sensitivity/specificity.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from pipeline.models.bundle import IMAGENET_MEAN, IMAGENET_STD
from pipeline.models.efficientnet import EfficientNet, load_backbone
from training.augment import AugmentConfig
from training.data import (
    ClassificationDataset,
    find_classification_samples,
    load_label_map,
    split_indices,
)
from training.engine import (
    TrainConfig,
    TrainResult,
    build_model,
    data_summary,
    file_list_digest,
    fit,
    publish,
)
from training.evaluation import evaluate_classifier

__all__ = ["ClassifierTrainConfig", "train_classifier"]


class ClassifierTrainConfig(TrainConfig):
    architecture: str = "efficientnet_b0"
    init: Path | None = None  # torchvision-layout ImageNet checkpoint (.safetensors); head replaced
    label_map: str | None = None  # bundled name ("isic") or path to a JSON map
    label_column: str | None = None  # CSV label column; default "code", else diagnosis/dx/label
    drop_unmapped: bool = False  # leave out labels the map knows but the catalogue lacks


def _initialise(model: nn.Module, checkpoint: Path) -> None:
    if not isinstance(model, EfficientNet):
        raise ValueError("--init is supported for EfficientNet architectures only")
    try:
        state = load_file(str(checkpoint))
    except (OSError, SafetensorError) as e:
        raise ValueError(f"cannot read --init checkpoint {checkpoint}: {e}") from None
    load_backbone(model, state)


def _zero_head(model: nn.Module) -> None:
    """Start from uniform predictions: a randomly initialised head gives initial logits
    several units apart (cross-entropy ~2x chance), which costs small datasets epochs
    of unlearning before the backbone's features are used."""
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    nn.init.zeros_(head.weight)
    if head.bias is not None:
        nn.init.zeros_(head.bias)


def train_classifier(config: ClassifierTrainConfig) -> TrainResult:
    """Train, calibrate, evaluate and write the bundle (+ model card) to ``config.out``."""
    label_map = load_label_map(config.label_map) if config.label_map else None
    samples = find_classification_samples(
        config.data, label_map=label_map, label_column=config.label_column, drop_unmapped=config.drop_unmapped
    )
    index = {code: i for i, code in enumerate(samples.classes)}
    targets = [index[c] for c in samples.codes]
    train_idx, val_idx = split_indices(samples.codes, len(targets), config.val_fraction, config.seed)

    common = {"input_size": config.input_size, "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "seed": config.seed}
    train_set = ClassificationDataset(
        [samples.images[i] for i in train_idx],
        [targets[i] for i in train_idx],
        augment_config=AugmentConfig() if config.augment else None,
        **common,
    )
    val_set = ClassificationDataset(
        [samples.images[i] for i in val_idx], [targets[i] for i in val_idx], augment_config=None, **common
    )
    model = build_model(config.architecture, len(samples.classes), config.seed)
    if config.init is not None:
        _initialise(model, config.init)
    _zero_head(model)
    root = config.data.parent if config.data.is_file() else config.data
    outcome = fit(
        model,
        train_set,
        val_set,
        nn.CrossEntropyLoss(),
        config,
        fingerprint={
            "task": "classification",
            "classes": samples.classes,
            "train_files": file_list_digest(train_set.images, root),
            "val_files": file_list_digest(val_set.images, root),
            "init": None if config.init is None else config.init.name,
        },
        description="classifier",
    )
    evaluation = evaluate_classifier(outcome.val_outputs.numpy(), outcome.val_targets.numpy(), samples.classes)

    train_counts = Counter(samples.codes[i] for i in train_idx)
    val_counts = Counter(samples.codes[i] for i in val_idx)
    training_data = data_summary(config, samples.source, len(train_idx), len(val_idx), "stratified random, at least one validation image per class")
    training_data["classes"] = {c: {"train": train_counts[c], "val": val_counts[c]} for c in samples.classes}
    training_data["init"] = None if config.init is None else config.init.name
    return publish(
        config,
        outcome,
        evaluation,
        name=config.default_name("classifier"),
        architecture=config.architecture,
        task="classification",
        classes=samples.classes,
        training_data=training_data,
        temperature=evaluation.temperature,
        metrics=evaluation.per_class,
    )
