"""Guard on the bundles dermq serves by default: re-score them on a fixed held-out slice.

The slice is the recipe's own guard slice (``training.dermoscopy.guard_slice``: the
first 40 held-out test images of each class, by name), rebuilt from ``shared/data``
with the manifest's seed, and scored through the serving code (``Classifier``,
``LearnedSegmenter``), so a regression anywhere between the weights and the report
(preprocessing, normalisation, temperature, threshold) fails here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from pipeline.classify import Classifier
from pipeline.models.bundle import SHIPPED_BUNDLES, load_bundle
from pipeline.segmentation import ClassicalSegmenter, LearnedSegmenter, jaccard
from training.data import read_mask, read_rgb
from training.dermoscopy import HAM_CLASSES, DermoscopyClassifierConfig, Record, guard_slice, load_records, split_records

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
# Room for last-bit differences in decoding and arithmetic across machines, nothing more.
BALANCED_ACCURACY_TOLERANCE = 0.02
JACCARD_TOLERANCE = 0.01

pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / "ham10000" / "metadata.csv").is_file(), reason=f"needs the shared data set at {SHARED_DATA}"
)


@lru_cache(maxsize=1)
def _guard(seed: int) -> tuple[Record, ...]:
    config = DermoscopyClassifierConfig(data=SHARED_DATA, out=Path("unused"), seed=seed)
    return tuple(guard_slice(split_records(load_records(SHARED_DATA), config)["test"]))


def _balanced_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean([np.mean(predicted[truth == c] == c) for c in np.unique(truth)]))


def test_shipped_classifier_keeps_its_stated_balanced_accuracy() -> None:
    bundle = load_bundle(SHIPPED_BUNDLES["classification"])
    m = bundle.manifest
    assert m.trained and m.architecture == "efficientnet_lite0"
    guard = _guard(m.training_data["seed"])
    assert len(guard) == m.summary_metrics["guard_images"]
    outputs = Classifier.from_bundle(bundle).predict_images([read_rgb(r.image) for r in guard], batch_size=32)
    predicted = np.array([int(np.argmax(o.probs)) for o in outputs])
    truth = np.array([HAM_CLASSES.index(r.dx) for r in guard])
    balanced = _balanced_accuracy(truth, predicted)
    assert balanced >= m.summary_metrics["guard_balanced_accuracy"] - BALANCED_ACCURACY_TOLERANCE, balanced
    accuracy = float(np.mean(predicted == truth))
    assert accuracy >= m.summary_metrics["guard_accuracy"] - BALANCED_ACCURACY_TOLERANCE, accuracy


def test_shipped_classifier_serves_its_gate_and_sharpness_heads() -> None:
    from pipeline.gate import GATE_HEAD, SHARPNESS_HEAD

    bundle = load_bundle(SHIPPED_BUNDLES["classification"])
    assert list(bundle.manifest.heads) == [GATE_HEAD, SHARPNESS_HEAD]
    classifier = Classifier.from_bundle(bundle)
    assert classifier.has_gate and classifier.sharpness_weight is not None
    # Both heads read one input vector: the sharpness head adds one small product, no forward pass.
    assert classifier.sharpness_weight.shape == (2, classifier.gate_weight.shape[1])


def test_shipped_segmenter_keeps_its_stated_jaccard_and_beats_the_classical_method() -> None:
    bundle = load_bundle(SHIPPED_BUNDLES["segmentation"])
    m = bundle.manifest
    assert m.trained and m.architecture == "unet_lite0"
    learned, classical = LearnedSegmenter.from_bundle(bundle), ClassicalSegmenter()
    # Every other image of the guard slice for the classical comparison keeps this test short.
    guard = _guard(m.training_data["seed"])
    ours, theirs = [], []
    for i, r in enumerate(guard):
        rgb, truth = read_rgb(r.image), read_mask(r.mask) > 127
        ours.append(jaccard(learned.segment(rgb).binary, truth))
        if i % 2 == 0:
            theirs.append((ours[-1], jaccard(classical.segment(rgb).binary, truth)))
    mean = float(np.mean(ours))
    assert mean >= m.summary_metrics["guard_jaccard"] - JACCARD_TOLERANCE, mean
    learned_half, classical_half = np.mean(theirs, axis=0)
    assert learned_half > classical_half, (learned_half, classical_half)
