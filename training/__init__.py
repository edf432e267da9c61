"""Training, evaluation and calibration of dermq model bundles (not needed for serving).

``train_classifier`` / ``train_segmenter`` turn a folder of labelled images into a
bundle that ``pipeline.models.bundle.load_bundle`` accepts, with validation metrics in
the manifest and a ``MODEL_CARD.md`` beside it.  ``dermq train`` is the command line.
Synthetic phantoms (``training.phantoms``) and the sign-reliability harness
(``training.sign_reliability``) serve training and tests; neither needs torch, so the
exports below load lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CheckpointError": "training.engine",
    "ClassifierTrainConfig": "training.classifier",
    "DatasetError": "training.data",
    "SegmenterTrainConfig": "training.segmenter",
    "TrainConfig": "training.engine",
    "TrainResult": "training.engine",
    "train_classifier": "training.classifier",
    "train_segmenter": "training.segmenter",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # noqa: ANN401 (PEP 562 lazy exports)
    if name not in _EXPORTS:
        raise AttributeError(f"module 'training' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
