"""DiagnosisPipeline's report warnings: untrained weights and images outside the model's modality."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from pipeline.catalogue import load_catalogue
from pipeline.classify import Classifier
from pipeline.diagnosis import MODALITY_WARNING, UNTRAINED_WARNING, DiagnosisPipeline, ImageInput
from pipeline.models.bundle import SHIPPED_BUNDLES, ModelBundle, load_bundle, reference_bundle
from pipeline.quality import QualityConfig

from support import CLINICAL_PHOTO, SAMPLE_IMAGES


def _pipeline(bundle: ModelBundle) -> DiagnosisPipeline:
    classifier = Classifier.from_bundle(bundle)
    return DiagnosisPipeline(
        load_catalogue(), bundle.manifest, preprocess=classifier.preprocess,
        predict=lambda xs: classifier.predict(torch.stack(list(xs))),
        quality=QualityConfig(),
    )


def _rgb(path) -> np.ndarray:  # noqa: ANN001
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def shipped() -> DiagnosisPipeline:
    return _pipeline(load_bundle(SHIPPED_BUNDLES["classification"]))


def test_untrained_reference_fixture_is_declared_in_every_report() -> None:
    report = _pipeline(reference_bundle(load_catalogue().codes)).run("r", [ImageInput(_rgb(SAMPLE_IMAGES[0]))])
    assert UNTRAINED_WARNING in report["warnings"]


def test_shipped_model_on_a_dermoscopic_image_carries_no_warning(shipped: DiagnosisPipeline) -> None:
    report = shipped.run("r", [ImageInput(_rgb(SAMPLE_IMAGES[0]))])
    assert report["imagingAnalysis"][0]["mediaValidity"]["modality"]["value"] == "Dermoscopic"
    assert "warnings" not in report


@pytest.mark.skipif(not CLINICAL_PHOTO.is_file(), reason=f"needs {CLINICAL_PHOTO}")
def test_clinical_photograph_is_flagged_as_outside_the_dermoscopic_training(shipped: DiagnosisPipeline) -> None:
    report: dict[str, Any] = shipped.run("r", [ImageInput(_rgb(SAMPLE_IMAGES[0])), ImageInput(_rgb(CLINICAL_PHOTO))])
    modalities = [a["mediaValidity"]["modality"]["value"] for a in report["imagingAnalysis"]]
    assert modalities == ["Dermoscopic", "Clinical"]
    assert report["warnings"] == [MODALITY_WARNING.format(count=1, trained="dermoscopic")]
