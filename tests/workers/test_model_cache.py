"""Bundles load from a directory or from object storage; without one, untrained reference weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from dermq.settings import Settings
from pipeline.models.bundle import BundleError, reference_bundle, save_bundle
from workers import model_cache
from workers.storage import LocalObjectStore


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_cache, "_loaded", None)


def small_bundle(directory: Path) -> None:
    ref = reference_bundle(["EA89", "1F28", "2C30"])
    save_bundle(directory, ref.state_dict, name="demo", version="1", architecture="efficientnet_b0",
                classes=["EA89", "1F28", "2C30"], trained=True)


def test_default_is_the_untrained_reference(tmp_path: Path) -> None:
    loaded = model_cache.load_classifier(Settings(data_dir=tmp_path, device="cpu"), LocalObjectStore(tmp_path / "o"))
    assert loaded.describe()["trained"] is False and loaded.describe()["device"] == "cpu"
    assert model_cache.load_classifier(Settings(data_dir=tmp_path), LocalObjectStore(tmp_path)) is loaded


def test_bundle_from_object_storage(tmp_path: Path) -> None:
    small_bundle(tmp_path / "bundle")
    store = LocalObjectStore(tmp_path / "objects")
    for f in model_cache.BUNDLE_FILES:
        store.put_bytes(f"{model_cache.bundle_prefix('demo', '1')}/{f}", (tmp_path / "bundle" / f).read_bytes())
    loaded = model_cache.load_classifier(Settings(data_dir=tmp_path, model_bundle="demo@1", device="cpu"), store)
    info = loaded.describe()
    assert (info["name"], info["version"], info["trained"], info["classes"]) == ("demo", "1", True, 3)


def test_corrupt_bundle_is_refused(tmp_path: Path) -> None:
    small_bundle(tmp_path / "bundle")
    weights = tmp_path / "bundle" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        model_cache.load_classifier(Settings(data_dir=tmp_path, model_dir=tmp_path / "bundle"), LocalObjectStore(tmp_path))


def test_bad_reference_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NAME@VERSION"):
        model_cache.fetch_bundle(LocalObjectStore(tmp_path), "no-version", tmp_path / "cache")
