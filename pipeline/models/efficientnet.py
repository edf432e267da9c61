"""EfficientNet-B0..B7, written in-project with torchvision-identical state-dict layout.

torchvision is not available in the build environment, but ImageNet checkpoints and
most published fine-tunes use torchvision's parameter names.  This module reproduces
``torchvision.models.efficientnet`` module-for-module (``features`` / ``avgpool`` /
``classifier = Sequential(Dropout, Linear)``; MBConv blocks as ``block`` Sequentials of
Conv-BN-act triples and a SqueezeExcitation with 1x1-conv ``fc1``/``fc2``), so a
torchvision ``state_dict`` loads without renaming.

The network ends in global average pooling and a single linear layer, which is what
makes Class Activation Mapping exact: see ``forward_features``/``head_weight``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from pipeline.models.pooled import PooledClassifier

__all__ = [
    "EfficientNet",
    "MBConvConfig",
    "VARIANTS",
    "efficientnet",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "load_backbone",
]


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channel counts to a multiple of ``divisor`` exactly as torchvision does."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # never round down by more than 10 %
        new_v += divisor
    return new_v


@dataclass
class MBConvConfig:
    """One stage of MBConv blocks; channels/depth already scaled by the variant."""

    expand_ratio: float
    kernel: int
    stride: int
    input_channels: int
    out_channels: int
    num_layers: int

    @classmethod
    def scaled(
        cls,
        expand_ratio: float,
        kernel: int,
        stride: int,
        input_channels: int,
        out_channels: int,
        num_layers: int,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
    ) -> MBConvConfig:
        return cls(
            expand_ratio,
            kernel,
            stride,
            _make_divisible(input_channels * width_mult),
            _make_divisible(out_channels * width_mult),
            int(math.ceil(num_layers * depth_mult)),
        )


# (expand_ratio, kernel, stride, in_channels, out_channels, repeats) of EfficientNet-B0.
_B0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)


@dataclass(frozen=True)
class _Variant:
    width_mult: float
    depth_mult: float
    dropout: float
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1


# torchvision's compound-scaling table.  B5-B7 use TF-style BatchNorm hyper-parameters
# because their ImageNet weights were ported from TensorFlow; B0-B4 use PyTorch defaults.
VARIANTS: dict[str, _Variant] = {
    "b0": _Variant(1.0, 1.0, 0.2),
    "b1": _Variant(1.0, 1.1, 0.2),
    "b2": _Variant(1.1, 1.2, 0.3),
    "b3": _Variant(1.2, 1.4, 0.3),
    "b4": _Variant(1.4, 1.8, 0.4),
    "b5": _Variant(1.6, 2.2, 0.4, 1e-3, 0.01),
    "b6": _Variant(1.8, 2.6, 0.5, 1e-3, 0.01),
    "b7": _Variant(2.0, 3.1, 0.5, 1e-3, 0.01),
}


class Conv2dNormActivation(nn.Sequential):
    """Conv (no bias) -> BatchNorm -> optional activation; children named 0, 1, 2."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        norm_layer: Callable[[int], nn.Module],
        stride: int = 1,
        groups: int = 1,
        activation: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=(kernel_size - 1) // 2,
                groups=groups,
                bias=False,
            ),
            norm_layer(out_channels),
        ]
        if activation:
            layers.append(nn.SiLU(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Channel attention; 1x1 convs (not Linear) so keys match torchvision.ops."""

    def __init__(self, input_channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = nn.SiLU(inplace=True)
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class StochasticDepth(nn.Module):
    """Row-mode stochastic depth: drop a whole residual branch per sample in training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
        noise.bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode=row"


class MBConv(nn.Module):
    """Inverted residual: [expand 1x1] -> depthwise kxk -> SE -> project 1x1 (+ skip)."""

    def __init__(
        self,
        cnf: MBConvConfig,
        stochastic_depth_prob: float,
        norm_layer: Callable[[int], nn.Module],
    ) -> None:
        super().__init__()
        if cnf.stride not in (1, 2):
            raise ValueError(f"illegal stride {cnf.stride}")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels

        expanded = _make_divisible(cnf.input_channels * cnf.expand_ratio)
        layers: list[nn.Module] = []
        if expanded != cnf.input_channels:
            layers.append(Conv2dNormActivation(cnf.input_channels, expanded, 1, norm_layer))
        layers.append(
            Conv2dNormActivation(
                expanded, expanded, cnf.kernel, norm_layer, stride=cnf.stride, groups=expanded
            )
        )
        layers.append(SqueezeExcitation(expanded, max(1, cnf.input_channels // 4)))
        layers.append(
            Conv2dNormActivation(expanded, cnf.out_channels, 1, norm_layer, activation=False)
        )
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob)
        self.out_channels = cnf.out_channels

    def forward(self, x: Tensor) -> Tensor:
        result = self.block(x)
        if self.use_res_connect:
            result = self.stochastic_depth(result)
            result = result + x
        return result


class EfficientNet(PooledClassifier):
    """EfficientNet backbone + global average pooling + dropout/linear classifier."""

    def __init__(
        self,
        stages: list[MBConvConfig],
        dropout: float,
        num_classes: int = 1000,
        stochastic_depth_prob: float = 0.2,
        norm_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        norm = norm_layer or nn.BatchNorm2d

        layers: list[nn.Module] = [
            Conv2dNormActivation(3, stages[0].input_channels, 3, norm, stride=2)
        ]
        total_blocks = sum(cnf.num_layers for cnf in stages)
        block_id = 0
        for cnf in stages:
            stage: list[nn.Module] = []
            for _ in range(cnf.num_layers):
                block_cnf = copy.copy(cnf)
                if stage:  # only the first block of a stage changes width/resolution
                    block_cnf.input_channels = block_cnf.out_channels
                    block_cnf.stride = 1
                # Drop probability grows linearly with depth, as in torchvision.
                sd_prob = stochastic_depth_prob * float(block_id) / total_blocks
                stage.append(MBConv(block_cnf, sd_prob, norm))
                block_id += 1
            layers.append(nn.Sequential(*stage))
        last_in = stages[-1].out_channels
        last_out = 4 * last_in
        layers.append(Conv2dNormActivation(last_in, last_out, 1, norm))

        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout, inplace=True), nn.Linear(last_out, num_classes)
        )
        self.num_features = last_out
        self.num_classes = num_classes
        self.init_weights()


def efficientnet(
    variant: str = "b0",
    *,
    num_classes: int = 1000,
    dropout: float | None = None,
    stochastic_depth_prob: float = 0.2,
) -> EfficientNet:
    """Build EfficientNet-``variant`` (b0..b7); ``dropout=None`` uses torchvision's value."""
    key = variant.lower().removeprefix("efficientnet_")
    if key not in VARIANTS:
        raise ValueError(f"unknown EfficientNet variant {variant!r}; known: {sorted(VARIANTS)}")
    v = VARIANTS[key]
    stages = [
        MBConvConfig.scaled(*row, width_mult=v.width_mult, depth_mult=v.depth_mult)
        for row in _B0_STAGES
    ]
    return EfficientNet(
        stages,
        dropout=v.dropout if dropout is None else dropout,
        num_classes=num_classes,
        stochastic_depth_prob=stochastic_depth_prob,
        norm_layer=partial(nn.BatchNorm2d, eps=v.bn_eps, momentum=v.bn_momentum),
    )


efficientnet_b0 = partial(efficientnet, "b0")
efficientnet_b1 = partial(efficientnet, "b1")
efficientnet_b2 = partial(efficientnet, "b2")
efficientnet_b3 = partial(efficientnet, "b3")
efficientnet_b4 = partial(efficientnet, "b4")
efficientnet_b5 = partial(efficientnet, "b5")
efficientnet_b6 = partial(efficientnet, "b6")
efficientnet_b7 = partial(efficientnet, "b7")


def load_backbone(
    model: EfficientNet, state_dict: Mapping[str, Tensor], *, head_prefix: str = "classifier."
) -> list[str]:
    """Load a (torchvision-layout) checkpoint, skipping the head when its shape differs.

    Meant for fine-tuning from an ImageNet checkpoint: every backbone tensor must be
    present with the right shape (a mismatch there is a wrong architecture, not a new
    task, so it raises ``ValueError``), while ``classifier.*`` tensors whose shapes do
    not match keep the model's fresh initialisation.  ``num_batches_tracked`` buffers
    may be absent (some published checkpoints drop them).  Returns the skipped keys.
    """
    own = model.state_dict()
    unexpected = sorted(set(state_dict) - set(own))
    if unexpected:
        raise ValueError(f"{len(unexpected)} unexpected keys in checkpoint, e.g. {unexpected[:5]}")
    to_load: dict[str, Tensor] = {}
    skipped: list[str] = []
    problems: list[str] = []
    for key, target in own.items():
        if key not in state_dict:
            if key.startswith(head_prefix):
                skipped.append(key)
            elif not key.endswith("num_batches_tracked"):
                problems.append(f"missing {key}")
            continue
        src = state_dict[key]
        if tuple(src.shape) == tuple(target.shape):
            to_load[key] = src
        elif key.startswith(head_prefix):
            skipped.append(key)
        else:
            problems.append(f"{key}: checkpoint {tuple(src.shape)} vs model {tuple(target.shape)}")
    if problems:
        raise ValueError("checkpoint does not fit the backbone: " + "; ".join(problems[:5]))
    model.load_state_dict(to_load, strict=False)
    return skipped
