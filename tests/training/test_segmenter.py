"""Segmenter training writes a segmentation bundle that loads and runs."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.models.bundle import load_bundle, verify_bundle
from training.phantoms import export_dataset
from training import SegmenterTrainConfig, train_segmenter
from training.segmenter import bce_dice_loss


def test_segmenter_bundle_loads_with_dice_and_jaccard(tmp_path: Path) -> None:
    data = tmp_path / "phantoms"
    export_dataset(data, count=10, seed=2, size=64, classes=["2F20", "ED63.0"])
    out = tmp_path / "seg"
    result = train_segmenter(
        SegmenterTrainConfig(data=data, out=out, epochs=1, input_size=48, batch_size=4, progress=False)
    )
    assert verify_bundle(out) == []
    bundle = load_bundle(out)
    m = bundle.manifest
    assert (m.task, m.architecture, m.classes, m.input_size) == ("segmentation", "unet", ["lesion"], 48)
    assert 0 <= m.summary_metrics["jaccard"] <= m.summary_metrics["dice"] <= 1
    assert m.training_data["split"] == {"method": "random", "val_fraction": 0.2, "train": 8, "val": 2}
    assert "Jaccard" in (out / "MODEL_CARD.md").read_text()
    logits = bundle.build_module()(torch.zeros(1, 3, 48, 48))
    assert logits.shape == (1, 1, 48, 48)
    assert result.seconds_per_epoch > 0


def test_bce_dice_loss_is_small_for_a_confident_correct_mask() -> None:
    masks = torch.zeros(2, 1, 8, 8)
    masks[:, :, 2:6, 2:6] = 1
    right = bce_dice_loss(20 * (2 * masks - 1), masks)
    wrong = bce_dice_loss(-20 * (2 * masks - 1), masks)
    assert float(right) < 0.01
    assert float(wrong) > 1.0
