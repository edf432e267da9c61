"""Signed, expiring bearer tokens that name the client (PyJWT, HS256 by default).

The key is `Settings.signing_secret()`: DERMQ_JWT_SECRET, else the secret generated into the data directory.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt

from core.settings import Settings

ISSUER = "dermq"
LIFETIME_LEEWAY_S = 60


def issue_token(settings: Settings, username: str) -> str:
    now = datetime.now(timezone.utc)
    claims = {"sub": username, "iss": ISSUER, "iat": now, "exp": now + timedelta(minutes=settings.token_expire_minutes)}
    return jwt.encode(claims, settings.signing_secret(), algorithm=settings.jwt_algorithm)


def verify_token(settings: Settings, token: str) -> str:
    """The client name in a valid token; raises jwt.InvalidTokenError (expired, tampered...) otherwise."""
    claims = jwt.decode(
        token,
        settings.signing_secret(),
        algorithms=[settings.jwt_algorithm],
        issuer=ISSUER,
        options={"require": ["exp", "iat", "sub", "iss"]},
    )
    # This service never issues longer-lived tokens; one that claims more was not made by it.
    if claims["exp"] - claims["iat"] > settings.token_expire_minutes * 60 + LIFETIME_LEEWAY_S:
        raise jwt.InvalidTokenError("token lifetime longer than this service issues")
    return str(claims["sub"])
