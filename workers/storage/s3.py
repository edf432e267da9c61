"""Object store on MinIO or any S3-compatible service, through the ``minio`` client.

Errors are translated at this boundary: a missing key becomes
:class:`ObjectNotFound`, anything that means "the service is not there right
now" (refused connection, timeout, 5xx, a proxy answering garbage) becomes
:class:`StorageUnavailable`, so callers can tell "retry later" from "wrong
request" without knowing about urllib3 or S3 error codes.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from workers.storage.base import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    StorageUnavailable,
)

__all__ = ["S3ObjectStore"]

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "ResourceNotFound", "NoSuchObject"})
_BUCKET_CREATED_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
# DeleteObjects accepts at most 1000 keys per request.
_DELETE_BATCH = 1000
# Stand-in for a listing entry without a timestamp (not seen from real S3):
# the oldest possible time, so a retention sweep still removes it.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """Accept 'host:port' (what minio wants) as well as 'http(s)://host:port'."""
    if "://" not in endpoint:
        return endpoint.rstrip("/"), secure
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
        raise ValueError(f"S3 endpoint must be host:port or http(s)://host:port, got {endpoint!r}")
    return parts.netloc, parts.scheme == "https"


class S3ObjectStore(ObjectStore):
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
        *,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 30.0,
        retries: int = 2,
    ) -> None:
        host, secure = _split_endpoint(endpoint, secure)
        self.endpoint = host
        self.bucket = bucket
        self.secure = secure
        # minio's default pool retries five times with five-minute timeouts,
        # which turns a dead endpoint into a minutes-long hang in /readyz and
        # in workers; a short connect timeout and few retries fail fast and
        # leave retrying to the job system, which knows what is at stake.
        http_client = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
            retries=urllib3.Retry(
                total=retries,
                backoff_factor=0.2,
                status_forcelist=[500, 502, 503, 504],
                raise_on_status=False,
            ),
            maxsize=16,
        )
        self._client = Minio(
            host,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http_client,
        )
        # The bucket is created lazily, on first use: constructing the store
        # at process start must not fail just because MinIO is still booting.
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    def __repr__(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"S3ObjectStore(endpoint='{scheme}://{self.endpoint}', bucket={self.bucket!r})"

    # --- error translation and bucket bootstrap ------------------------------
    @contextmanager
    def _translate(self, action: str, key: str | None = None) -> Iterator[None]:
        where = f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"
        try:
            yield
        except S3Error as exc:
            if key is not None and exc.code in _NOT_FOUND_CODES:
                raise ObjectNotFound(key) from None
            if exc.code == "NoSuchBucket":
                # Someone removed the bucket; recreate it on the next call.
                self._bucket_ready = False
                raise StorageUnavailable(f"{action} {where}: bucket does not exist") from exc
            raise StorageError(f"{action} {where}: {exc.code}: {exc.message}") from exc
        except (ServerError, InvalidResponseError) as exc:
            raise StorageUnavailable(f"{action} {where}: {exc}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise StorageUnavailable(
                f"{action} {where}: cannot reach S3 endpoint {self.endpoint}: {exc}"
            ) from exc
        except MinioException as exc:
            raise StorageError(f"{action} {where}: {exc}") from exc

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if self._bucket_ready:
                return
            try:
                with self._translate("create bucket"):
                    if not self._client.bucket_exists(self.bucket):
                        try:
                            self._client.make_bucket(self.bucket)
                        except S3Error as exc:
                            # Another API or worker process won the race.
                            if exc.code not in _BUCKET_CREATED_CODES:
                                raise
            except StorageError as exc:
                raise type(exc)(
                    f"cannot use bucket {self.bucket!r} at {self.endpoint} "
                    f"(check DERMQ_S3_ENDPOINT, DERMQ_S3_ACCESS_KEY, DERMQ_S3_SECRET_KEY, DERMQ_S3_BUCKET): {exc}"
                ) from exc
            self._bucket_ready = True

    # --- hooks ------------------------------------------------------------------
    def _put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._ensure_bucket()
        with self._translate("put", key):
            # A single PUT replaces the object atomically on S3: readers see
            # the old version or the new one.
            self._client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type=content_type)

    def _get_bytes(self, key: str) -> bytes:
        self._ensure_bucket()
        with self._translate("get", key):
            response = self._client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def _exists(self, key: str) -> bool:
        self._ensure_bucket()
        try:
            with self._translate("stat", key):
                self._client.stat_object(self.bucket, key)
        except ObjectNotFound:
            return False
        return True

    def _delete(self, key: str) -> None:
        self._ensure_bucket()
        with self._translate("delete", key):
            self._client.remove_object(self.bucket, key)  # S3 DELETE of a missing key succeeds

    def _delete_keys(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        if not keys:
            return 0
        self._ensure_bucket()
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [DeleteObject(k) for k in keys[start : start + _DELETE_BATCH]]
            with self._translate("delete objects"):
                # remove_objects is lazy: the request is sent while iterating.
                errors = list(self._client.remove_objects(self.bucket, batch))
            if errors:
                first = errors[0]
                raise StorageError(
                    f"delete objects s3://{self.bucket}: {len(errors)} failed, "
                    f"first {first.name!r}: {first.code}: {first.message}"
                )
        return len(keys)

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        self._ensure_bucket()
        objects = self._client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
        while True:
            # The listing is paginated and fetched lazily, so errors surface
            # while iterating, not when list_objects is called.
            with self._translate("list"):
                obj = next(objects, None)
            if obj is None:
                return
            if obj.is_dir or obj.object_name is None:
                continue
            modified = obj.last_modified
            if modified is not None and modified.tzinfo is None:
                modified = modified.replace(tzinfo=timezone.utc)
            yield ObjectInfo(
                key=obj.object_name,
                size=obj.size or 0,
                last_modified=modified.astimezone(timezone.utc) if modified else _EPOCH,
            )

    def ping(self) -> None:
        # Checking the bucket (and creating it on first contact) proves both
        # reachability and credentials, which is what /readyz wants to know.
        self._bucket_ready = False
        try:
            self._ensure_bucket()
        except StorageUnavailable:
            raise
        except StorageError as exc:
            raise StorageUnavailable(str(exc)) from exc
