from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.settings import DEV_SECRET, Settings

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


def test_production_needs_a_named_secret(tmp_path: Path) -> None:
    # A secret generated per machine would differ between replicas.
    with pytest.raises(RuntimeError, match="DERMQ_JWT_SECRET"):
        Settings(env="production", data_dir=tmp_path).check_production()
    with pytest.raises(RuntimeError, match="DERMQ_JWT_SECRET"):
        Settings(env="production", jwt_secret="short-secret").check_production()


def test_signing_secret_is_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    secret = Settings(data_dir=tmp_path).signing_secret()
    path = tmp_path / "jwt-secret"
    assert path.read_text().strip() == secret and len(secret) >= 32 and secret != DEV_SECRET
    assert path.stat().st_mode & 0o077 == 0, "the signing secret must not be readable by others"
    assert Settings(data_dir=tmp_path).signing_secret() == secret, "kept across restarts"
    assert Settings(data_dir=tmp_path / "other").signing_secret() != secret
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jwt-secret", "other"], "no candidate files left behind"


def test_a_configured_secret_wins_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(data_dir=tmp_path, jwt_secret="c" * 40).signing_secret() == "c" * 40
    monkeypatch.setenv("DERMQ_JWT_SECRET", "")  # empty means unset, as in `DERMQ_JWT_SECRET= dermq up`
    assert Settings(data_dir=tmp_path).jwt_secret is None
    assert not (tmp_path / "jwt-secret").exists()


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    barrier = Barrier(8)

    def start() -> str:
        settings = Settings(data_dir=tmp_path)
        barrier.wait()
        return settings.signing_secret()

    with ThreadPoolExecutor(8) as pool:
        secrets = set(pool.map(lambda _: start(), range(8)))
    assert secrets == {(tmp_path / "jwt-secret").read_text().strip()}


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "api.example.org"])
def test_weak_secrets_are_refused_beyond_loopback_in_any_mode(env: str, host: str) -> None:
    for weak in (DEV_SECRET, "short-but-set"):
        with pytest.raises(RuntimeError, match="refusing to listen"):
            Settings(env=env, jwt_secret=weak).check_listen(host)


def test_loopback_and_generated_secrets_may_listen(tmp_path: Path) -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.1.1"):
        Settings(jwt_secret=DEV_SECRET).check_listen(host)
    Settings(data_dir=tmp_path).check_listen("0.0.0.0")  # the generated secret is strong
    Settings(jwt_secret="s" * 40).check_listen("0.0.0.0")


def test_rate_limits_are_checked_when_read() -> None:
    from pydantic import ValidationError

    assert Settings(login_attempts_per_address="5/second;100/hour").login_attempts_per_address == "5/second;100/hour"
    with pytest.raises(ValidationError, match="login_failures_per_account"):
        Settings(login_failures_per_account="ten a minute")


def test_worker_metrics_listen_on_loopback_by_default() -> None:
    assert Settings().worker_metrics_host == "127.0.0.1"
    assert Settings().metrics_token is None
