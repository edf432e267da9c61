from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.classify import Classifier, preprocess_image
from pipeline.models.bundle import BundleError, ModelBundle, reference_bundle

CLASSES = ["2C30", "2C32", "EK90", "2F20.1", "1F28"]
FIXTURE_IMAGES = Path(__file__).resolve().parents[1] / "fixtures" / "isic2017-sample" / "images"


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    return reference_bundle(CLASSES)


@pytest.fixture(scope="module")
def classifier(bundle) -> Classifier:
    return Classifier.from_bundle(bundle)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    paths = sorted(FIXTURE_IMAGES.glob("*.jpg"))[:3]
    if len(paths) == 3:
        return [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (300 + 20 * i, 400, 3), dtype=np.uint8) for i in range(3)]


@pytest.fixture(scope="module")
def batch(classifier, images) -> torch.Tensor:
    return torch.stack([classifier.preprocess(im) for im in images])


def _entropy(p: np.ndarray) -> float:
    return float(-(p * np.log(np.clip(p, 1e-300, None))).sum())


def test_preprocess_shape_and_normalisation(classifier):
    white = np.full((480, 640, 3), 255, np.uint8)
    x = classifier.preprocess(white)
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    expected = (1.0 - torch.tensor(classifier.manifest.mean)) / torch.tensor(classifier.manifest.std)
    torch.testing.assert_close(x[:, 100, 100], expected)
    # Every pixel and channel, in CHW order: (v / 255 - mean) / std of the resized image.
    rgb = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    resized = cv2.resize(rgb, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    expected = torch.from_numpy((resized - np.float32(mean)) / np.float32(std)).permute(2, 0, 1)
    torch.testing.assert_close(preprocess_image(rgb, 32, mean, std), expected)
    small = preprocess_image(np.zeros((50, 30, 3), np.uint8), 64, (0, 0, 0), (1, 1, 1))
    assert small.shape == (3, 64, 64) and float(small.abs().max()) == 0.0
    with pytest.raises(ValueError):
        classifier.preprocess(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        classifier.preprocess(np.zeros((10, 10, 3), np.float32))


def test_preprocess_keeps_whole_image(classifier):
    # A mark in the far corner of a wide image must survive (squash, not centre-crop).
    img = np.zeros((300, 600, 3), np.uint8)
    img[:, -40:] = 255
    x = classifier.preprocess(img)
    assert float(x[0, 112, -5]) > 1.0 and float(x[0, 112, 5]) < 0.0


def test_probs_are_a_distribution(classifier, batch):
    outputs = classifier.predict(batch[:1])
    assert len(outputs) == 1
    probs = outputs[0].probs
    assert probs.shape == (len(CLASSES),) and probs.dtype == np.float64
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    assert (probs >= 0).all()


def test_temperature_flattens_distribution(bundle, batch):
    # Untrained reference logits are nearly uniform on real images; sharpen the head so
    # the distributions being compared are far from uniform.
    sharp = dict(bundle.state_dict, **{"classifier.1.weight": bundle.state_dict["classifier.1.weight"] * 200})
    cold = Classifier.from_bundle(ModelBundle(bundle.manifest.model_copy(update={"temperature": 1.0}), sharp))
    hot = Classifier.from_bundle(ModelBundle(bundle.manifest.model_copy(update={"temperature": 3.0}), sharp))
    cold_out = cold.predict(batch[:1])[0]
    hot_out = hot.predict(batch[:1])[0]
    np.testing.assert_allclose(hot_out.logits, cold_out.logits, rtol=1e-6)
    assert _entropy(hot_out.probs) > _entropy(cold_out.probs) + 1e-3
    expected = np.exp(cold_out.logits / 3.0) / np.exp(cold_out.logits / 3.0).sum()
    np.testing.assert_allclose(hot_out.probs, expected, rtol=1e-9)


def test_cam_shape_and_identity(classifier, batch):
    out = classifier.predict(batch[:1])[0]
    assert out.cams.shape == (len(CLASSES), 7, 7) and out.cams.dtype == np.float32
    # CAM identity: the logit is the spatial mean of the class map plus the bias.
    # Tolerances scale with the (small, untrained) magnitudes so the check stays tight.
    tol = 1e-5 * float(np.abs(out.cams).max())
    bias = classifier.module.head_bias.detach().numpy()
    np.testing.assert_allclose(out.cams.mean(axis=(1, 2)) + bias, out.logits, rtol=1e-5, atol=tol)
    with torch.inference_mode():
        logits = classifier.module(batch[:1]).double().numpy()[0]
    np.testing.assert_allclose(out.logits, logits, rtol=1e-4, atol=10 * tol)
    assert np.ptp(out.cams[0]) > 0  # a real map, not a constant


def test_batch_equals_one_at_a_time(classifier, batch):
    together = classifier.predict(batch)
    assert len(together) == 3
    for i, joint in enumerate(together):
        alone = classifier.predict(batch[i : i + 1])[0]
        np.testing.assert_allclose(joint.probs, alone.probs, rtol=1e-5, atol=1e-7)
        tol = 1e-4 * float(np.abs(alone.cams).max())
        np.testing.assert_allclose(joint.cams, alone.cams, rtol=1e-4, atol=tol)


def test_predict_images_batches(classifier, images, batch):
    outputs = classifier.predict_images(images, batch_size=2)
    direct = classifier.predict(batch)
    assert len(outputs) == 3
    for got, want in zip(outputs, direct):
        np.testing.assert_allclose(got.probs, want.probs, rtol=1e-4, atol=1e-6)


def test_rejects_bad_batches_and_non_classifiers(classifier, bundle):
    with pytest.raises(ValueError):
        classifier.predict(torch.zeros(3, 224, 224))
    seg = ModelBundle(bundle.manifest.model_copy(update={"task": "segmentation"}), bundle.state_dict)
    with pytest.raises(BundleError, match="segmentation"):
        Classifier.from_bundle(seg)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(bundle, classifier, batch):
    gpu = Classifier.from_bundle(bundle, device="cuda")
    for got, want in zip(gpu.predict(batch), classifier.predict(batch)):
        np.testing.assert_allclose(got.probs, want.probs, atol=2e-2)
        assert got.cams.shape == want.cams.shape and got.cams.dtype == np.float32


def test_untrained_reference_model_never_looks_confident() -> None:
    from pathlib import Path

    from PIL import Image

    from pipeline.catalogue import load_catalogue
    from pipeline.models.bundle import reference_bundle

    codes = load_catalogue().codes
    clf = Classifier.from_bundle(reference_bundle(codes))
    images = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "isic2017-sample" / "images").glob("*.jpg"))
    batch = torch.stack([clf.preprocess(np.asarray(Image.open(p).convert("RGB"))) for p in images[:8]])
    for out in clf.predict(batch):
        assert out.probs.max() < 2.0 / len(codes), "an untrained model must stay close to uniform"
