"""Train a binary lesion-segmentation bundle (U-Net) from images with masks.

Inputs go through the same ``preprocess_image`` as the classifier (whole image resized
to ``input_size``, ImageNet normalisation); masks are resampled the same way and
thresholded, so predicted masks stretch back over the original image exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.models.bundle import IMAGENET_MEAN, IMAGENET_STD
from training.augment import AugmentConfig
from training.data import SegmentationDataset, find_segmentation_samples, split_indices
from training.engine import (
    TrainConfig,
    TrainResult,
    build_model,
    data_summary,
    file_list_digest,
    fit,
    publish,
)
from training.evaluation import evaluate_segmenter

__all__ = ["SegmenterTrainConfig", "bce_dice_loss", "train_segmenter"]

LESION_CLASS = "lesion"


class SegmenterTrainConfig(TrainConfig):
    architecture: str = "unet"
    input_size: int = 128


def bce_dice_loss(logits: Tensor, masks: Tensor, smooth: float = 1.0) -> Tensor:
    """BCE (pixel-wise, well-conditioned gradients) + soft Dice per image (robust to small lesions)."""
    bce = F.binary_cross_entropy_with_logits(logits, masks)
    probs = torch.sigmoid(logits).flatten(1)
    truth = masks.flatten(1)
    dice = (2 * (probs * truth).sum(1) + smooth) / (probs.sum(1) + truth.sum(1) + smooth)
    return bce + (1 - dice).mean()


def train_segmenter(config: SegmenterTrainConfig) -> TrainResult:
    """Train, evaluate (Dice/Jaccard at 0.5) and write the bundle (+ model card) to ``config.out``."""
    samples = find_segmentation_samples(config.data)
    train_idx, val_idx = split_indices(None, len(samples.images), config.val_fraction, config.seed)
    common = {"input_size": config.input_size, "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "seed": config.seed}
    train_set = SegmentationDataset(
        [samples.images[i] for i in train_idx],
        [samples.masks[i] for i in train_idx],
        augment_config=AugmentConfig() if config.augment else None,
        **common,
    )
    val_set = SegmentationDataset(
        [samples.images[i] for i in val_idx], [samples.masks[i] for i in val_idx], augment_config=None, **common
    )
    root = config.data.parent if config.data.is_file() else config.data
    outcome = fit(
        build_model(config.architecture, 1, config.seed),
        train_set,
        val_set,
        bce_dice_loss,
        config,
        fingerprint={
            "task": "segmentation",
            "train_files": file_list_digest(train_set.images, root),
            "val_files": file_list_digest(val_set.images, root),
        },
        description="segmenter",
    )
    evaluation = evaluate_segmenter(torch.sigmoid(outcome.val_outputs).numpy(), outcome.val_targets.numpy())
    return publish(
        config,
        outcome,
        evaluation,
        name=config.default_name("segmenter"),
        architecture=config.architecture,
        task="segmentation",
        classes=[LESION_CLASS],
        training_data=data_summary(config, samples.source, len(train_idx), len(val_idx), "random"),
    )
