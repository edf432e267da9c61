"""The default models' recipe (HAM10000 + ISIC 2017): records, lesion split, class
weights, a short end-to-end run of each trainer, and the `dermq train` commands."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from dermq.cli import main
from pipeline.models.bundle import load_bundle, verify_bundle
from pipeline.models.efficientnet_lite import LITE_MEAN, LITE_STD
from support import IMAGES_PER_LESION, ISIC_PER_DIAGNOSIS, LESIONS_PER_CLASS, build_root, shrunk_sample
from training import engine
from training.data import DatasetError
from training.dermoscopy import (
    HAM_CLASSES,
    DermoscopyClassifierConfig,
    DermoscopySegmenterConfig,
    Record,
    _class_weights,
    _grouped_split,
    load_records,
    segmentation_scores,
    split_records,
    train_dermoscopy_classifier,
    train_dermoscopy_segmenter,
)

CATALOGUE_CODES = ["EK90.0", "2C32", "2F21.0", "2F23.0", "2C30", "2F20", "2F25"]  # HAM_CLASSES, coded
@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, Path, str]]:
    return shrunk_sample(tmp_path_factory.mktemp("sample") / "shrunk")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, sample) -> Path:
    path = tmp_path_factory.mktemp("dermoscopy")
    build_root(path, sample)
    return path


def _synthetic(lesions_per_class: dict[str, int], images_per_lesion: int = 2, isic: int = 0) -> list[Record]:
    records = []
    for dx, count in lesions_per_class.items():
        for lesion in range(count):
            records += [Record(Path(f"/x/{dx}_{lesion}_{i}.jpg"), Path(f"/x/{dx}_{lesion}_{i}.png"), dx, f"L_{dx}_{lesion}", "ham10000")
                        for i in range(images_per_lesion)]
    records += [Record(Path(f"/y/{i}.jpg"), Path(f"/y/{i}.png"), ("mel", "nv", "bkl")[i % 3], f"I{i}", "isic2017") for i in range(isic)]
    return records


# ------------------------------------------------------------------------------- records


def test_load_records_reads_both_sets(root):
    records = load_records(root)
    ham = [r for r in records if r.source == "ham10000"]
    isic = [r for r in records if r.source == "isic2017"]
    assert len(ham) == len(HAM_CLASSES) * sum(IMAGES_PER_LESION)
    assert len(isic) == sum(ISIC_PER_DIAGNOSIS.values())
    assert Counter(r.dx for r in isic) == {"mel": 4, "nv": 3, "bkl": 3}  # ISIC 2017 names in HAM terms
    assert {r.dx for r in ham} == set(HAM_CLASSES)
    assert len({r.lesion for r in ham}) == len(HAM_CLASSES) * LESIONS_PER_CLASS
    assert all(r.image.is_file() and r.mask.is_file() for r in records)
    assert all(r.mask.name == r.image.stem + "_segmentation.png" for r in records)
    assert all(r.lesion == r.image.stem for r in isic)  # one image per lesion there


def _copy_layout(root: Path, dest: Path) -> Path:
    for name in ("ham10000", "isic2017"):
        (dest / name).mkdir(parents=True)
        for csv_name in ("metadata.csv", "labels.csv"):
            if (root / name / csv_name).is_file():
                (dest / name / csv_name).write_text((root / name / csv_name).read_text())
        for sub in ("images", "masks"):
            (dest / name / sub).symlink_to(root / name / sub)
    return dest


def test_load_records_missing_metadata(root, tmp_path):
    copy = _copy_layout(root, tmp_path / "data")
    (copy / "ham10000" / "metadata.csv").unlink()
    with pytest.raises(DatasetError, match=r"metadata\.csv not found"):
        load_records(copy)
    with pytest.raises(DatasetError, match="not found"):
        load_records(tmp_path / "nothing-here")


def test_load_records_missing_isic_labels(root, tmp_path):
    copy = _copy_layout(root, tmp_path / "data")
    (copy / "isic2017" / "labels.csv").unlink()
    with pytest.raises(DatasetError, match=r"labels\.csv not found"):
        load_records(copy)


@pytest.mark.parametrize(("table", "row", "message"), [
    ("ham10000/metadata.csv", ["HAM_x", "ISIC_does_not_exist", "nv", "histo", "40", "female", "face"],
     r"2 images or masks listed but missing.*ISIC_does_not_exist\.jpg"),
    ("ham10000/metadata.csv", ["HAM_x", "ISIC_0000000", "scc", "histo", "40", "female", "face"], r"unknown diagnoses \['scc'\]"),
    ("isic2017/labels.csv", ["ISIC_9000000", "0.0", "0.0", "basal_cell_carcinoma"], "basal_cell_carcinoma"),
], ids=["listed-image-missing", "unknown-ham-diagnosis", "unknown-isic-diagnosis"])
def test_load_records_refuses_a_bad_row(root, tmp_path, table, row, message):
    copy = _copy_layout(root, tmp_path / "data")
    with (copy / table).open("a", newline="") as f:
        csv.writer(f).writerow(row)
    with pytest.raises(DatasetError, match=message):
        load_records(copy)


def test_load_records_names_a_missing_column(root, tmp_path):
    copy = _copy_layout(root, tmp_path / "data")
    metadata = copy / "ham10000" / "metadata.csv"
    metadata.write_text(metadata.read_text().replace(",dx,", ",diagnosis,", 1))
    with pytest.raises(DatasetError, match="no column 'dx'"):
        load_records(copy)


def test_load_records_refuses_a_missing_mask(root, tmp_path):
    copy = _copy_layout(root, tmp_path / "data")
    masks = copy / "ham10000" / "masks"
    masks.unlink()  # the symlink to the shared fixture; a real folder lacking one mask instead
    masks.mkdir()
    for mask in sorted((root / "ham10000" / "masks").iterdir())[1:]:
        (masks / mask.name).symlink_to(mask)
    with pytest.raises(DatasetError, match="missing"):
        load_records(copy)


# --------------------------------------------------------------------------------- split


def _config(root: Path, out: Path, **overrides: object) -> DermoscopyClassifierConfig:
    fields = {"data": root, "out": out, "epochs": 1, "restart_epochs": 1, "batch_size": 8, "input_size": 64, "eval_sizes": [64, 96],
              "progress": False}
    return DermoscopyClassifierConfig(**(fields | overrides))


def _check_partition(records: list[Record], parts: dict[str, list[Record]]) -> None:
    assert sorted(str(r.image) for p in parts.values() for r in p) == sorted(str(r.image) for r in records)
    owner: dict[str, set[str]] = {}
    for name, part in parts.items():
        for r in part:
            owner.setdefault(r.lesion, set()).add(name)
    assert all(len(names) == 1 for names in owner.values()), {k: v for k, v in owner.items() if len(v) > 1}
    assert {r.source for r in parts["calibration"] + parts["test"]} <= {"ham10000"}
    assert {r.source for r in parts["external"]} <= {"isic2017"}


def test_split_on_the_tiny_root(root, tmp_path):
    records = load_records(root)
    parts = split_records(records, _config(root, tmp_path))
    assert set(parts) == {"train", "calibration", "test", "external"}
    _check_partition(records, parts)
    isic_train = [r for r in parts["train"] if r.source == "isic2017"]
    assert len(isic_train) == 6 and len(parts["external"]) == 4  # 60 % of each diagnosis, rounded
    for name in ("test", "calibration"):
        assert {r.dx for r in parts[name]} == set(HAM_CLASSES), name
        assert Counter(r.dx for r in parts[name]) and len({r.lesion for r in parts[name]}) == len(HAM_CLASSES)
    # Every image of a multi-image lesion went with its lesion.
    by_lesion = Counter(r.lesion for r in parts["test"])
    assert sum(by_lesion.values()) == len(parts["test"]) and max(IMAGES_PER_LESION) >= max(by_lesion.values())


def test_split_fractions_stratification_and_seed(tmp_path):
    lesions = {"akiec": 60, "bcc": 90, "bkl": 200, "df": 40, "mel": 200, "nv": 1000, "vasc": 50}
    records = _synthetic(lesions, images_per_lesion=2, isic=300)
    config = _config(tmp_path, tmp_path, calibration_fraction=0.1, test_fraction=0.2, isic2017_train_fraction=0.5)
    parts = split_records(records, config)
    _check_partition(records, parts)
    for dx, count in lesions.items():
        test = len({r.lesion for r in parts["test"] if r.dx == dx})
        calibration = len({r.lesion for r in parts["calibration"] if r.dx == dx})
        assert abs(test / count - 0.2) <= 0.5 / count + 1e-9, dx
        assert abs(calibration / count - 0.1) <= 1.0 / count + 1e-9, dx
    assert len(parts["external"]) == 150
    assert split_records(records, config) == parts  # seeded
    other = split_records(records, config.model_copy(update={"seed": 1}))
    assert {r.lesion for r in other["test"]} != {r.lesion for r in parts["test"]}


def test_grouped_split_keeps_lesions_whole():
    records = _synthetic({"nv": 7, "mel": 5}, images_per_lesion=3)
    a, b = _grouped_split(records, [0.4], seed=3)
    assert len(a) + len(b) == len(records)
    assert not {r.lesion for r in a} & {r.lesion for r in b}
    assert all(Counter(r.lesion for r in part)[lesion] == 3 for part in (a, b) for lesion in {r.lesion for r in part})
    assert len({r.lesion for r in a if r.dx == "nv"}) == 3 and len({r.lesion for r in a if r.dx == "mel"}) == 2


# ------------------------------------------------------------------------- class weights


def test_class_weights():
    targets = [0] * 60 + [1] * 30 + [2] * 10
    w = _class_weights(targets, 4, 0.5)
    assert w.dtype == torch.float32 and w.shape == (4,)
    assert w[2] > w[1] > w[0]  # rarer class, larger weight
    torch.testing.assert_close(w[targets].mean(), torch.tensor(1.0))  # mean 1 over the images
    torch.testing.assert_close(w[2] / w[0], torch.tensor(6.0**0.5))
    torch.testing.assert_close(_class_weights(targets, 4, 0.0)[:3], torch.ones(3))
    full = _class_weights(targets, 4, 1.0)
    torch.testing.assert_close(full[0] * 60, full[2] * 10)  # full inverse frequency: equal class totals
    assert torch.isfinite(w).all()  # class 3 has no images: no division by zero


# ---------------------------------------------------------------------- segmentation_scores


class _Constant(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 1, x.shape[2], x.shape[3]), self.value)


def test_segmentation_scores_at_image_resolution(root):
    records = [r for r in load_records(root) if r.source == "isic2017"][:3]
    everything = segmentation_scores(_Constant(10.0), records, 32, torch.device("cpu"))
    # Predicting "lesion" everywhere: Jaccard is the lesion's share of the image's own pixels.
    shares = [float((cv2.imread(str(r.mask), cv2.IMREAD_GRAYSCALE) > 127).mean()) for r in records]
    np.testing.assert_allclose(everything.per_image_jaccard, shares, rtol=1e-9)
    assert everything.jaccard == pytest.approx(np.mean(shares))
    nothing = segmentation_scores(_Constant(-10.0), records, 32, torch.device("cpu"))
    assert nothing.jaccard == 0.0 and nothing.dice == 0.0


# ------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def classifier_run(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cls") / "bundle"
    return out, train_dermoscopy_classifier(_config(root, out))


def test_classifier_recipe_end_to_end(root, classifier_run):
    out, result = classifier_run
    assert verify_bundle(out) == []
    bundle = load_bundle(out)
    m = bundle.manifest
    assert m.model_dump(mode="json") == result.manifest.model_dump(mode="json")  # tuples come back as lists
    assert (m.task, m.architecture, m.trained) == ("classification", "efficientnet_lite0", True)
    assert m.classes == CATALOGUE_CODES
    assert m.mean == list(LITE_MEAN) and m.std == list(LITE_STD)
    assert m.temperature > 0

    s = m.summary_metrics
    for key in ("test_accuracy", "test_balanced_accuracy", "test_macro_f1", "external_accuracy"):
        assert 0.0 <= s[key] <= 1.0, key
    assert "test_melanoma_auroc" in s and 0.0 <= s["test_melanoma_auroc"] <= 1.0  # test has mel and non-mel
    assert s["serving_input_size"] in (64, 96)
    assert m.input_size == s["serving_input_size"]  # the shipped size is the chosen one
    assert {"calibration_nll_at_64", "calibration_nll_at_96"} <= set(s)
    assert s["epochs"] == 2  # the first cycle and the warm restart
    assert [h["epoch"] for h in result.history] == [1, 2]

    parts = split_records(load_records(root), _config(root, out))
    confusion = m.evaluation["validation"]["confusion"]
    counts = np.asarray(confusion["counts"])
    assert counts.shape == (7, 7) and confusion["classes"] == CATALOGUE_CODES
    assert counts.sum() == len(parts["test"]) == s["test_images"]
    assert counts.sum(axis=1).tolist() == [sum(r.dx == dx for r in parts["test"]) for dx in HAM_CLASSES]
    external = next(v for k, v in m.evaluation.items() if k.startswith("external"))
    assert np.asarray(external["confusion"]["counts"]).sum() == len(parts["external"]) == 4

    td = m.training_data
    assert td["modality"] == "dermoscopic"
    assert td["source"]["outputs"] == dict(zip(CATALOGUE_CODES, HAM_CLASSES))
    assert td["split"]["parts"]["test"]["images"] == len(parts["test"])
    assert set(td["loss"]["class_weights"]) == set(HAM_CLASSES)
    card = (out / "MODEL_CARD.md").read_text()
    assert card.startswith(f"# Model card: {m.name} {m.version}")
    for text in ("dermoscopic", "Not validated", "CC BY-NC-SA", "confusion matrix", "dermq train dermoscopy-classifier"):
        assert text in card, text

    module = bundle.build_module()
    with torch.inference_mode():
        assert module(torch.zeros(1, 3, m.input_size, m.input_size)).shape == (1, 7)


def test_classifier_restart_from_a_bundle(root, classifier_run, tmp_path):
    """--init-from skips the first cycle: the second starts from the given bundle's weights."""
    start, first = classifier_run
    result = train_dermoscopy_classifier(_config(root, tmp_path / "restarted", init_from=start, restart_epochs=1))
    assert len(result.history) == 1
    schedule = result.manifest.training_data["schedule"]
    assert schedule["first_cycle"]["weights_sha256"] == first.manifest.weights_sha256
    assert schedule["restart"] == {"epochs": 1, "lr": 2e-4}
    assert result.manifest.weights_sha256 != first.manifest.weights_sha256  # it trained further
    with pytest.raises(DatasetError, match="nothing to train"):
        train_dermoscopy_classifier(_config(root, tmp_path / "none", init_from=start, restart_epochs=0))


def test_classifier_resume_republishes_without_training(root, classifier_run, monkeypatch):
    out, first = classifier_run
    saves: list[int] = []
    real_save = engine._save_checkpoint
    monkeypatch.setattr(engine, "_save_checkpoint", lambda path, state: (saves.append(state["epoch"]), real_save(path, state)))
    again = train_dermoscopy_classifier(_config(root, out, resume=True))
    assert saves == []  # no epoch was trained
    assert again.history == first.history  # restored from the checkpoint, timings included
    assert again.manifest.summary_metrics["epochs"] == 2
    assert again.manifest.weights_sha256 == first.manifest.weights_sha256
    assert load_bundle(out).manifest.summary_metrics["test_accuracy"] == first.manifest.summary_metrics["test_accuracy"]


def test_segmenter_recipe_end_to_end(root, tmp_path):
    out = tmp_path / "seg"
    config = DermoscopySegmenterConfig(data=root, out=out, epochs=1, batch_size=8, input_size=64, progress=False)
    train_dermoscopy_segmenter(config)
    assert verify_bundle(out) == []
    bundle = load_bundle(out)
    m = bundle.manifest
    assert (m.task, m.architecture, m.classes, m.input_size, m.trained) == ("segmentation", "unet_lite0", ["lesion"], 64, True)
    assert m.mean == list(LITE_MEAN)
    s = m.summary_metrics
    for key in ("test_jaccard", "test_median_jaccard", "test_thresholded_jaccard", "test_dice", "external_jaccard", "external_dice"):
        assert 0.0 <= s[key] <= 1.0, key
    assert s["test_thresholded_jaccard"] <= s["test_jaccard"] <= s["test_dice"]
    parts = split_records(load_records(root), config)
    assert s["test_images"] == len(parts["test"]) and s["external_images"] == len(parts["external"])
    assert m.training_data["modality"] == "dermoscopic"
    card = (out / "MODEL_CARD.md").read_text()
    assert card.startswith(f"# Model card: {m.name} {m.version}") and "Jaccard" in card
    with torch.inference_mode():
        assert bundle.build_module()(torch.zeros(1, 3, 64, 80)).shape == (1, 1, 64, 80)


# ------------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("command", ["dermoscopy-classifier", "dermoscopy-segmenter"])
def test_cli_help(command):
    result = CliRunner().invoke(main, ["train", command, "--help"])
    assert result.exit_code == 0, result.output
    for flag in ("--data", "--out", "--epochs", "--input-size", "--resume", "--quiet"):
        assert flag in result.output


@pytest.mark.parametrize("command", ["dermoscopy-classifier", "dermoscopy-segmenter"])
def test_cli_reports_a_missing_layout(command, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["train", command, "--data", str(empty), "--out", str(tmp_path / "b"), "--quiet"])
    assert result.exit_code == 1
    assert "Error:" in result.output and "metadata.csv not found" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert not (tmp_path / "b").exists()
    result = CliRunner().invoke(main, ["train", command, "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "does not exist" in result.output
