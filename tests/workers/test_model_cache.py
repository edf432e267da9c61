"""Where each model comes from, and that a bundle is verified before it serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from pipeline.models.bundle import BundleError
from workers import model_cache, model_registry
from workers.storage import LocalObjectStore

from support import demo_bundle as small_bundle

def test_default_is_the_shipped_trained_classifier(tmp_path: Path) -> None:
    loaded = model_cache.load_classifier(Settings(data_dir=tmp_path, device="cpu"), LocalObjectStore(tmp_path / "o"))
    info = loaded.describe()
    assert info["trained"] is True and info["device"] == "cpu"
    assert (info["name"], info["architecture"]) == ("dermq-dermoscopy-classifier", "efficientnet_lite0")
    assert str(loaded.source) == "builtin classification default (dermoscopy-classifier)"


def test_default_segmenter_is_the_shipped_unet_unless_classical_is_asked_for(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "o")
    learned = model_cache.load_segmenter_from(
        model_cache.resolve_source(Settings(data_dir=tmp_path), store, "segmentation"), Settings(data_dir=tmp_path, device="cpu"), store)
    assert learned.describe()["trained"] is True and learned.describe()["architecture"] == "unet_lite0"
    classical = model_cache.resolve_source(Settings(data_dir=tmp_path, segmenter_method="classical"), store, "segmentation")
    assert str(classical) == "builtin segmentation default (classical)"


def test_damaged_shipped_bundle_is_refused_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from pipeline.models import bundle as bundle_module

    copy = tmp_path / "dermoscopy-classifier"
    shutil.copytree(bundle_module.SHIPPED_BUNDLES["classification"], copy)
    weights = copy / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setitem(model_cache.SHIPPED_BUNDLES, "classification", copy)
    with pytest.raises(BundleError, match="sha256"):
        model_cache.load_classifier(Settings(data_dir=tmp_path, device="cpu"), LocalObjectStore(tmp_path / "o"))


def test_sources_in_order_of_precedence(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    model_registry.publish(store, small_bundle(tmp_path / "b1"))
    model_registry.publish(store, small_bundle(tmp_path / "b2", version="2", seed=1))
    settings = Settings(data_dir=tmp_path, model_bundle="demo@1")
    assert str(model_cache.resolve_source(settings, store, "classification")) == "published:demo@1"
    model_registry.select(store, model_registry.BundleRef.parse("demo@2"))
    assert str(model_cache.resolve_source(settings, store, "classification")) == "published:demo@2"
    on_disk = Settings(data_dir=tmp_path, model_dir=tmp_path / "b1")
    assert model_cache.resolve_source(on_disk, store, "classification").kind == "directory"
    assert str(model_cache.resolve_source(settings, store, "segmentation")) == "builtin segmentation default (dermoscopy-segmenter)"


def test_bundle_from_object_storage(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    model_registry.publish(store, small_bundle(tmp_path / "bundle"))
    loaded = model_cache.load_classifier(Settings(data_dir=tmp_path, model_bundle="demo@1", device="cpu"), store)
    info = loaded.describe()
    assert (info["name"], info["version"], info["trained"], info["classes"]) == ("demo", "1", True, 3)


def test_damaged_cache_copy_is_fetched_again(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    model_registry.publish(store, small_bundle(tmp_path / "bundle"))
    settings = Settings(data_dir=tmp_path, model_bundle="demo@1", device="cpu")
    model_cache.load_classifier(settings, store)
    cached = tmp_path / "model-cache" / "demo" / "1" / "weights.safetensors"
    cached.write_bytes(cached.read_bytes()[:-10])
    assert model_cache.load_classifier(settings, store).describe()["version"] == "1"


def test_corrupt_bundle_is_refused(tmp_path: Path) -> None:
    small_bundle(tmp_path / "bundle")
    weights = tmp_path / "bundle" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        model_cache.load_classifier(Settings(data_dir=tmp_path, model_dir=tmp_path / "bundle"), LocalObjectStore(tmp_path))


def test_classes_outside_the_catalogue_are_refused(tmp_path: Path) -> None:
    small_bundle(tmp_path / "bundle", classes=["EA89", "XX99"])
    with pytest.raises(BundleError, match="XX99"):
        model_cache.load_classifier(Settings(data_dir=tmp_path, model_dir=tmp_path / "bundle"), LocalObjectStore(tmp_path))


def test_a_classifier_is_not_accepted_as_segmenter(tmp_path: Path) -> None:
    small_bundle(tmp_path / "bundle")
    settings = Settings(data_dir=tmp_path, segmenter_dir=tmp_path / "bundle")
    source = model_cache.resolve_source(settings, LocalObjectStore(tmp_path), "segmentation")
    with pytest.raises(BundleError, match="not a segmentation"):
        model_cache.load_segmenter_from(source, settings, LocalObjectStore(tmp_path))
