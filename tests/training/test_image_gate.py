"""The image gate's recipe: records and splits, the views it trains on, and a short end-to-end fit."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pipeline.classify import Classifier
from pipeline.gate import GATE_CLASSES, GATE_HEAD, SHARPNESS_CLASSES, SHARPNESS_HEAD
from pipeline.models.bundle import load_bundle, reference_bundle, save_bundle
from pipeline.quality import assess_media_validity
from support import build_root, shrunk_sample, synthetic_clinical_photo
from training.image_gate import (
    CLINICAL,
    DEGRADATIONS,
    OTHER,
    ImageGateConfig,
    degrade,
    far_view,
    load_gate_records,
    split_gate_records,
    train_image_gate,
)

HAM_CODES = ["EK90.0", "2C32", "2F21.0", "2F23.0", "2C30", "2F20", "2F25"]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])


def _gate_root(root: Path, sample_dir: Path) -> Path:
    """HAM10000 + ISIC 2017 from the real sample, synthetic clinical photos and plain non-skin scenes."""
    build_root(root, shrunk_sample(sample_dir))
    rng = np.random.default_rng(0)
    clinical, provenance = [], []
    for i in range(12):
        rgb = np.clip(synthetic_clinical_photo().astype(np.float32) * rng.uniform(0.7, 1.1, 3), 0, 255).astype(np.uint8)
        name = f"msld_P{i // 2}_{i % 2}.jpg" if i < 6 else f"sd198_{i}.jpg"
        (root / "clinical" / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "clinical" / "images" / name), rgb[..., ::-1])
        source = "msld-v1" if i < 6 else "sd198-subset"
        clinical.append([name, source, "x", "test"])
        provenance.append([name, f"msld-P{i // 2}" if i < 6 else ""])
    _write_csv(root / "clinical" / "labels.csv", ["file", "source", "label", "licence"], clinical)
    _write_csv(root / "clinical" / "provenance.csv", ["file", "group"], provenance)
    nonskin = []
    (root / "nonskin" / "images").mkdir(parents=True)
    for i in range(12):
        scene = np.zeros((120, 160, 3), np.uint8)
        scene[:] = rng.integers(0, 255, 3)
        cv2.rectangle(scene, (20, 20), (100, 90), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        name = f"imagenet_{i}.jpg"
        cv2.imwrite(str(root / "nonskin" / "images" / name), scene)
        nonskin.append([name, "imagenet-sample", "x", "person/face" if i % 4 == 0 else "thing"])
    _write_csv(root / "nonskin" / "labels.csv", ["file", "source", "licence", "note"], nonskin)
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _gate_root(tmp_path_factory.mktemp("gate"), tmp_path_factory.mktemp("sample") / "shrunk")


def test_records_keep_groups_together_and_flag_people(root: Path) -> None:
    records = load_gate_records(root)
    assert sum(r.label == CLINICAL for r in records) == 12 and sum(r.label == OTHER for r in records) == 12
    assert sum(r.person for r in records) == 3
    parts = split_gate_records(records, ImageGateConfig(data=root, bundle=root, test_fraction=0.3, calibration_fraction=0.2))
    assert sum(map(len, parts.values())) == len(records)
    where = {r.group: name for name, part in parts.items() for r in part}
    for name, part in parts.items():
        assert all(where[r.group] == name for r in part)  # one patient's photos never straddle two parts
    assert all(any(r.person for r in part) for part in parts.values())  # people reach every part


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_each_degradation_makes_the_right_metric_fail(kind: str) -> None:
    from training.gate_evaluation import RIGHT_METRIC

    sample = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "isic2017-sample" / "images").glob("*.jpg"))[0]
    rgb = cv2.cvtColor(cv2.imread(str(sample)), cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(rgb, (300, 200), interpolation=cv2.INTER_AREA)
    copy = degrade(rgb, kind, np.random.default_rng(3))
    from pipeline.gate import GateProbs

    mv = assess_media_validity(copy, gate=GateProbs(0.0, 0.0, 1.0))
    if RIGHT_METRIC[kind]:
        assert not mv["quality"]["metrics"][RIGHT_METRIC[kind]]["acceptable"], mv["quality"]["metrics"]


def test_far_view_keeps_the_photo_small_on_a_plain_background() -> None:
    rgb = synthetic_clinical_photo()
    far = far_view(rgb, np.random.default_rng(0), scale=0.4)
    assert far.shape == rgb.shape
    assert far[:20, :20].reshape(-1, 3).astype(np.float32).std(axis=0).max() < 10  # a corner is plain background


def test_training_writes_a_calibrated_head_and_leaves_the_classifier_alone(root: Path, tmp_path: Path) -> None:
    reference = reference_bundle(HAM_CODES, architecture="efficientnet_lite0", input_size=64)
    fields = reference.manifest.model_dump(exclude={"format_version", "weights_sha256", "heads", "metrics"})
    save_bundle(tmp_path / "clf", reference.state_dict, **fields)
    config = ImageGateConfig(data=root, bundle=tmp_path / "clf", out=tmp_path / "gated", augmented_views=1,
                             dermoscopic_per_part={"train": 20, "calibration": 8, "test": 10},
                             test_fraction=0.25, calibration_fraction=0.2)
    record = train_image_gate(config)
    bundle = load_bundle(tmp_path / "gated")
    head = bundle.manifest.heads[GATE_HEAD]
    assert tuple(head.classes) == GATE_CLASSES and head.temperature > 0
    assert {"test_domain_ece", "test_modality_ece", "test_dermoscopic_modality_right"} <= set(head.summary_metrics)
    assert set(head.evaluation) >= {"test", "test_uncalibrated", "test_by_source", "leave_one_source_out"}
    assert record["summary_metrics"] == head.summary_metrics
    # The backbone and the classification head are the bundle's own, untouched.
    for key, value in reference.state_dict.items():
        assert torch.equal(bundle.state_dict[key], value), key
    assert bundle.manifest.classes == reference.manifest.classes
    classifier = Classifier.from_bundle(bundle)
    out = classifier.predict_images([synthetic_clinical_photo()])[0]
    assert classifier.has_gate and out.gate is not None and out.gate.shape == (4,) and 0 <= out.gate[3] <= 1
    sharp = bundle.manifest.heads[SHARPNESS_HEAD]
    assert tuple(sharp.classes) == SHARPNESS_CLASSES and sharp.taps == head.taps and sharp.pooling == head.pooling
    assert {"test_auc", "test_ece", "calibration_sharp_failing_blended", "test_blurred_caught_blended"} <= set(sharp.summary_metrics)
    assert set(sharp.evaluation) >= {"calibration", "test", "blend"}
    card = (tmp_path / "gated" / "MODEL_CARD.md").read_text()
    assert card.count("## Image gate head") == 1 and "### Sharpness head" in card
    # Re-running replaces the heads rather than adding more; with a feature cache the second run reuses the
    # forward passes and fits the same heads.
    cached = config.model_copy(update={"bundle": tmp_path / "gated", "feature_cache": tmp_path / "features.npz"})
    train_image_gate(cached)
    assert (tmp_path / "features.npz").is_file()
    first = load_bundle(tmp_path / "gated")
    train_image_gate(cached)
    again = load_bundle(tmp_path / "gated")
    assert list(again.manifest.heads) == [GATE_HEAD, SHARPNESS_HEAD]
    assert again.manifest.heads[SHARPNESS_HEAD].summary_metrics["test_auc"] == first.manifest.heads[SHARPNESS_HEAD].summary_metrics["test_auc"]
    for key, value in first.state_dict.items():
        assert torch.equal(again.state_dict[key], value), key
    assert (tmp_path / "gated" / "MODEL_CARD.md").read_text().count("### Sharpness head") == 1


def test_sharpness_examples_are_labelled_by_their_views() -> None:
    from training.sharpness_head import BLURRED, SHARP, blur, blurred_views, sharpness_labels
    from training.image_gate import GATE_AUGMENT

    tags = np.array(["plain", "square", "degraded:gaussian_blur", "degraded:motion_blur", "degraded:noise",
                     "degraded:jpeg", "degraded:downscale", "far", "motion_blur:0.05", "gaussian_blur:0.02"])
    assert sharpness_labels(tags).tolist() == [SHARP, SHARP, BLURRED, BLURRED, SHARP, -1, -1, SHARP, BLURRED, BLURRED]
    rgb = synthetic_clinical_photo()
    views = blurred_views(rgb, np.random.default_rng(0), 4, GATE_AUGMENT)
    assert sorted(tag.split(":")[0] for _, tag in views) == ["gaussian_blur"] * 2 + ["motion_blur"] * 2
    streak = blur(rgb, "motion_blur", 0.08, angle=0.0).astype(np.float32)
    # A horizontal streak smooths along rows, not down the columns.
    assert np.abs(np.diff(streak, axis=1)).mean() < np.abs(np.diff(streak, axis=0)).mean()
