"""Signed, expiring bearer tokens that name the client (PyJWT, HS256 by default)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt

from dermq.settings import Settings

ISSUER = "dermq"


def issue_token(settings: Settings, username: str) -> str:
    now = datetime.now(timezone.utc)
    claims = {"sub": username, "iss": ISSUER, "iat": now, "exp": now + timedelta(minutes=settings.token_expire_minutes)}
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithm)


def verify_token(settings: Settings, token: str) -> str:
    """The client name in a valid token; raises jwt.InvalidTokenError (expired, tampered...) otherwise."""
    claims = jwt.decode(
        token,
        settings.jwt_secret.get_secret_value(),
        algorithms=[settings.jwt_algorithm],
        issuer=ISSUER,
        options={"require": ["exp", "iat", "sub", "iss"]},
    )
    return str(claims["sub"])
