"""Bearer tokens: what verify_token accepts is exactly what issue_token makes with this service's secret."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest

from api.security import ISSUER, issue_token, verify_token
from core.settings import DEV_SECRET, Settings


def _claims(**delta: float) -> dict:
    now = datetime.now(timezone.utc)
    return {"sub": "dev", "iss": ISSUER, "iat": now, "exp": now + timedelta(**delta)}


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)  # no DERMQ_JWT_SECRET: the generated file's secret


def test_a_token_round_trips_with_the_generated_secret(settings: Settings, tmp_path: Path) -> None:
    token = issue_token(settings, "clinic-a")
    assert verify_token(settings, token) == "clinic-a"
    secret = (tmp_path / "jwt-secret").read_text().strip()
    assert jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER)["sub"] == "clinic-a"
    assert verify_token(Settings(data_dir=tmp_path), token) == "clinic-a", "another process of the same data dir"


def test_the_old_built_in_secret_no_longer_verifies(settings: Settings) -> None:
    forged = jwt.encode({**_claims(minutes=30), "sub": "any-account"}, DEV_SECRET, algorithm="HS256")
    with pytest.raises(jwt.InvalidSignatureError):
        verify_token(settings, forged)


def test_expired_tampered_and_unsigned_tokens_are_refused(settings: Settings) -> None:
    secret = settings.signing_secret()
    with pytest.raises(jwt.ExpiredSignatureError):
        verify_token(settings, jwt.encode(_claims(minutes=-1), secret, algorithm="HS256"))
    head, payload, sig = issue_token(settings, "dev").split(".")
    other = jwt.encode(_claims(minutes=30) | {"sub": "someone-else"}, "x" * 40, algorithm="HS256").split(".")[1]
    with pytest.raises(jwt.InvalidSignatureError):
        verify_token(settings, ".".join([head, other, sig]))
    unsigned = jwt.encode(_claims(minutes=30), None, algorithm="none")
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify_token(settings, unsigned)
    with pytest.raises(jwt.InvalidIssuerError):
        verify_token(settings, jwt.encode(_claims(minutes=30) | {"iss": "elsewhere"}, secret, algorithm="HS256"))


def test_a_token_living_longer_than_the_service_issues_is_refused(settings: Settings) -> None:
    # Signed with the right key, yet ten years long: not one of ours (a leaked key, an old forgery).
    ten_years = jwt.encode(_claims(days=3650), settings.signing_secret(), algorithm="HS256")
    with pytest.raises(jwt.InvalidTokenError, match="lifetime"):
        verify_token(settings, ten_years)
    assert verify_token(settings, jwt.encode(_claims(minutes=60), settings.signing_secret(), algorithm="HS256")) == "dev"
