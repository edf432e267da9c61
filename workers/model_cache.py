"""Model bundles, loaded once per worker process.

Where the classifier comes from, in order: `DERMQ_MODEL_DIR` (a bundle on
disk), `DERMQ_MODEL_BUNDLE` (NAME@VERSION under `models/` in object storage,
copied to a local cache first), else deterministic untrained reference weights
that every report and `/device-information` declare as untrained.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dermq.settings import Settings
from pipeline.catalogue import load_catalogue
from pipeline.classify import Classifier
from pipeline.models.bundle import ModelBundle, load_bundle, reference_bundle
from workers.storage import ObjectStore

log = logging.getLogger(__name__)

BUNDLE_FILES = ("manifest.json", "weights.safetensors")


def bundle_prefix(name: str, version: str) -> str:
    return f"models/{name}/{version}"


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def fetch_bundle(store: ObjectStore, ref: str, cache_dir: Path) -> Path:
    """Copy NAME@VERSION from object storage into the local cache (once) and return its directory."""
    name, sep, version = ref.partition("@")
    if not sep or not name or not version:
        raise ValueError(f"model bundle reference {ref!r} is not NAME@VERSION")
    target = cache_dir / name / version
    if not all((target / f).exists() for f in BUNDLE_FILES):
        target.mkdir(parents=True, exist_ok=True)
        # Weights first, manifest last: a half-copied bundle has no manifest and is fetched again.
        for filename in reversed(BUNDLE_FILES):
            (target / filename).write_bytes(store.get_bytes(f"{bundle_prefix(name, version)}/{filename}"))
    return target


@dataclass
class LoadedModel:
    classifier: Classifier
    bundle: ModelBundle

    def describe(self) -> dict[str, Any]:
        m = self.bundle.manifest
        return {
            "name": m.name,
            "version": m.version,
            "task": m.task,
            "architecture": m.architecture,
            "sha256": m.weights_sha256,
            "trained": m.trained,
            "classes": len(m.classes),
            "device": str(self.classifier.device),
        }


_lock = threading.Lock()
_loaded: LoadedModel | None = None


def load_classifier(settings: Settings, store: ObjectStore) -> LoadedModel:
    """The process-wide classifier; the first caller loads it, everyone else shares it."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _load(settings, store)
        return _loaded


def _load(settings: Settings, store: ObjectStore) -> LoadedModel:
    if settings.model_dir is not None:
        bundle = load_bundle(settings.model_dir)
    elif settings.model_bundle:
        bundle = load_bundle(fetch_bundle(store, settings.model_bundle, settings.data_dir / "model-cache"))
    else:
        bundle = reference_bundle(load_catalogue().codes)
    device = resolve_device(settings.device)
    classifier = Classifier.from_bundle(bundle, device=device)
    loaded = LoadedModel(classifier=classifier, bundle=bundle)
    log.info("classifier loaded", extra={"model": loaded.describe()})
    return loaded
