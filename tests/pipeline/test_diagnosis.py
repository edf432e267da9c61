"""DiagnosisPipeline: report warnings (untrained weights, images outside the model's modality), and the
quality work done while the model runs."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest
import torch

from pipeline.catalogue import load_catalogue
from pipeline.classify import Classifier
from pipeline.diagnosis import MODALITY_WARNING, UNTRAINED_WARNING, DiagnosisPipeline, ImageInput
from pipeline.models.bundle import SHIPPED_BUNDLES, ModelBundle, load_bundle, reference_bundle
from pipeline.quality import QualityConfig, QualityViews

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


def test_quality_views_are_prepared_while_the_model_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """With `submit`, the model's futures resolve only once every image's views are prepared: a pipeline
    that waited for the model first would time out here. The report equals the synchronous one."""
    bundle = load_bundle(SHIPPED_BUNDLES["classification"])
    classifier = Classifier.from_bundle(bundle)
    images = [ImageInput(_rgb(p)) for p in SAMPLE_IMAGES[:3]]
    prepared = threading.Semaphore(0)
    original = QualityViews.prepare
    monkeypatch.setattr(QualityViews, "prepare", lambda self: (original(self), prepared.release())[0])

    def submit(xs) -> list[Future]:  # noqa: ANN001
        futures = [Future() for _ in xs]

        def model_call() -> None:
            for _ in xs:
                assert prepared.acquire(timeout=30), "the pipeline waited for the model before preparing views"
            for future, out in zip(futures, classifier.predict(torch.stack(list(xs)))):
                future.set_result(out)

        threading.Thread(target=model_call, daemon=True).start()
        return futures

    def never(xs):  # noqa: ANN001
        raise AssertionError("with submit, predict is not called")

    overlapped = DiagnosisPipeline(load_catalogue(), bundle.manifest, preprocess=classifier.preprocess,
                                   predict=never, submit=submit, quality=QualityConfig())
    report = overlapped.run("r", images)
    # The pipeline submits each image as it is decoded: the same one-image batches, synchronously.
    one_by_one = DiagnosisPipeline(load_catalogue(), bundle.manifest, preprocess=classifier.preprocess,
                                   predict=lambda xs: [classifier.predict(x[None])[0] for x in xs], quality=QualityConfig())
    expected = one_by_one.run("r", images)
    for key in ("analysisDuration", "issued", "effectiveDateTime", "meta"):
        report.pop(key, None), expected.pop(key, None)
    assert report == expected


def test_the_model_input_is_squashed_from_the_analysis_copy() -> None:
    """A 1024-px photo reaches `preprocess` already shrunk to the analysis side (384: the heat maps' side,
    twice the 192-px input), so the squash to the input costs a fraction of one from the full image."""
    bundle = load_bundle(SHIPPED_BUNDLES["classification"])
    classifier = Classifier.from_bundle(bundle)
    seen: list[tuple[int, ...]] = []
    pipeline = DiagnosisPipeline(
        load_catalogue(), bundle.manifest, preprocess=lambda rgb: (seen.append(rgb.shape), classifier.preprocess(rgb))[1],
        predict=lambda xs: classifier.predict(torch.stack(list(xs))), quality=QualityConfig(),
    )
    rgb = _rgb(SAMPLE_IMAGES[0])
    report = pipeline.run("r", [ImageInput(rgb)])
    assert max(rgb.shape[:2]) > 384 and max(seen[0][:2]) == pipeline.analysis_side == 384
    heatmap = report["imagingAnalysis"][0]["conclusion"][0]["explainability"]["heatMap"]
    assert max(heatmap["width"], heatmap["height"]) == 384


def test_images_are_decoded_one_at_a_time_and_sent_to_the_model_as_they_come() -> None:
    """Loaders are called in turn, each image is sent to the model before the next one is decoded, and
    once its quality views are prepared none of them holds the full image any longer."""
    bundle = load_bundle(SHIPPED_BUNDLES["classification"])
    classifier = Classifier.from_bundle(bundle)
    events: list[str] = []

    def loader(i: int):  # noqa: ANN202
        def load() -> ImageInput:
            events.append(f"decode {i}")
            return ImageInput(_rgb(SAMPLE_IMAGES[i]))
        return load

    def submit(xs) -> list[Future]:  # noqa: ANN001
        events.append("submit")
        futures = []
        for out in classifier.predict(torch.stack(list(xs))):
            futures.append(Future())
            futures[-1].set_result(out)
        return futures

    views: list[QualityViews] = []
    original = QualityViews.prepare
    pipeline = DiagnosisPipeline(load_catalogue(), bundle.manifest, preprocess=classifier.preprocess,
                                 predict=lambda xs: pytest.fail("with submit, predict is not called"), submit=submit,
                                 quality=QualityConfig())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(QualityViews, "prepare", lambda self: (views.append(self), original(self))[1])
        report = pipeline.run("r", [loader(i) for i in range(3)])
    assert events == ["decode 0", "submit", "decode 1", "submit", "decode 2", "submit"]
    assert len(report["imagingAnalysis"]) == 3 and all(v._original is None for v in views)
