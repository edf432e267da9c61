from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from api.accounts import AccountStore
from dermq.embedded import ensure_dev_account
from dermq.settings import Settings


def test_dev_account_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    user, pw = ensure_dev_account(settings)
    assert (user, pw) == ensure_dev_account(settings)
    assert AccountStore(settings.effective_accounts_file).verify(user, pw)
    creds = tmp_path / "dev-credentials.json"
    assert json.loads(creds.read_text())["password"] == pw
    assert creds.stat().st_mode & 0o077 == 0, "credentials must not be readable by others"
    assert pw not in settings.effective_accounts_file.read_text(), "only the hash is stored"


def test_dev_account_from_environment(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, dev_username="clinic", dev_password="a-long-password")
    assert ensure_dev_account(settings) == ("clinic", "a-long-password")
    assert AccountStore(settings.effective_accounts_file).verify("clinic", "a-long-password")


def test_accounts_cli_adds_a_hashed_account(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.json"
    cmd = [sys.executable, "-m", "dermq.cli", "accounts", "add", "clinic-a", "--password", "secret-password",
           "--accounts-file", str(accounts)]
    subprocess.run(cmd, check=True, capture_output=True)
    store = AccountStore(accounts)
    assert store.verify("clinic-a", "secret-password") and not store.verify("clinic-a", "wrong")
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode != 0 and "already exists" in again.stderr
    bad = subprocess.run(cmd[:4] + ["../evil"] + cmd[5:], capture_output=True, text=True)
    assert bad.returncode != 0
