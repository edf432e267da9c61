from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.concurrency import run_in_threadpool

from api.deps import ServicesDep
from api.errors import unauthorized
from api.schemas import LoginResponse
from api.security import issue_token

router = APIRouter(tags=["auth"])


@router.post("/login", response_model=LoginResponse)
async def login(services: ServicesDep, username: Annotated[str, Form()], password: Annotated[str, Form()]) -> LoginResponse:
    # argon2 is deliberately slow: keep it off the event loop.
    if not await run_in_threadpool(services.accounts.verify, username, password):
        raise unauthorized("wrong username or password")
    settings = services.settings
    return LoginResponse(access_token=issue_token(settings, username), expires_in_minutes=settings.token_expire_minutes)
