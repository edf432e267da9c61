"""Object store on a local directory: the embedded single-machine default.

Each key maps to ``root/<key>``. Writes go to a temporary file in the target
directory, are fsynced and then renamed over the destination, so a reader
(the API polling a result while a worker writes it) sees the old object or
the new one, never half of one, and a crash mid-write leaves no torn object.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from core.fileio import atomic_write
from workers.storage.base import (
    _SEGMENT_RE,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StorageUnavailable,
)

__all__ = ["LocalObjectStore"]

# '~' is not allowed in keys, so temporary files can never be mistaken for
# objects by ``list`` or collide with a real key.


class LocalObjectStore(ObjectStore):
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalObjectStore(root={str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    # --- hooks ----------------------------------------------------------------
    def _put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        # content_type is not persisted: the local store serves only this
        # service, which knows what it stored under each key.
        path = self._path(key)
        # A concurrent delete may prune the freshly created parent directory
        # before the temp file exists in it; recreating it once more is enough.
        for attempt in range(3):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._write_atomic(path, data)
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise
            except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
                # A file where a directory is needed or the reverse: S3 allows
                # both 'a' and 'a/b', a filesystem cannot.
                raise ValueError(f"key {key!r} conflicts with an existing object or prefix") from exc

    def _write_atomic(self, path: Path, data: bytes) -> None:
        atomic_write(path, data)
        self._fsync_dir(path.parent)

    @staticmethod
    def _fsync_dir(directory: Path) -> None:
        # Makes the rename itself durable; not possible on every platform.
        try:
            dir_fd = os.open(directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)

    def _get_bytes(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as fh:
                return fh.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            if not self.root.is_dir():  # the whole store is gone (an unmounted volume): an outage, not a missing key
                raise StorageUnavailable(f"storage root {self.root} is not available") from None
            raise ObjectNotFound(key) from None

    def _exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError:
            return  # 'a' names a prefix here, not an object
        self._prune_empty_dirs(path.parent)

    def _prune_empty_dirs(self, directory: Path) -> None:
        """Remove now-empty parents up to the root so retention does not leave a forest of dirs."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    return
                raise
            directory = directory.parent

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        # Start at the deepest directory the prefix fully names, then filter
        # by string prefix so 'jobs/ab' matches 'jobs/abc/x' as in S3.
        complete = prefix.split("/")[:-1]
        start = self.root.joinpath(*complete)
        base = "/".join(complete) + "/" if complete else ""
        yield from (info for info in self._walk(start, base) if info.key.startswith(prefix))

    def _walk(self, directory: Path, base: str) -> Iterator[ObjectInfo]:
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        # Sorting directories as 'name/' yields keys in global byte order,
        # the same order S3 returns, because every key below a directory
        # starts with 'name/'.
        named = []
        for entry in entries:
            if not _SEGMENT_RE.fullmatch(entry.name) or entry.name in (".", ".."):
                continue  # temp files and anything not created through this store
            if entry.is_dir(follow_symlinks=False):
                named.append((entry.name + "/", entry))
            elif entry.is_file(follow_symlinks=False):
                named.append((entry.name, entry))
        named.sort(key=lambda item: item[0])
        for sort_name, entry in named:
            if sort_name.endswith("/"):
                yield from self._walk(Path(entry.path), base + sort_name)
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # deleted while listing
            yield ObjectInfo(
                key=base + entry.name,
                size=st.st_size,
                last_modified=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
            )

    def ping(self) -> None:
        if not self.root.is_dir():
            raise StorageUnavailable(f"storage root {self.root} is not a directory")
        if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise StorageUnavailable(f"storage root {self.root} is not readable and writable")
