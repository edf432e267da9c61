"""Publishing, listing and selecting bundles in object storage; versions are immutable."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.models.bundle import BundleError
from workers import model_registry
from workers.model_registry import BundleRef
from workers.storage import LocalObjectStore

from support import demo_bundle as small_bundle


@pytest.fixture()
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def test_publish_list_select(store: LocalObjectStore, tmp_path: Path) -> None:
    manifest = model_registry.publish(store, small_bundle(tmp_path / "b"))
    assert (manifest.name, manifest.version) == ("demo", "1")
    [(ref, listed)] = model_registry.published(store)
    assert str(ref) == "demo@1" and listed is not None and listed.weights_sha256 == manifest.weights_sha256
    assert model_registry.publish(store, tmp_path / "b").version == "1"  # same bytes again: fine
    assert model_registry.select(store, ref) == "classification"
    assert model_registry.selection(store) == {"classification": "demo@1"}
    model_registry.clear_selection(store, "classification")
    assert model_registry.selection(store) == {}


def test_versions_are_immutable(store: LocalObjectStore, tmp_path: Path) -> None:
    model_registry.publish(store, small_bundle(tmp_path / "b"))
    with pytest.raises(BundleError, match="immutable"):
        model_registry.publish(store, small_bundle(tmp_path / "other", seed=1))


def test_corrupt_bundles_are_neither_published_nor_selected(store: LocalObjectStore, tmp_path: Path) -> None:
    bundle = small_bundle(tmp_path / "b")
    (bundle / "weights.safetensors").write_bytes(b"not weights")
    with pytest.raises(BundleError, match="refusing to publish"):
        model_registry.publish(store, bundle)
    assert model_registry.published(store) == []

    model_registry.publish(store, small_bundle(tmp_path / "good"))
    store.put_bytes("models/demo/1/weights.safetensors", b"tampered after publishing")
    with pytest.raises(BundleError, match="corrupt"):
        model_registry.select(store, BundleRef.parse("demo@1"))
    with pytest.raises(BundleError, match="no bundle demo@9"):
        model_registry.select(store, BundleRef.parse("demo@9"))
    assert model_registry.selection(store) == {}


@pytest.mark.parametrize("bad", ["demo", "@1", "demo@", "../x@1", "a b@1"])
def test_references_are_name_at_version(bad: str) -> None:
    with pytest.raises(ValueError, match="NAME@VERSION"):
        BundleRef.parse(bad)
