"""Which model bundles a worker serves, and loading them (verified) onto its device.

Where each model comes from, first match wins:

- classifier: ``DERMQ_MODEL_DIR`` (a bundle on disk), the object store's selection
  (``dermq models use``), ``DERMQ_MODEL_BUNDLE`` (NAME@VERSION in object storage),
  else the trained dermoscopy classifier shipped in ``pipeline/bundles/``;
- segmenter: ``DERMQ_SEGMENTER_DIR``, the selection, ``DERMQ_SEGMENTER_BUNDLE``, else
  the shipped lesion segmenter, or the classical CIELAB segmenter when
  ``DERMQ_SEGMENTER_METHOD=classical``.

The shipped bundles are verified (sha256) like any other: a damaged one stops the
worker with the reason rather than serving unknown weights.

``workers.runtime`` re-resolves the sources periodically and swaps models when
they change; a bundle that fails verification is refused and the previous one
keeps serving.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from core.settings import Settings
from pipeline.catalogue import load_catalogue
from pipeline.classify import Classifier
from pipeline.models.bundle import (
    SHIPPED_BUNDLES,
    BundleError,
    ModelBundle,
    load_bundle,
)
from pipeline.models.device import resolve_device
from pipeline.segmentation import ClassicalSegmenter, LearnedSegmenter, Segmenter
from workers import model_registry
from workers.model_registry import BundleRef, Task
from workers.storage import ObjectStore

log = logging.getLogger(__name__)

CLASSICAL_SEGMENTER = {"name": "dermq-classical-segmenter", "version": "1", "task": "segmentation",
                       "architecture": "CIELAB clustering in the skin region", "sha256": None, "trained": False}


@dataclass(frozen=True)
class ModelSource:
    """Where a task's model comes from: a directory, a published bundle, or the built-in default."""

    task: Task
    kind: Literal["directory", "published", "builtin"]
    location: str | None = None

    def __str__(self) -> str:
        if self.kind == "builtin":
            return f"builtin {self.task} default" + (f" ({Path(self.location).name})" if self.location else " (classical)")
        return f"{self.kind}:{self.location}"


def resolve_source(settings: Settings, store: ObjectStore, task: Task) -> ModelSource:
    directory, configured = (
        (settings.model_dir, settings.model_bundle) if task == "classification"
        else (settings.segmenter_dir, settings.segmenter_bundle)
    )
    if directory is not None:
        return ModelSource(task, "directory", str(directory))
    ref = model_registry.selection(store).get(task) or configured
    if ref:
        return ModelSource(task, "published", str(BundleRef.parse(ref)))
    if task == "segmentation" and settings.segmenter_method == "classical":
        return ModelSource(task, "builtin")
    return ModelSource(task, "builtin", str(SHIPPED_BUNDLES[task]))


def load_source_bundle(source: ModelSource, settings: Settings, store: ObjectStore) -> ModelBundle | None:
    """The verified bundle behind ``source`` (None for the classical segmenter); raises ``BundleError``."""
    if source.kind == "builtin" and source.location is None:
        return None
    if source.kind in ("directory", "builtin"):
        bundle = load_bundle(source.location or "")
    else:
        ref = BundleRef.parse(source.location or "")
        cache = settings.data_dir / "model-cache"
        try:
            bundle = load_bundle(model_registry.fetch(store, ref, cache))
        except BundleError:
            # A damaged cached copy is fetched once more; a damaged published bundle fails again.
            shutil.rmtree(cache / ref.name / ref.version, ignore_errors=True)
            bundle = load_bundle(model_registry.fetch(store, ref, cache))
    if bundle.manifest.task != source.task:
        raise BundleError(f"{source} is a {bundle.manifest.task} bundle, not a {source.task} one")
    return bundle


def describe_bundle(bundle: ModelBundle, device: torch.device) -> dict[str, Any]:
    m = bundle.manifest
    return {
        "name": m.name,
        "version": m.version,
        "task": m.task,
        "architecture": m.architecture,
        "sha256": m.weights_sha256,
        "trained": m.trained,
        "classes": len(m.classes),
        "device": str(device),
        # Auxiliary heads served with the model (the image gate), with their measured calibration.
        "heads": {name: {"classes": list(h.classes), "trained": True,
                         **{k: h.summary_metrics[k] for k in ("test_domain_ece", "test_modality_ece") if k in h.summary_metrics}}
                  for name, h in m.heads.items()},
    }


@dataclass
class LoadedModel:
    classifier: Classifier
    bundle: ModelBundle
    source: ModelSource | None = None

    def describe(self) -> dict[str, Any]:
        return describe_bundle(self.bundle, self.classifier.device)


@dataclass
class LoadedSegmenter:
    segmenter: Segmenter
    bundle: ModelBundle | None
    source: ModelSource
    device: torch.device

    def describe(self) -> dict[str, Any]:
        if self.bundle is None:
            return {**CLASSICAL_SEGMENTER, "device": "cpu"}
        return describe_bundle(self.bundle, self.device)


def load_classifier_from(source: ModelSource, settings: Settings, store: ObjectStore) -> LoadedModel:
    catalogue = load_catalogue()
    bundle = load_source_bundle(source, settings, store)
    if bundle is None:
        raise BundleError(f"{source} names no classifier bundle")
    unknown = [c for c in bundle.manifest.classes if c not in catalogue]
    if unknown:
        raise BundleError(f"{source}: classes not in the condition catalogue: {unknown[:5]}")
    device = resolve_device(settings.device)
    loaded = LoadedModel(Classifier.from_bundle(bundle, device=device), bundle, source)
    log.info("classifier loaded from %s", source, extra={"model": loaded.describe()})
    return loaded


def load_segmenter_from(source: ModelSource, settings: Settings, store: ObjectStore) -> LoadedSegmenter:
    bundle = load_source_bundle(source, settings, store)
    device = resolve_device(settings.device)
    if bundle is None:
        return LoadedSegmenter(ClassicalSegmenter(), None, source, torch.device("cpu"))
    loaded = LoadedSegmenter(LearnedSegmenter.from_bundle(bundle, device=device), bundle, source, device)
    log.info("segmenter loaded from %s", source, extra={"model": loaded.describe()})
    return loaded


def load_classifier(settings: Settings, store: ObjectStore) -> LoadedModel:
    """The classifier the settings and the store's selection name (benchmarks use this directly)."""
    return load_classifier_from(resolve_source(settings, store, "classification"), settings, store)
