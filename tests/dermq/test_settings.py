from __future__ import annotations

import re
from pathlib import Path

import pytest

from dermq.settings import DEV_SECRET, Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DERMQ_SYNC_TIMEOUT_S", "2.5")
    monkeypatch.setenv("DERMQ_STORAGE_BACKEND", "s3")
    s = Settings()
    assert s.sync_timeout_s == 2.5 and s.storage_backend.value == "s3"


def test_derived_defaults(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.effective_storage_dir == tmp_path / "objects"
    assert s.effective_accounts_file == tmp_path / "accounts.json"
    assert s.effective_broker_url == s.effective_redis_url
    assert Settings(redis_url="redis://x:1/0", broker_url="amqp://guest:guest@h//").effective_broker_url.startswith("amqp")


def test_production_refuses_development_secrets() -> None:
    with pytest.raises(RuntimeError, match="DERMQ_JWT_SECRET"):
        Settings(env="production").check_production()
    with pytest.raises(RuntimeError, match="DERMQ_DEV_PASSWORD"):
        Settings(env="production", jwt_secret="s" * 40, dev_password="hunter22").check_production()
    Settings(env="production", jwt_secret="s" * 40).check_production()
    Settings(env="development", jwt_secret=DEV_SECRET).check_production()


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"`(DERMQ_[A-Z0-9_]+)`", DOCS.read_text()))
    missing = {f"DERMQ_{name.upper()}" for name in Settings.model_fields} - documented
    assert not missing, f"document these in docs/configuration.md: {sorted(missing)}"
