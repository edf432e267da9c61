"""Dependency aliases for the routes."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Annotated, Callable, TypeVar

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import unauthorized
from api.job_reader import JobReader
from api.security import verify_token
from api.services import Services
from core.settings import Settings
from workers.job_client import JobClient

_bearer = HTTPBearer(auto_error=False)
T = TypeVar("T")


class VerifiedTokens:
    """Tokens this app already verified, with their client and expiry (oldest dropped past `size`).

    A client polls every second with the same token: its HMAC and claims are
    checked once, then only its expiry; `verify_token` decides everything else.
    """

    def __init__(self, size: int = 4096):
        self.size = size
        self._seen: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def client(self, settings: Settings, token: str) -> str:
        """The client named by a valid token; raises jwt.InvalidTokenError (ExpiredSignatureError...) otherwise."""
        hit = self._seen.get(token)
        if hit is None:
            username = verify_token(settings, token)
            expires = float(jwt.decode(token, options={"verify_signature": False})["exp"])
            self._seen[token] = hit = (username, expires)
            if len(self._seen) > self.size:
                self._seen.popitem(last=False)
        if hit[1] <= time.time():  # PyJWT's own test: expired from the `exp` second on
            self._seen.pop(token, None)
            raise jwt.ExpiredSignatureError("Signature has expired")
        return hit[0]

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, token: object) -> bool:
        return token in self._seen


def _per_app(request: Request, name: str, make: Callable[[], T]) -> T:
    # Built on first use and kept on the app; none of these opens a connection before a request needs one.
    state = request.app.state
    value = getattr(state, name, None)
    if value is None:
        value = make()
        setattr(state, name, value)
    return value


# Every dependency here is `async def`: FastAPI runs a plain `def` one in the threadpool, a thread hop
# per dependency per request, while none of them blocks (the accounts file is looked at once a second).
async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


async def get_job_client(services: ServicesDep) -> JobClient:
    return services.jobs


async def get_job_reader(request: Request, services: ServicesDep) -> JobReader:
    return _per_app(request, "job_reader", lambda: JobReader(services.jobs))


async def current_client(
    request: Request, services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("missing bearer token: log in at POST /login")
    try:
        username = _per_app(request, "verified_tokens", VerifiedTokens).client(services.settings,
                                                                              credentials.credentials)
    except jwt.ExpiredSignatureError:
        raise unauthorized("token expired: log in again") from None
    except jwt.InvalidTokenError:
        raise unauthorized("invalid token") from None
    if not services.accounts.exists(username):
        raise unauthorized("account no longer exists")
    return username


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
JobClientDep = Annotated[JobClient, Depends(get_job_client)]
JobReaderDep = Annotated[JobReader, Depends(get_job_reader)]
ClientDep = Annotated[str, Depends(current_client)]
