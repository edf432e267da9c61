"""Model bundles in object storage: publish, list, select, fetch.

Layout under the store: ``models/<name>/<version>/{manifest.json,weights.safetensors}``
and ``models/selected.json`` = ``{"classification": "NAME@VERSION", "segmentation": ...}``.

Versions are immutable: publishing a different bundle under an existing
NAME@VERSION is refused, so a worker that cached a version never serves stale
weights. The selection file is the one mutable record; workers poll it and
switch models without a restart (see ``workers.runtime``).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.models.bundle import (
    MANIFEST_FILE,
    WEIGHTS_FILE,
    BundleError,
    BundleManifest,
    verify_bundle,
)
from workers.storage import ObjectNotFound, ObjectStore

Task = Literal["classification", "segmentation"]
TASKS: tuple[Task, ...] = ("classification", "segmentation")
PREFIX = "models/"
SELECTION_KEY = "models/selected.json"
# Weights before the manifest, on upload and on download: a half-copied bundle has no manifest.
BUNDLE_FILES = (WEIGHTS_FILE, MANIFEST_FILE)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=-]*")


@dataclass(frozen=True)
class BundleRef:
    name: str
    version: str

    @classmethod
    def parse(cls, ref: str) -> BundleRef:
        name, sep, version = ref.partition("@")
        if not sep or not _NAME_RE.fullmatch(name) or not _NAME_RE.fullmatch(version):
            raise ValueError(f"model bundle reference {ref!r} is not NAME@VERSION (letters, digits, . _ = -)")
        return cls(name, version)

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.name}/{self.version}"

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def read_manifest(store: ObjectStore, ref: BundleRef) -> BundleManifest:
    try:
        raw = store.get_bytes(f"{ref.prefix}/{MANIFEST_FILE}")
    except ObjectNotFound:
        raise BundleError(f"no bundle {ref} in object storage (publish it first: dermq models publish DIR)") from None
    return BundleManifest.model_validate_json(raw)


def publish(store: ObjectStore, bundle_dir: Path) -> BundleManifest:
    """Upload a verified bundle under its manifest's name and version."""
    problems = verify_bundle(bundle_dir)
    if problems:
        raise BundleError(f"refusing to publish {bundle_dir}: " + "; ".join(problems))
    manifest = BundleManifest.model_validate_json((bundle_dir / MANIFEST_FILE).read_bytes())
    ref = BundleRef.parse(f"{manifest.name}@{manifest.version}")
    if store.exists(f"{ref.prefix}/{MANIFEST_FILE}"):
        existing = read_manifest(store, ref)
        if existing.weights_sha256 != manifest.weights_sha256:
            raise BundleError(f"{ref} is already published with other weights; versions are immutable, "
                              "publish under a new version")
    for filename in BUNDLE_FILES:
        store.put_bytes(f"{ref.prefix}/{filename}", (bundle_dir / filename).read_bytes())
    return manifest


def published(store: ObjectStore) -> list[tuple[BundleRef, BundleManifest | None]]:
    """Every bundle in the store with its manifest (None when the manifest is unreadable)."""
    found: list[tuple[BundleRef, BundleManifest | None]] = []
    for info in store.list(PREFIX):
        parts = info.key[len(PREFIX):].split("/")
        if len(parts) != 3 or parts[2] != MANIFEST_FILE:
            continue
        ref = BundleRef(parts[0], parts[1])
        try:
            found.append((ref, read_manifest(store, ref)))
        except (BundleError, ValueError):
            found.append((ref, None))
    return found


def selection(store: ObjectStore) -> dict[str, str]:
    try:
        data = store.get_json(SELECTION_KEY)
    except ObjectNotFound:
        return {}
    return {task: str(data[task]) for task in TASKS if isinstance(data, dict) and data.get(task)}


def select(store: ObjectStore, ref: BundleRef) -> Task:
    """Make ``ref`` the bundle workers serve for its task; returns the task."""
    with tempfile.TemporaryDirectory(prefix="dermq-verify-") as tmp:
        fetched = fetch(store, ref, Path(tmp))
        problems = verify_bundle(fetched)
        if problems:
            raise BundleError(f"{ref} is corrupt or inconsistent: " + "; ".join(problems))
        task: Task = BundleManifest.model_validate_json((fetched / MANIFEST_FILE).read_bytes()).task
    current = selection(store)
    store.put_json(SELECTION_KEY, {**current, task: str(ref)})
    return task


def clear_selection(store: ObjectStore, task: Task) -> None:
    current = selection(store)
    current.pop(task, None)
    store.put_json(SELECTION_KEY, current)


def fetch(store: ObjectStore, ref: BundleRef, cache_dir: Path) -> Path:
    """Copy a published bundle into ``cache_dir/<name>/<version>`` (once) and return that directory.

    The copy is not trusted: loading verifies the sha256 against the manifest.
    """
    target = cache_dir / ref.name / ref.version
    if all((target / f).exists() for f in BUNDLE_FILES) and not verify_bundle(target):
        return target
    if not store.exists(f"{ref.prefix}/{MANIFEST_FILE}"):
        raise BundleError(f"no bundle {ref} in object storage (publish it first: dermq models publish DIR)")
    target.mkdir(parents=True, exist_ok=True)
    (target / MANIFEST_FILE).unlink(missing_ok=True)
    for filename in BUNDLE_FILES:
        (target / filename).write_bytes(store.get_bytes(f"{ref.prefix}/{filename}"))
    return target
