import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from dermq.cli.bench_segmentation import SAMPLE_DATA, find_pairs, segmentation
from pipeline.models.bundle import BundleError, load_bundle, save_bundle
from pipeline.models.unet import unet
from pipeline.segmentation import (
    BatchedSegmenter,
    ClassicalSegmenter,
    LearnedSegmenter,
    Segmentation,
    dice,
    evaluate,
    jaccard,
)

SKIN = (224, 172, 140)


def _load(image: Path, mask: Path) -> tuple[np.ndarray, np.ndarray]:
    """Image and reference mask; 5 MP JPEGs are decoded at reduced scale (the segmenter works at 256 px)."""
    with Image.open(image) as im:
        im.draft("RGB", (1024, 1024))
        rgb = np.asarray(im.convert("RGB"))
    with Image.open(mask) as m:
        truth = np.asarray(m.convert("L").resize((rgb.shape[1], rgb.shape[0]), Image.NEAREST)) > 127
    return rgb, truth


def _skin(h: int = 300, w: int = 400, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 5, (h, w, 3))
    return np.clip(np.asarray(SKIN) + noise, 0, 255).astype(np.uint8)


def _disc(shape: tuple[int, int], centre: tuple[int, int], radius: int) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


@pytest.fixture(scope="module")
def classical() -> ClassicalSegmenter:
    return ClassicalSegmenter()


def test_metrics():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    a[:2], b[1:3] = True, True
    assert jaccard(a, b) == pytest.approx(4 / 12)
    assert dice(a, b) == pytest.approx(8 / 16)
    assert jaccard(a, a) == dice(a, a) == 1.0
    assert jaccard(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    with pytest.raises(ValueError, match="shape"):
        jaccard(a, b[:3])


def test_isic_sample_mean_jaccard_at_least_070(classical):
    pairs = [_load(*p) for p in find_pairs(SAMPLE_DATA)]
    assert len(pairs) == 40
    result = evaluate(classical, pairs)
    assert result["n"] == 40
    assert result["jaccard_mean"] >= 0.70, result
    assert result["dice_mean"] >= result["jaccard_mean"]


def test_dark_disc_on_skin_is_found(classical):
    rgb = _skin()
    lesion = _disc(rgb.shape[:2], (140, 210), 55)
    rgb[lesion] = (120, 70, 50)
    rgb = cv2.GaussianBlur(rgb, (5, 5), 0)
    seg = classical.segment(rgb)
    assert jaccard(seg.binary, lesion) > 0.9


def test_red_plaque_off_centre_is_found(classical):
    rgb = _skin(400, 600, seed=1)
    lesion = _disc(rgb.shape[:2], (170, 360), 80)
    rgb[lesion] = (200, 110, 105)
    assert jaccard(classical.segment(rgb).binary, lesion) > 0.85


def test_plain_skin_gives_no_lesion(classical):
    seg = classical.segment(_skin())
    assert seg.binary.mean() < 0.01


def test_shading_alone_is_not_a_lesion(classical):
    rgb = _skin().astype(np.float32)
    rgb *= np.linspace(0.8, 1.05, rgb.shape[1], dtype=np.float32)[None, :, None]  # uneven light
    assert classical.segment(rgb.astype(np.uint8)).binary.mean() < 0.02


def test_result_contract(classical):
    rgb = _skin(123, 457)
    rgb[40:80, 200:260] = (90, 60, 50)
    seg = classical.segment(rgb)
    assert isinstance(seg, Segmentation)
    assert seg.prob.shape == seg.binary.shape == (123, 457)
    assert seg.prob.dtype == np.float32 and seg.binary.dtype == bool
    assert 0.0 <= seg.prob.min() and seg.prob.max() <= 1.0
    assert np.array_equal(seg.binary, seg.prob >= seg.threshold)
    assert (seg.method, seg.trained) == ("classical", False)


@pytest.mark.parametrize("rgb", [np.zeros((100, 100, 3), np.uint8), np.full((50, 80, 3), 255, np.uint8),
                                 np.full((3, 3, 3), 128, np.uint8)], ids=["black", "white", "tiny"])
def test_degenerate_images_give_empty_masks(classical, rgb):
    seg = classical.segment(rgb)
    assert seg.binary.shape == rgb.shape[:2] and not seg.binary.any()


def test_rejects_non_rgb(classical):
    with pytest.raises(ValueError, match="RGB"):
        classical.segment(np.zeros((10, 10), np.uint8))


@pytest.fixture(scope="module")
def unet_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("unet")
    save_bundle(directory, unet().state_dict(), name="lesion-unet", version="0.1", architecture="unet",
                classes=["lesion"], task="segmentation", input_size=64, trained=False)
    return directory


def test_learned_segmenter_from_unet_bundle(unet_dir):
    seg = LearnedSegmenter.from_bundle(load_bundle(unet_dir)).segment(_skin(90, 130))
    assert seg.prob.shape == seg.binary.shape == (90, 130)
    assert np.array_equal(seg.binary, seg.prob >= 0.5)
    assert (seg.method, seg.trained, seg.threshold) == ("lesion-unet@0.1", False, 0.5)


def test_a_batched_segmenter_answers_as_the_learned_one(unet_dir):
    learned = LearnedSegmenter.from_bundle(load_bundle(unet_dir))
    calls: list[tuple[int, ...]] = []

    def predict(x):  # noqa: ANN001 (what a batcher does: one image in, its map out, inside a batch)
        calls.append(tuple(x.shape))
        return learned.predict(torch.stack([x, x]))[0]

    rgb = _skin(90, 130)
    batched = BatchedSegmenter(learned, predict).segment(rgb)
    direct = learned.segment(rgb)
    assert calls == [(3, 64, 64)]
    assert np.allclose(batched.prob, direct.prob, atol=1e-6) and (batched.method, batched.trained) == (direct.method, direct.trained)


def test_learned_segmenter_refuses_a_classifier(tmp_path):
    save_bundle(tmp_path, unet(2).state_dict(), name="not-a-segmenter", version="1", architecture="unet",
                classes=["a", "b"], task="classification", trained=False)
    with pytest.raises(BundleError, match="classification model, not a segmentation model"):
        LearnedSegmenter.from_bundle(load_bundle(tmp_path))


def _small_sample(tmp_path: Path, n: int) -> Path:
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for image, mask in find_pairs(SAMPLE_DATA)[:n]:
        shutil.copy(image, tmp_path / "images" / image.name)
        shutil.copy(mask, tmp_path / "masks" / mask.name)
    return tmp_path


def test_bench_command_classical(tmp_path):
    result = CliRunner().invoke(segmentation, ["--data", str(_small_sample(tmp_path, 3))], terminal_width=160)
    assert result.exit_code == 0, result.output
    assert "ISIC_0001769" in result.output and "n=3" in result.output and "ms/image" in result.output


def test_bench_command_bundle(tmp_path, unet_dir):
    data = _small_sample(tmp_path, 2)
    result = CliRunner().invoke(segmentation, ["--data", str(data), "--bundle", str(unet_dir)], terminal_width=160)
    assert result.exit_code == 0, result.output
    assert "lesion-unet@0.1" in result.output and "n=2" in result.output


def test_bench_command_missing_masks(tmp_path):
    data = _small_sample(tmp_path, 1)
    for mask in (data / "masks").iterdir():
        mask.unlink()
    result = CliRunner().invoke(segmentation, ["--data", str(data)])
    assert result.exit_code != 0 and "segmentation.png" in result.output
