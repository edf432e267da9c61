"""EfficientNet-Lite0 (Tan & Le, 2019; TensorFlow's mobile/edge variant), written in-project.

Lite0 is EfficientNet-B0 made friendly to quantisation and plain CPUs: no
squeeze-excitation, ReLU6 instead of SiLU, the stem and head kept at fixed width, and
BatchNorm eps 1e-3 (TensorFlow's).  Its ImageNet weights were trained in TensorFlow
with "SAME" padding, which pads stride-2 convolutions asymmetrically (the extra row
and column go bottom/right); :class:`Conv2dSame` reproduces that, otherwise every
down-sampling shifts the feature maps by half a pixel against what the weights expect.

The module layout mirrors :mod:`pipeline.models.efficientnet` (``features`` stages of
``block`` Sequentials, ``avgpool``, ``classifier = Sequential(Dropout, Linear)``), so the
serving code (CAM via ``forward_features`` / ``head_weight``, the U-Net encoder taps)
treats both families alike.  :func:`convert_efficientnet_pytorch_state` maps the
``efficientnet_pytorch`` key layout (``_conv_stem``, ``_blocks.N.*``, ``_conv_head``,
``_fc``) in which the published Lite0 ImageNet checkpoint is stored onto this layout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.models.pooled import PooledClassifier

__all__ = [
    "LITE0_STAGES",
    "LITE_BN_EPS",
    "LITE_MEAN",
    "LITE_STD",
    "Conv2dSame",
    "EfficientNetLite",
    "convert_efficientnet_pytorch_state",
    "efficientnet_lite0",
]

# (repeats, kernel, stride, expand_ratio, in_channels, out_channels) per stage.
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
LITE_BN_EPS = 1e-3
_STEM = 32
_HEAD = 1280
# The TensorFlow Lite checkpoints were trained on (x - 127) / 128 in 0..255 units.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding, computed for the actual input size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, groups=groups, bias=False)

    @staticmethod
    def _pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: Tensor) -> Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if s == 1 and k % 2:  # SAME at stride 1, odd kernel, is symmetric: the convolution pads itself, no padded copy
            return F.conv2d(x, self.weight, self.bias, 1, (k - 1) // 2, self.dilation, self.groups)
        top, bottom = self._pad(x.shape[-2], k, s)
        left, right = self._pad(x.shape[-1], k, s)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        # The bias is None until `fold_batchnorm` folds the following BatchNorm into this convolution.
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class ConvBNReLU6(nn.Sequential):
    """Conv (SAME, no bias) -> BatchNorm(eps 1e-3) -> optional ReLU6; children 0, 1, 2."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, activation: bool = True) -> None:
        layers: list[nn.Module] = [Conv2dSame(cin, cout, kernel, stride, groups), nn.BatchNorm2d(cout, eps=LITE_BN_EPS)]
        if activation:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class LiteBlock(nn.Module):
    """Inverted residual without squeeze-excitation: [expand 1x1] -> depthwise -> project."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, drop_path: float) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU6(cin, hidden, 1))
        layers.append(ConvBNReLU6(hidden, hidden, kernel, stride, groups=hidden))
        layers.append(ConvBNReLU6(hidden, cout, 1, activation=False))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout
        self.drop_path = drop_path

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        if not self.residual:
            return out
        if self.training and self.drop_path > 0:
            keep = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(1 - self.drop_path)
            out = out * keep / (1 - self.drop_path)
        return out + x


class EfficientNetLite(PooledClassifier):
    """Backbone + global average pooling + dropout/linear head (timm-style interface)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, drop_path: float = 0.2) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        layers: list[nn.Module] = [ConvBNReLU6(3, _STEM, 3, stride=2)]
        total = sum(row[0] for row in LITE0_STAGES)
        index = 0
        for repeats, kernel, stride, expand, cin, cout in LITE0_STAGES:
            stage = []
            for r in range(repeats):
                stage.append(LiteBlock(cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand, drop_path * index / total))
                index += 1
            layers.append(nn.Sequential(*stage))
        layers.append(ConvBNReLU6(LITE0_STAGES[-1][5], _HEAD, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(_HEAD, num_classes))
        self.num_features = _HEAD
        self.num_classes = num_classes
        self.init_weights()


def efficientnet_lite0(num_classes: int = 1000, dropout: float = 0.2, drop_path: float = 0.2) -> EfficientNetLite:
    return EfficientNetLite(num_classes=num_classes, dropout=dropout, drop_path=drop_path)


def _block_positions() -> list[tuple[int, int, bool]]:
    """(stage index in ``features``, block index in stage, has expansion) for each flat block."""
    positions = []
    for s, (repeats, _k, _s, expand, _i, _o) in enumerate(LITE0_STAGES, start=1):
        positions += [(s, r, expand != 1) for r in range(repeats)]
    return positions


_BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def convert_efficientnet_pytorch_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename an ``efficientnet_pytorch``-layout Lite0 state dict to this module's keys.

    Raises ``ValueError`` on a key it does not know, so a checkpoint of another
    architecture (B0 with its ``_se_reduce`` tensors, say) is refused, not half-loaded.
    """
    head_stage = len(LITE0_STAGES) + 1
    renames: dict[str, str] = {"_conv_stem.weight": "features.0.0.weight", "_conv_head.weight": f"features.{head_stage}.0.weight"}
    for suffix in _BN_SUFFIXES:
        renames[f"_bn0.{suffix}"] = f"features.0.1.{suffix}"
        renames[f"_bn1.{suffix}"] = f"features.{head_stage}.1.{suffix}"
    renames["_fc.weight"], renames["_fc.bias"] = "classifier.1.weight", "classifier.1.bias"
    for n, (stage, r, expands) in enumerate(_block_positions()):
        prefix, dw = f"features.{stage}.{r}.block", 1 if expands else 0
        parts = {"_depthwise_conv": (dw, 0), "_bn1": (dw, 1), "_project_conv": (dw + 1, 0), "_bn2": (dw + 1, 1)}
        if expands:
            parts |= {"_expand_conv": (0, 0), "_bn0": (0, 1)}
        for name, (layer, child) in parts.items():
            for suffix in ("weight",) if name.endswith("conv") else _BN_SUFFIXES:
                renames[f"_blocks.{n}.{name}.{suffix}"] = f"{prefix}.{layer}.{child}.{suffix}"
    unknown = sorted(k for k in state if k not in renames)
    if unknown:
        raise ValueError(f"{len(unknown)} keys are not EfficientNet-Lite0 (efficientnet_pytorch layout), e.g. {unknown[:4]}")
    return {renames[k]: v for k, v in state.items()}
