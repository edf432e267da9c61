"""Training, evaluation and calibration of dermq model bundles (not needed for serving).

``train_classifier`` / ``train_segmenter`` turn a folder of labelled images into a
bundle that ``pipeline.models.bundle.load_bundle`` accepts, with validation metrics in
the manifest and a ``MODEL_CARD.md`` beside it.  ``dermq train`` is the command line.
"""

from training.classifier import ClassifierTrainConfig, train_classifier
from training.data import DatasetError
from training.engine import CheckpointError, TrainConfig, TrainResult
from training.segmenter import SegmenterTrainConfig, train_segmenter

__all__ = [
    "CheckpointError",
    "ClassifierTrainConfig",
    "DatasetError",
    "SegmenterTrainConfig",
    "TrainConfig",
    "TrainResult",
    "train_classifier",
    "train_segmenter",
]
