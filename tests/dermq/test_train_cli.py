"""`dermq train classifier`: a bundle the service accepts, with metrics and a model card."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dermq.cli.train import train
from pipeline.models.bundle import load_bundle, verify_bundle
from training.phantoms import export_dataset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_train_classifier_writes_a_verified_bundle_with_card(tmp_path: Path) -> None:
    data = tmp_path / "phantoms"
    export_dataset(data, count=18, seed=4, size=64, classes=["2F20", "ED63.0", "EA90"])
    out = tmp_path / "bundle"
    args = ["classifier", "--data", str(data / "images"), "--out", str(out), "--epochs", "1",
            "--input-size", "48", "--batch-size", "6", "--quiet", "--name", "phantom-test", "--version", "0.1"]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 0, result.output
    assert "top1" in result.output

    assert verify_bundle(out) == []
    m = load_bundle(out).manifest
    assert (m.name, m.version, m.trained, m.input_size) == ("phantom-test", "0.1", True, 48)
    assert m.classes == ["2F20", "EA90", "ED63.0"]  # catalogue order
    assert set(m.metrics) == set(m.classes)
    assert all(cm.support == 1 and cm.sensitivity in (0.0, 100.0) for cm in m.metrics.values())
    assert {"top1", "top3", "top5", "macro_auroc", "ece", "ece_uncalibrated", "val_loss", "epochs",
            "seconds_per_epoch"} <= set(m.summary_metrics)
    assert m.temperature > 0
    assert m.training_data["classes"]["EA90"] == {"train": 5, "val": 1}
    assert m.training_data["source"]["format"] == "image-folder"

    card = (out / "MODEL_CARD.md").read_text()
    for section in ("## Intended use", "## Training data", "### Per class", "### Confusion matrix",
                    "## Calibration", "## Limitations", "not clinically validated"):
        assert section in card
    for png in ("reliability.png", "roc.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    assert json.loads((out / "manifest.json").read_text())["task"] == "classification"


def test_train_classifier_reports_bad_labels_as_a_usage_error(tmp_path: Path) -> None:
    data = tmp_path / "phantoms"
    export_dataset(data, count=4, seed=4, size=32, classes=["2F20", "ED63.0"])
    (data / "images" / "2F20").rename(data / "images" / "naevus")
    result = CliRunner().invoke(train, ["classifier", "--data", str(data / "images"), "--out", str(tmp_path / "b")])
    assert result.exit_code == 1
    assert "not in the catalogue: ['naevus']" in result.output
    assert not (tmp_path / "b").exists()
