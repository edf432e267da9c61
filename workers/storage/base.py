"""The object-store interface shared by the local-directory and S3 backends.

The API writes input images, the workers write results, and the retention
sweep removes both; all of them go through :class:`ObjectStore` so the same
code runs on a laptop (a directory) and on a cluster (MinIO or any S3).

Keys are '/'-separated relative paths made of a small character set. The
restriction is deliberate: the local backend maps keys straight onto file
paths, so a key must never be able to climb out of the root ('..'), name an
absolute path, or carry characters that filesystems and S3 treat differently.
"""

from __future__ import annotations

import abc
import contextlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "StorageError",
    "StorageUnavailable",
    "validate_key",
    "validate_prefix",
]

_SEGMENT_RE = re.compile(r"[A-Za-z0-9._@=-]+")
# S3 caps keys at 1024 bytes; most filesystems cap a path component at 255.
MAX_KEY_LENGTH = 1024
MAX_SEGMENT_LENGTH = 255


class StorageError(Exception):
    """Base class for object-store failures."""


class ObjectNotFound(StorageError, KeyError):
    """The requested key does not exist (a ``KeyError`` so ``dict``-style callers work)."""

    def __str__(self) -> str:
        # KeyError.__str__ repr()s its argument; a plain message reads better in logs.
        return str(self.args[0]) if self.args else "object not found"


class StorageUnavailable(StorageError):
    """The backend cannot be reached or refused to work; the operation may succeed later."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime  # always timezone-aware UTC


def _check_segment(segment: str, what: str) -> None:
    if not segment:
        raise ValueError(f"invalid {what}: empty path segment")
    if segment in (".", ".."):
        raise ValueError(f"invalid {what}: {segment!r} segment")
    if len(segment) > MAX_SEGMENT_LENGTH:
        raise ValueError(f"invalid {what}: segment longer than {MAX_SEGMENT_LENGTH} characters")
    if not _SEGMENT_RE.fullmatch(segment):
        raise ValueError(f"invalid {what}: segment {segment!r} may only contain [A-Za-z0-9._@=-]")


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a safe object key, else raise ``ValueError``."""
    if not isinstance(key, str):
        raise ValueError(f"invalid key: expected str, got {type(key).__name__}")
    if not key:
        raise ValueError("invalid key: empty")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"invalid key: longer than {MAX_KEY_LENGTH} characters")
    if key.startswith("/"):
        raise ValueError("invalid key: must be relative (no leading '/')")
    for segment in key.split("/"):
        _check_segment(segment, "key")
    return key


def validate_prefix(prefix: str) -> str:
    """Validate a listing prefix: '' (everything), a directory-like 'a/b/', or a partial key 'a/b'.

    Prefixes match keys as plain string prefixes, as in S3, so the last part
    may be an incomplete segment; every complete segment obeys the key rules.
    """
    if not isinstance(prefix, str):
        raise ValueError(f"invalid prefix: expected str, got {type(prefix).__name__}")
    if not prefix:
        return prefix
    if len(prefix) > MAX_KEY_LENGTH:
        raise ValueError(f"invalid prefix: longer than {MAX_KEY_LENGTH} characters")
    if prefix.startswith("/"):
        raise ValueError("invalid prefix: must be relative (no leading '/')")
    body = prefix[:-1] if prefix.endswith("/") else prefix
    for segment in body.split("/"):
        _check_segment(segment, "prefix")
    return prefix


@contextlib.contextmanager
def _outage_as_unavailable(action: str, key: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise StorageUnavailable(f"cannot {action} {key!r}: {exc}") from exc


class ObjectStore(abc.ABC):
    """Flat key/value blob store with prefix listing.

    Public methods validate keys and then call the backend hooks
    (``_put_bytes``, ``_get_bytes``, ...), so no backend can forget the check.
    """

    # --- backend hooks ------------------------------------------------------
    @abc.abstractmethod
    def _put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    @abc.abstractmethod
    def _get_bytes(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def _exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def _delete(self, key: str) -> None: ...

    @abc.abstractmethod
    def _list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise :class:`StorageUnavailable` unless the store is reachable and usable."""

    def _delete_keys(self, keys: Iterable[str]) -> int:
        """Delete already-validated keys; backends with bulk deletion override this."""
        count = 0
        for key in keys:
            self._delete(key)
            count += 1
        return count

    # --- public API ---------------------------------------------------------
    # An OSError left over from a backend (a read-only or full disk, a permission taken away, a
    # vanished mount) is an outage of the store, not a fault of the data: callers retry it.
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store ``data`` under ``key``, replacing any previous object atomically."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        with _outage_as_unavailable("write", key):
            self._put_bytes(validate_key(key), bytes(data), content_type)

    def get_bytes(self, key: str) -> bytes:
        """Return the object's bytes; raise :class:`ObjectNotFound` if it does not exist."""
        with _outage_as_unavailable("read", key):
            return self._get_bytes(validate_key(key))

    def exists(self, key: str) -> bool:
        with _outage_as_unavailable("look up", key):
            return self._exists(validate_key(key))

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error (retries stay idempotent)."""
        with _outage_as_unavailable("delete", key):
            self._delete(validate_key(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield objects whose key starts with ``prefix``, in ascending key order."""
        return self._list(validate_prefix(prefix))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; return how many were deleted.

        An empty prefix is refused: wiping the whole store should never be
        the result of an unset variable.
        """
        if not validate_prefix(prefix):
            raise ValueError("delete_prefix needs a non-empty prefix")
        # Materialise the listing first: deleting while a backend iterates
        # its own listing (directory walk, paginated S3 listing) is fragile.
        keys = [info.key for info in self._list(prefix)]
        return self._delete_keys(keys)

    def delete_older_than(self, prefix: str, cutoff: datetime) -> int:
        """Retention sweep: delete objects under ``prefix`` last modified before ``cutoff``."""
        if cutoff.tzinfo is None or cutoff.utcoffset() is None:
            raise ValueError("cutoff must be a timezone-aware datetime")
        validate_prefix(prefix)
        keys = [info.key for info in self._list(prefix) if info.last_modified < cutoff]
        return self._delete_keys(keys)

    def put_json(self, key: str, obj: Any) -> None:
        """Raises ValueError for NaN or Infinity: they are not JSON, and no client could read them back."""
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        self.put_bytes(key, data, content_type="application/json")

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))
