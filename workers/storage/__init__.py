"""Object storage for inputs, results and model bundles: a local directory or S3/MinIO."""

from __future__ import annotations

from core.settings import Settings, StorageBackend
from workers.storage.base import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    StorageUnavailable,
    validate_key,
    validate_prefix,
)
from workers.storage.local import LocalObjectStore
from workers.storage.s3 import S3ObjectStore

__all__ = [
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "S3ObjectStore",
    "StorageError",
    "StorageUnavailable",
    "create_store",
    "validate_key",
    "validate_prefix",
]


def create_store(settings: Settings) -> ObjectStore:
    """Build the store selected by ``settings.storage_backend`` (``DERMQ_STORAGE_BACKEND``)."""
    backend = StorageBackend(settings.storage_backend)
    if backend is StorageBackend.local:
        return LocalObjectStore(settings.effective_storage_dir)
    if backend is StorageBackend.s3:
        return S3ObjectStore(
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            bucket=settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
    raise ValueError(f"unknown storage backend {settings.storage_backend!r}")
