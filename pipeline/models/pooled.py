"""The interface every dermq classification network shares (timm's, in miniature).

A CNN whose ``forward_features`` ends in a feature map, followed by global average
pooling and ``classifier = Sequential(Dropout, Linear)``.  That shape is what makes
Class Activation Mapping exact (``pipeline.classify``): the serving code needs only
``forward_features`` and the head's weight and bias, whatever the backbone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["PooledClassifier"]


class PooledClassifier(nn.Module):
    """Subclasses set ``self.features``, ``self.avgpool`` and ``self.classifier``."""

    features: nn.Sequential
    avgpool: nn.Module
    classifier: nn.Sequential

    def init_weights(self) -> None:
        """torchvision's EfficientNet initialisation (He fan-out convs, unit BatchNorm, uniform head)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    @property
    def head(self) -> nn.Linear:
        head = self.classifier[1]
        assert isinstance(head, nn.Linear)
        return head

    @property
    def head_weight(self) -> Tensor:
        """(num_classes, C) weight of the final linear layer, used for CAM."""
        return self.head.weight

    @property
    def head_bias(self) -> Tensor:
        """(num_classes,) bias of the final linear layer."""
        return self.head.bias

    def get_classifier(self) -> nn.Linear:
        return self.head

    def forward_features(self, x: Tensor) -> Tensor:
        """Last feature map (N, C, h, w): the input to global pooling."""
        return self.features(x)

    def forward_intermediates(self, x: Tensor, indices: Sequence[int]) -> tuple[Tensor, list[Tensor]]:
        """The last feature map and the outputs of ``features[i]`` for each i in ``indices``, in one pass."""
        wanted = set(indices)
        taps: dict[int, Tensor] = {}
        for i, stage in enumerate(self.features):
            x = stage(x)
            if i in wanted:
                taps[i] = x
        missing = sorted(wanted - set(taps))
        if missing:
            raise IndexError(f"feature stages {missing} do not exist; there are {len(self.features)}")
        return x, [taps[i] for i in indices]

    def forward_head(self, features: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(features), 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))
