"""A compact U-Net for lesion segmentation.

Four 2x down-sampling stages with skip connections (Ronneberger et al., 2015), each
stage two 3x3 Conv-BatchNorm-ReLU layers, widths ``base * (1, 2, 4, 8, 16)``.  With the
default ``base=16`` it has about 1.9 M parameters: small enough to train on a few
thousand dermoscopic images and to run on CPU workers.

Inputs of any size are accepted: they are padded (reflection) up to a multiple of 16
and the logits are cropped back, so the output is always at input resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UNet", "unet"]

_DEPTH = 4  # number of 2x down-samplings
_STRIDE = 2**_DEPTH


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    # No conv bias: BatchNorm's shift makes it redundant.
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Up(nn.Module):
    """2x transposed-conv up-sampling, concatenation with the skip, double conv."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.conv = _double_conv(2 * cout, cout)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    def __init__(self, num_classes: int = 1, base: int = 16, in_channels: int = 3) -> None:
        super().__init__()
        if num_classes < 1 or base < 1:
            raise ValueError("num_classes and base must be positive")
        widths = [base * 2**i for i in range(_DEPTH + 1)]
        self.stem = _double_conv(in_channels, widths[0])
        self.down = nn.ModuleList(_double_conv(widths[i], widths[i + 1]) for i in range(_DEPTH))
        self.up = nn.ModuleList(_Up(widths[i + 1], widths[i]) for i in reversed(range(_DEPTH)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % _STRIDE, (-w) % _STRIDE
        if pad_h or pad_w:
            # Reflection needs pad < size; replicate covers tiny inputs.
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for block in self.up:
            y = block(y, skips.pop())
        return self.head(y)[..., :h, :w]


def unet(num_classes: int = 1, base: int = 16) -> nn.Module:
    """A U-Net returning logits ``N x num_classes x H x W`` at input resolution."""
    return UNet(num_classes=num_classes, base=base)
