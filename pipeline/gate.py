"""The learned image gate: is this a skin photograph, and is it clinical or dermoscopic?

A linear head (``heads.image_gate`` in the classifier bundle) on per-channel mean and
standard deviation of several backbone stages, tapped during the forward pass the
classification runs anyway: early stages carry the colour, texture and optics that tell a
dermoscope from a phone camera or a street scene, the last one what the image shows. The
decision costs those poolings and one 3 x 4096 matrix product. Its three outputs, after the head's own
temperature, are calibrated probabilities (``dermq train image-gate`` fits and measures
them on held-out real images; the bundle's manifest holds the figures):

- ``other``: not a photograph of skin (everyday photos, people in a scene, documents);
- ``clinical``: an ordinary-camera photograph of skin;
- ``dermoscopic``: a dermoscope's view of skin.

``pipeline.quality`` turns them into the report's ``domain`` and ``modality``.

A second head on the same input, ``heads.sharpness`` (classes ``sharp``, ``blurred``), gives
a calibrated P(blurred): CNN statistics of the early stages lose their fine-detail energy
under blur whatever the scene, so it tells an out-of-focus or shaken photo from a naturally
smooth naevus better than a classical measure alone. The classifier appends it to the gate
probabilities, and ``pipeline.quality`` blends it with the classical ``sharpness`` metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["GATE_CLASSES", "GATE_HEAD", "GateProbs", "SHARPNESS_CLASSES", "SHARPNESS_HEAD", "pooled_statistics"]

GATE_HEAD = "image_gate"
GATE_CLASSES = ("other", "clinical", "dermoscopic")
# The learned blur cue: reads the gate head's input (same taps and pooling), column 1 is P(blurred).
SHARPNESS_HEAD = "sharpness"
SHARPNESS_CLASSES = ("sharp", "blurred")


def pooled_statistics(maps: list[Tensor], pooling: list[str]) -> Tensor:
    """(N, sum of channels x statistics): each map's per-channel statistics, in order (the head's input)."""
    stats = {"mean": lambda m: m.mean(dim=(2, 3)), "std": lambda m: m.std(dim=(2, 3))}
    return torch.cat([stats[kind](m) for m in maps for kind in pooling], dim=1)


@dataclass(frozen=True)
class GateProbs:
    """Calibrated gate probabilities of one image (the first three sum to 1).

    ``blurred`` is the sharpness head's calibrated P(blurred), None for a bundle without it.
    """

    other: float
    clinical: float
    dermoscopic: float
    blurred: float | None = None

    @classmethod
    def from_array(cls, probs: np.ndarray) -> GateProbs:
        """From the classifier's ``gate`` output: the GATE_CLASSES probabilities, then P(blurred) if present."""
        values = np.asarray(probs, np.float64)
        if values.shape not in ((len(GATE_CLASSES),), (len(GATE_CLASSES) + 1,)) or not np.isfinite(values).all():
            raise ValueError(f"expected {len(GATE_CLASSES)} finite gate probabilities (and P(blurred)), got {values!r}")
        if len(values) > len(GATE_CLASSES) and not 0.0 <= values[-1] <= 1.0:
            raise ValueError(f"P(blurred) must lie in [0, 1], got {values[-1]}")
        return cls(*(float(v) for v in values))

    @classmethod
    def maybe(cls, probs: np.ndarray | None) -> GateProbs | None:
        """``from_array``, or None for a classifier output without a gate head."""
        return None if probs is None else cls.from_array(probs)

    @property
    def dermatological(self) -> float:
        """P(the image is a photograph of skin)."""
        return self.clinical + self.dermoscopic

    @property
    def dermoscopic_given_skin(self) -> float:
        """P(dermoscopic | skin photograph): the modality, conditional on the domain."""
        skin = self.dermatological
        return self.dermoscopic / skin if skin > 0 else 0.5
