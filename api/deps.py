"""Dependency aliases for the routes."""

from __future__ import annotations

from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import unauthorized
from api.security import verify_token
from api.services import Services
from dermq.settings import Settings
from workers.client import JobClient

_bearer = HTTPBearer(auto_error=False)


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


def get_job_client(services: ServicesDep) -> JobClient:
    return services.jobs


def current_client(
    services: ServicesDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("missing bearer token: log in at POST /login")
    try:
        username = verify_token(services.settings, credentials.credentials)
    except jwt.ExpiredSignatureError:
        raise unauthorized("token expired: log in again") from None
    except jwt.InvalidTokenError:
        raise unauthorized("invalid token") from None
    if not services.accounts.exists(username):
        raise unauthorized("account no longer exists")
    return username


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
JobClientDep = Annotated[JobClient, Depends(get_job_client)]
ClientDep = Annotated[str, Depends(current_client)]
