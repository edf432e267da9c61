"""Client accounts: a JSON file of argon2 password hashes, re-read when it changes on disk.

The per-request check (`exists`, on every authenticated call) looks at the file
at most once per `recheck_s`, so a removed account's tokens stop working within
that time; logging in and changing accounts always read the file as it is now.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.fileio import atomic_write

# Account names become object-store path segments, so they share the key alphabet.
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

_hasher = PasswordHasher()


class AccountStore:
    def __init__(self, path: Path, *, recheck_s: float = 1.0):
        self.path = Path(path)
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._mtime: int | None = None
        self._checked_at = float("-inf")  # time.monotonic() of the last look at the file
        self._accounts: dict[str, dict[str, str]] = {}

    def _load(self, max_age_s: float = 0.0) -> dict[str, dict[str, str]]:
        """The accounts, from memory if the file was looked at less than `max_age_s` ago."""
        if time.monotonic() - self._checked_at < max_age_s:
            return self._accounts
        with self._lock:
            now = time.monotonic()
            try:
                mtime = self.path.stat().st_mtime_ns
            except FileNotFoundError:
                self._mtime, self._accounts, self._checked_at = None, {}, now
                return self._accounts
            if mtime != self._mtime:
                data = json.loads(self.path.read_text() or "{}")
                self._accounts = data.get("accounts", {})
                self._mtime = mtime
            self._checked_at = now
            return self._accounts

    def exists(self, username: str) -> bool:
        return username in self._load(self.recheck_s)

    def names(self) -> list[str]:
        return sorted(self._load())

    def verify(self, username: str, password: str) -> bool:
        account = self._load().get(username)
        if account is None:
            # Spend the same time as a real check so response timing does not reveal accounts.
            _hasher.hash(password)
            return False
        try:
            return _hasher.verify(account["password_hash"], password)
        except (VerificationError, InvalidHashError):
            return False

    def add(self, username: str, password: str, *, replace: bool = False) -> None:
        if not USERNAME_PATTERN.match(username):
            raise ValueError("account names are 1-64 characters of letters, digits and . _ @ -, starting alphanumeric")
        if len(password) < 8:
            raise ValueError("passwords need at least 8 characters")
        accounts = dict(self._load())
        if username in accounts and not replace:
            raise ValueError(f"account {username!r} already exists")
        accounts[username] = {
            "password_hash": _hasher.hash(password),
            "created": datetime.now(timezone.utc).isoformat(),
        }
        self._write(accounts)

    def remove(self, username: str) -> bool:
        accounts = dict(self._load())
        if accounts.pop(username, None) is None:
            return False
        self._write(accounts)
        return True

    def _write(self, accounts: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps({"accounts": accounts}, indent=2).encode(), mode=0o600)
        self._checked_at = float("-inf")  # our own change is seen at once


def generate_password() -> str:
    return secrets.token_urlsafe(18)
