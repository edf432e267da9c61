"""Crash-safe file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TMP_MARKER = ".~tmp~"  # never valid in an object key, so stores can skip in-flight files


def atomic_write(path: Path, data: bytes, *, mode: int = 0o666) -> None:
    """Write to a temporary sibling, fsync, then rename over `path` (mode is filtered by the umask)."""
    tmp = path.with_name(f"{path.name}{TMP_MARKER}{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
