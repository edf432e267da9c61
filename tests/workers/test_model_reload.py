"""Workers switch to a newly selected bundle without restart and refuse a corrupt one, serving on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.settings import Settings
from pipeline.diagnosis import ImageInput
from workers import model_registry
from workers.model_registry import BundleRef
from workers.runtime import WorkerRuntime

from support import demo_bundle


def served(rt: WorkerRuntime) -> list[str]:
    return [f"{m['name']}@{m['version']}" for m in rt.models.describe()]


def test_reload_picks_up_the_selection_and_refuses_corrupt_bundles(tmp_path: Path) -> None:
    rt = WorkerRuntime(Settings(data_dir=tmp_path, device="cpu", batch_max_wait_ms=0))
    store = rt.store
    first = rt.models
    assert first.classifier.bundle.manifest.trained is True  # the shipped default
    assert first.classifier.bundle.manifest.name == "dermq-dermoscopy-classifier"
    assert rt.reload_models() is False  # nothing changed

    model_registry.publish(store, demo_bundle(tmp_path / "v1"))
    model_registry.select(store, BundleRef.parse("demo@1"))
    assert rt.reload_models() is True
    assert served(rt)[0] == "demo@1" and rt.models.segmenter is first.segmenter  # unchanged model reused
    rgb = np.full((64, 64, 3), 150, np.uint8)
    report = rt.diagnosis.run("r1", [ImageInput(rgb)])
    assert {m["name"] for m in report["device"]["models"]} >= {"demo"}
    # A job that took the previous generation before the swap can still finish on it.
    assert first.batcher.map([first.classifier.classifier.preprocess(rgb)])[0].probs.shape[0] > 3

    model_registry.publish(store, demo_bundle(tmp_path / "v2", version="2", seed=1))
    store.put_bytes("models/demo/2/weights.safetensors", b"corrupted in storage")
    store.put_json(model_registry.SELECTION_KEY, {"classification": "demo@2"})  # selected behind verify's back
    assert rt.reload_models() is False
    assert served(rt)[0] == "demo@1" and "demo@2" in (rt.model_error or "")
    assert rt.describe()["modelError"] == rt.model_error

    model_registry.publish(store, demo_bundle(tmp_path / "v3", version="3", seed=2))
    model_registry.select(store, BundleRef.parse("demo@3"))
    assert rt.reload_models() is True and served(rt)[0] == "demo@3" and rt.model_error is None
