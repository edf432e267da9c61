"""A U-Net whose encoder is EfficientNet-Lite0 (ImageNet-initialisable), for lesion masks.

The encoder is :class:`~pipeline.models.efficientnet_lite.EfficientNetLite` minus its
head; skips are tapped after the stages that end at strides 2, 4, 8, 16 and 32.  The
decoder up-samples bilinearly (cheaper and free of the checkerboard artefacts of
transposed convolutions) and fuses each skip with one depthwise-separable
Conv-BN-ReLU, so the whole network stays around 3 M parameters and CPU-friendly.

Inputs of any size are accepted: they are padded (replicate) to a multiple of 32 and
the logits cropped back, so the output is always at input resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.models.efficientnet_lite import EfficientNetLite

__all__ = ["LiteUNet", "unet_lite0"]

# Indices into EfficientNetLite.features whose outputs are the skips (strides 2..32).
_TAPS = (1, 2, 3, 5, 7)
_TAP_CHANNELS = (16, 24, 40, 112, 320)
_DECODER = (96, 64, 48, 32)  # widths after fusing the skips at strides 16, 8, 4, 2
_STRIDE = 32


class _Fuse(nn.Module):
    """Depthwise 3x3 + pointwise 1x1, each with BatchNorm; ReLU at the end."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin))
        self.pointwise = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))


class LiteUNet(nn.Module):
    def __init__(self, num_classes: int = 1) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError("num_classes must be positive")
        backbone = EfficientNetLite(num_classes=1, dropout=0.0, drop_path=0.1)
        # Stem + 7 stages; the 1280-channel head conv is not needed for masks.
        self.encoder = nn.Sequential(*list(backbone.features)[: _TAPS[-1] + 1])
        skips = list(_TAP_CHANNELS[:-1])[::-1]  # 112, 40, 24, 16
        widths = [_TAP_CHANNELS[-1], *_DECODER]
        self.decoder = nn.ModuleList(
            _Fuse(widths[i] + skips[i], widths[i + 1]) for i in range(len(_DECODER))
        )
        self.head = nn.Conv2d(_DECODER[-1], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % _STRIDE, (-w) % _STRIDE
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips: list[Tensor] = []
        y = x
        for i, layer in enumerate(self.encoder):
            y = layer(y)
            if i in _TAPS[:-1]:
                skips.append(y)
        for fuse in self.decoder:
            y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
            y = fuse(torch.cat([y, skips.pop()], dim=1))
        # Logits at stride 2, up-sampled: a full-resolution decoder level would double the
        # training cost for boundaries that bilinear interpolation of logits draws as well.
        logits = F.interpolate(self.head(y), scale_factor=2.0, mode="bilinear", align_corners=False)
        return logits[..., :h, :w]

    def load_encoder(self, lite_state: dict[str, Tensor]) -> None:
        """Initialise the encoder from an :class:`EfficientNetLite` state dict (``features.*`` keys)."""
        n = len(self.encoder)
        own = {k: v for k, v in lite_state.items() if k.startswith("features.") and int(k.split(".")[1]) < n}
        self.encoder.load_state_dict({k.removeprefix("features."): v for k, v in own.items()}, strict=True)


def unet_lite0(num_classes: int = 1) -> LiteUNet:
    """A Lite0-encoder U-Net returning logits ``N x num_classes x H x W`` at input resolution."""
    return LiteUNet(num_classes)
