"""The account file check of every authenticated request: at most one look at the file per `recheck_s`."""

from __future__ import annotations

import time
from pathlib import Path

from api.accounts import AccountStore


def test_exists_looks_at_the_file_once_per_interval_login_always(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    other_process = AccountStore(path)  # as `dermq accounts` would, beside the API
    other_process.add("clinic-a", "password-123")
    api = AccountStore(path, recheck_s=60)
    assert api.exists("clinic-a")

    other_process.remove("clinic-a")
    assert api.exists("clinic-a"), "within the interval the file is not looked at again"
    assert not api.verify("clinic-a", "password-123"), "logging in reads the file as it is now"
    assert api.names() == []
    assert not api.exists("clinic-a"), "and that fresh read is what the next check sees"


def test_a_removed_account_stops_passing_the_check_after_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    other_process = AccountStore(path)
    other_process.add("clinic-a", "password-123")
    api = AccountStore(path, recheck_s=0.2)
    assert api.exists("clinic-a")
    other_process.remove("clinic-a")
    time.sleep(0.3)
    assert not api.exists("clinic-a")


def test_the_stores_own_changes_are_seen_at_once(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "accounts.json", recheck_s=60)
    assert not store.exists("clinic-b")  # a missing file: no accounts
    store.add("clinic-b", "password-123")
    assert store.exists("clinic-b")
    store.remove("clinic-b")
    assert not store.exists("clinic-b")
