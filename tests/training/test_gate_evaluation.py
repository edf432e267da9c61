"""The served image gate, measured on a fixed slice of the held-out split (``dermq bench gate`` runs it all).

The slice is the first images of each held-out set (the gate's test split: never used to
fit or calibrate the head), scored exactly as a worker scores them. The bars are the
issue's targets less a tolerance for the slice's size; the full-split figures are in
docs/image-gate.md and the bundle's manifest.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from pipeline.classify import Classifier
from pipeline.models.bundle import SHIPPED_BUNDLES, load_bundle
from training.gate_evaluation import TARGET_DEGRADATIONS, GateReport, evaluate_gate, held_out_sets

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SLICE = {"dermoscopic": 200, "clinical": 120, "nonskin": 120}
TOLERANCE = 0.03  # a 120-image slice's binomial spread around a rate of 0.95 is about ±0.02

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "nonskin" / "labels.csv").is_file(),
                                reason=f"needs the shared data set at {SHARED_DATA}")


@lru_cache(maxsize=1)
def report() -> GateReport:
    classifier = Classifier.from_bundle(load_bundle(SHIPPED_BUNDLES["classification"]))
    sets = {name: records[: SLICE[name]] for name, records in held_out_sets(SHARED_DATA).items()}
    return evaluate_gate(classifier, sets, degraded_per_set=25)


def test_dermoscopic_images_are_valid_and_dermoscopic() -> None:
    rates = report().sets["dermoscopic"].rates()
    assert rates["images"] == SLICE["dermoscopic"]
    assert rates["valid_and_modality_right"] >= 0.97 - TOLERANCE, rates


def test_clinical_photographs_are_skin_and_clinical() -> None:
    rates = report().sets["clinical"].rates()
    assert rates["dermatological"] >= 0.95 - TOLERANCE, rates
    assert rates["modality_right"] >= 0.90 - TOLERANCE, rates


def test_everyday_photos_are_refused_people_included() -> None:
    rates = report().sets["nonskin"].rates()
    assert 1 - rates["dermatological"] >= 0.97 - TOLERANCE, rates
    assert rates["people_not_dermatological"] >= 0.9, rates


# The target is 0.95 for every defect; blur reaches it since `sharpness` blends the learned P(blurred)
# with the blur ratio (full split: Gaussian and motion blur 1.000, docs/image-gate.md).
@pytest.mark.parametrize("defect", TARGET_DEGRADATIONS)
def test_degraded_copies_fail_with_the_metric_that_names_the_defect(defect: str) -> None:
    rates = report().degraded[defect].rates()
    bar = 0.95 - TOLERANCE
    assert rates["images"] >= 40
    assert rates["not_acceptable"] >= bar and rates["right_metric"] >= bar, rates


def test_naturally_smooth_dermoscopic_images_are_not_called_blurry() -> None:
    # The blur ratio alone failed 16 of the 1,200 held-out dermoscopic images (none in this slice), the
    # blend none of them (`dermq bench gate`); here it guards against new false failures.
    failing = report().sets["dermoscopic"].failing
    assert failing.get("sharpness", 0) <= 2, failing


def test_skin_photographed_from_too_far_is_skin_that_fails_framing() -> None:
    # framing reads skin colour: a beige wall behind the small photo passes as skin (about a quarter of cases).
    rates = report().far.rates()
    assert rates["images"] >= 20
    assert rates["dermatological"] >= 0.9 and rates["framing_failed"] >= 0.6, rates
