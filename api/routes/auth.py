from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import ServicesDep
from api.errors import unauthorized
from api.ratelimit import LoginLimiter
from api.schemas import LoginResponse
from api.security import issue_token

router = APIRouter(tags=["auth"])


async def get_login_limiter(request: Request, services: ServicesDep) -> LoginLimiter:
    # Built on first use (it opens no connection), then kept for the life of the app.
    limiter = getattr(request.app.state, "login_limiter", None)
    if limiter is None:
        limiter = request.app.state.login_limiter = LoginLimiter(services.settings, services.jobs.jobs.r)
    return limiter


@router.post("/login", response_model=LoginResponse,
             responses={401: {"description": "Wrong username or password"},
                        429: {"description": "Too many attempts; see Retry-After"},
                        503: {"description": "The job store holding the login counters is unreachable"}})
async def login(request: Request, services: ServicesDep, limiter: Annotated[LoginLimiter, Depends(get_login_limiter)],
                username: Annotated[str, Form()], password: Annotated[str, Form()]) -> LoginResponse:
    address = request.client.host if request.client else "unknown"  # the proxy's client with proxy_headers

    def attempt() -> bool:
        limiter.admit(username, address)
        ok = services.accounts.verify(username, password)
        if ok:
            limiter.succeeded(username)
        return ok

    # Redis round trips and argon2 (deliberately slow): off the event loop, in one thread hop.
    if not await run_in_threadpool(attempt):
        raise unauthorized("wrong username or password")
    settings = services.settings
    return LoginResponse(access_token=issue_token(settings, username), expires_in_minutes=settings.token_expire_minutes)
