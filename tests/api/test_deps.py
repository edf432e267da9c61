"""Verified bearer tokens: checked in full once, then only for expiry, with the same errors as verify_token."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest

from api.deps import VerifiedTokens
from api.security import ISSUER, issue_token
from core.settings import Settings


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def _token(settings: Settings, sub: str, *, seconds: float) -> str:
    now = datetime.now(timezone.utc)
    claims = {"sub": sub, "iss": ISSUER, "iat": now, "exp": now + timedelta(seconds=seconds)}
    return jwt.encode(claims, settings.signing_secret(), algorithm="HS256")


def test_a_valid_token_names_its_client_every_time(settings: Settings) -> None:
    tokens = VerifiedTokens()
    token = issue_token(settings, "clinic-a")
    assert [tokens.client(settings, token) for _ in range(3)] == ["clinic-a"] * 3
    assert tokens.client(settings, issue_token(settings, "clinic-b")) == "clinic-b"


def test_a_remembered_token_still_expires_on_time(settings: Settings) -> None:
    tokens = VerifiedTokens()
    token = _token(settings, "clinic-a", seconds=2)
    assert tokens.client(settings, token) == "clinic-a"
    time.sleep(max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()) + 0.1)
    for _ in range(2):  # the remembered entry and then a fresh verification both say so
        with pytest.raises(jwt.ExpiredSignatureError):
            tokens.client(settings, token)


def test_refused_tokens_are_refused_again_and_not_remembered(settings: Settings) -> None:
    tokens = VerifiedTokens()
    forged = jwt.encode({"sub": "clinic-a", "iss": ISSUER, "iat": time.time(), "exp": time.time() + 600},
                        "another-secret-" + "x" * 30, algorithm="HS256")
    for _ in range(2):
        with pytest.raises(jwt.InvalidSignatureError):
            tokens.client(settings, forged)
    with pytest.raises(jwt.ExpiredSignatureError):
        tokens.client(settings, _token(settings, "clinic-a", seconds=-5))
    with pytest.raises(jwt.DecodeError):
        tokens.client(settings, "not-a-jwt")
    assert len(tokens) == 0


def test_the_memory_is_bounded_oldest_first(settings: Settings) -> None:
    tokens = VerifiedTokens(size=2)
    first, second, third = (issue_token(settings, f"clinic-{i}") for i in range(3))
    for token in (first, second, third):
        tokens.client(settings, token)
    assert len(tokens) == 2 and first not in tokens and second in tokens and third in tokens
    assert tokens.client(settings, first) == "clinic-0", "a dropped token is simply verified again"
