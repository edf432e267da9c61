"""Secrets generated on first use and kept in a file only the owner can read."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from core.fileio import TMP_MARKER, atomic_write


def read_or_create_secret(path: Path) -> str:
    """The secret in `path`; when there is none, a random one written there once (mode 0600).

    Several processes may start at once (uvicorn --workers, `dermq up`): each writes a complete
    candidate beside the file and links it into place, which only the first can do, so all of
    them read back the same secret.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f"{path.name}{TMP_MARKER}{secrets.token_hex(8)}")
    atomic_write(candidate, secrets.token_urlsafe(48).encode(), mode=0o600)
    try:
        os.link(candidate, path)
    except FileExistsError:
        pass
    finally:
        candidate.unlink()
    return _read(path)


def _read(path: Path) -> str:
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ValueError(f"{path} is empty: delete it to have a new secret generated")
    return value
