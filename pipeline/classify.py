"""Condition classification with calibrated probabilities and CAM maps in one pass.

For a CNN ending in global average pooling and a linear head,
``logit[c] = mean_hw(W[c] . F[:, h, w]) + b[c]``, so the per-location scores
``W[c] . F[:, h, w]`` (the Class Activation Map) are exactly the evidence the logit
averages.  All class maps therefore come from one matrix product with the last
feature map — no gradients, no second pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from pipeline.gate import (
    GATE_CLASSES,
    GATE_HEAD,
    SHARPNESS_CLASSES,
    SHARPNESS_HEAD,
    pooled_statistics,
)
from pipeline.models.bundle import BundleError, BundleManifest, ModelBundle
from pipeline.models.inference import fold_batchnorm

__all__ = ["Classifier", "ClassifierOutput", "preprocess_image"]


@dataclass
class ClassifierOutput:
    probs: np.ndarray  # (C,) float64, softmax(logits / temperature), sums to 1
    cams: np.ndarray  # (C, h, w) float32, W @ F per location (bias excluded)
    logits: np.ndarray  # (C,) float64, raw (pre-temperature) logits
    # (3,) calibrated image-gate probabilities (GATE_CLASSES), if the bundle has the head; (4,) with the
    # sharpness head's calibrated P(blurred) appended, if it has that one too (``GateProbs.from_array``).
    gate: np.ndarray | None = None


def preprocess_image(
    rgb: np.ndarray, input_size: int, mean: Sequence[float], std: Sequence[float]
) -> Tensor:
    """HxWx3 uint8 RGB -> 3xSxS float32, normalised.

    The whole image is resized ("squashed") to SxS rather than centre-cropped: a crop
    can cut away the lesion border, which carries diagnostic signal, and squashing keeps
    the CAM grid aligned with the full image (a map stretched back over the original
    covers exactly it).  Training must use the same function.  INTER_AREA is used for
    shrinking (anti-aliased); enlarging small images uses bilinear interpolation.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    if h == 0 or w == 0:
        raise ValueError("empty image")
    shrinking = h * w >= input_size * input_size
    resized = cv2.resize(
        np.ascontiguousarray(rgb),
        (input_size, input_size),
        interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
    )
    # (v / 255 - mean) / std as one multiply-add per channel, written straight into the CHW layout:
    # a fifth of the cost of the float copy, the subtraction, the division and the transposing copy.
    std32 = np.asarray(std, np.float32)
    scale, offset = np.float32(1.0) / (np.float32(255.0) * std32), -np.asarray(mean, np.float32) / std32
    x = np.empty((3, input_size, input_size), np.float32)
    for c in range(3):
        np.multiply(resized[..., c], scale[c], out=x[c], dtype=np.float32)
        x[c] += offset[c]
    return torch.from_numpy(x)


class Classifier:
    """A bundle's network on a device, ready for batched inference."""

    def __init__(
        self,
        manifest: BundleManifest,
        module: nn.Module,
        device: str | torch.device = "cpu",
        gate: tuple[Tensor, Tensor] | None = None,
        sharpness: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        if manifest.task != "classification":
            raise BundleError(f"bundle {manifest.name} is a {manifest.task} model, not a classifier")
        for attr in ("forward_features", "head_weight", "head_bias"):
            if not hasattr(module, attr):
                raise BundleError(f"{manifest.architecture} lacks {attr}; CAM needs a pooled linear head")
        self.manifest = manifest
        self.classes: list[str] = list(manifest.classes)
        self.device = torch.device(device)
        # BatchNorm folded into the convolutions; channels-last: oneDNN's and cuDNN's fastest
        # convolution layout (about 1.5x on CPU here).
        self.module = fold_batchnorm(module.eval()).to(self.device, memory_format=torch.channels_last)
        self.temperature = float(manifest.temperature)
        # The image gate reads statistics of feature maps this same forward pass computes.
        self.gate_weight: Tensor | None = None
        self.gate_bias: Tensor | None = None
        self.gate_temperature = 1.0
        self.gate_taps: list[int] = []
        self.gate_pooling: list[str] = ["mean"]
        if gate is not None:
            spec = manifest.heads[GATE_HEAD]
            self.gate_taps, self.gate_pooling = list(spec.taps), list(spec.pooling)
            weight, bias = gate
            with torch.inference_mode():
                width = self.head_inputs(torch.zeros(1, 3, 64, 64), self.gate_taps, self.gate_pooling).shape[1]
            if tuple(weight.shape) != (len(GATE_CLASSES), width):
                raise BundleError(f"image gate head has shape {tuple(weight.shape)}; its taps {self.gate_taps} "
                                  f"with {self.gate_pooling} pooling give {(len(GATE_CLASSES), width)}")
            self.gate_weight = weight.float().to(self.device)
            self.gate_bias = bias.float().to(self.device)
            self.gate_temperature = float(spec.temperature)
        # The sharpness head reads the very same input vector: one more small product (P(blurred)).
        self.sharpness_weight: Tensor | None = None
        self.sharpness_bias: Tensor | None = None
        self.sharpness_temperature = 1.0
        if sharpness is not None and gate is not None:
            spec = manifest.heads[SHARPNESS_HEAD]
            if list(spec.taps) != self.gate_taps or list(spec.pooling) != self.gate_pooling:
                raise BundleError(f"sharpness head reads taps {spec.taps} / {spec.pooling}, not the image gate's "
                                  f"{self.gate_taps} / {self.gate_pooling}")
            weight, bias = sharpness
            if tuple(weight.shape) != (len(SHARPNESS_CLASSES), self.gate_weight.shape[1]):
                raise BundleError(f"sharpness head has shape {tuple(weight.shape)}, expected "
                                  f"{(len(SHARPNESS_CLASSES), self.gate_weight.shape[1])}")
            self.sharpness_weight = weight.float().to(self.device)
            self.sharpness_bias = bias.float().to(self.device)
            self.sharpness_temperature = float(spec.temperature)

    @classmethod
    def from_bundle(cls, bundle: ModelBundle, device: str | torch.device = "cpu") -> Classifier:
        head = bundle.head(GATE_HEAD)
        if head is not None and tuple(head[0].classes) != GATE_CLASSES:
            raise BundleError(f"image gate classes {head[0].classes} are not {list(GATE_CLASSES)}")
        sharp = bundle.head(SHARPNESS_HEAD)
        if sharp is not None and tuple(sharp[0].classes) != SHARPNESS_CLASSES:
            raise BundleError(f"sharpness head classes {sharp[0].classes} are not {list(SHARPNESS_CLASSES)}")
        return cls(bundle.manifest, bundle.build_module(), device, gate=None if head is None else head[1:],
                   sharpness=None if sharp is None else sharp[1:])

    def preprocess(self, rgb: np.ndarray) -> Tensor:
        m = self.manifest
        return preprocess_image(rgb, m.input_size, m.mean, m.std)

    @property
    def has_gate(self) -> bool:
        return self.gate_weight is not None

    def _forward(self, batch: Tensor, taps: list[int]) -> tuple[Tensor, list[Tensor]]:
        """The last feature map and the tapped stages' outputs, in float32, from one pass."""
        x = batch.to(self.device, torch.float32, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.device.type == "cuda"):
            if taps:
                final, tapped = self.module.forward_intermediates(x, taps)
            else:
                final, tapped = self.module.forward_features(x), []
        return final.float(), [t.float() for t in tapped]

    @staticmethod
    def _head_input(final: Tensor, tapped: list[Tensor], pooling: list[str]) -> Tensor:
        return pooled_statistics(tapped or [final], pooling)

    @torch.inference_mode()
    def head_inputs(self, batch: Tensor, taps: list[int], pooling: list[str]) -> np.ndarray:
        """What an auxiliary head with these taps and pooling reads (``dermq train image-gate`` fits on it)."""
        final, tapped = self._forward(batch, taps)
        return self._head_input(final, tapped, pooling).cpu().numpy()

    @torch.inference_mode()
    def predict(self, batch: Tensor) -> list[ClassifierOutput]:
        """Probabilities and class maps for an N x 3 x S x S batch (from ``preprocess``)."""
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected an N x 3 x S x S batch, got {tuple(batch.shape)}")
        # Head and maps in float32 even under autocast: keeps the CAM identity tight.
        features, tapped = self._forward(batch, self.gate_taps)
        weight = self.module.head_weight.float()
        bias = self.module.head_bias.float()
        cams = torch.einsum("ck,nkhw->nchw", weight, features)
        pooled = features.mean(dim=(2, 3))
        logits = pooled @ weight.T + bias
        probs = torch.softmax(logits.double() / self.temperature, dim=1)
        cams_np = cams.cpu().numpy()
        probs_np = probs.cpu().numpy()
        logits_np = logits.double().cpu().numpy()
        gate_np = None
        if self.gate_weight is not None and self.gate_bias is not None:
            gate_input = self._head_input(features, tapped, self.gate_pooling)
            gate_logits = (gate_input @ self.gate_weight.T + self.gate_bias).double()
            gate_probs = torch.softmax(gate_logits / self.gate_temperature, dim=1)
            if self.sharpness_weight is not None and self.sharpness_bias is not None:
                blur_logits = (gate_input @ self.sharpness_weight.T + self.sharpness_bias).double()
                blurred = torch.softmax(blur_logits / self.sharpness_temperature, dim=1)[:, 1:]
                gate_probs = torch.cat([gate_probs, blurred], dim=1)
            gate_np = gate_probs.cpu().numpy()
        return [
            ClassifierOutput(probs=probs_np[i].copy(), cams=cams_np[i].copy(), logits=logits_np[i].copy(),
                             gate=None if gate_np is None else gate_np[i].copy())
            for i in range(batch.shape[0])
        ]

    def predict_images(self, images: Sequence[np.ndarray], batch_size: int = 8) -> list[ClassifierOutput]:
        """``preprocess`` + ``predict`` over RGB images, ``batch_size`` at a time."""
        outputs: list[ClassifierOutput] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            outputs += self.predict(torch.stack([self.preprocess(im) for im in chunk]))
        return outputs
