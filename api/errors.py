"""Errors in FastAPI's validation shape, whatever their status: {"detail": [{type, loc, msg}]}."""

from __future__ import annotations

from typing import Any, Sequence

import kombu.exceptions
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from workers.storage import StorageUnavailable

# A dependency that is briefly away (broker or job store restarting, object store unreachable):
# the client should come back shortly, so these answer 503 with Retry-After rather than 500.
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               kombu.exceptions.OperationalError, StorageUnavailable)
RETRY_AFTER_S = 5


def error_item(msg: str, *, type: str, loc: Sequence[str | int] = ()) -> dict[str, Any]:
    return {"type": type, "loc": list(loc), "msg": msg}


class ApiError(Exception):
    """Raise anywhere in a route; rendered as `{"detail": [items]}` with `status`."""

    def __init__(self, status: int, items: list[dict[str, Any]], headers: dict[str, str] | None = None):
        super().__init__(items[0]["msg"] if items else str(status))
        self.status = status
        self.items = items
        self.headers = headers

    @classmethod
    def one(cls, status: int, msg: str, *, type: str, loc: Sequence[str | int] = (),
            headers: dict[str, str] | None = None) -> "ApiError":
        return cls(status, [error_item(msg, type=type, loc=loc)], headers)


def not_found(what: str) -> ApiError:
    return ApiError.one(404, f"{what} not found", type="not_found", loc=["path", "id"])


def unauthorized(msg: str) -> ApiError:
    return ApiError.one(401, msg, type="unauthorized", loc=["header", "Authorization"],
                        headers={"WWW-Authenticate": "Bearer"})


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.items}, status_code=exc.status, headers=exc.headers)

    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        what = "object store" if isinstance(exc, StorageUnavailable) else "job store or broker"
        item = error_item(f"the {what} is unavailable, try again shortly ({type(exc).__name__})", type="unavailable")
        return JSONResponse({"detail": [item]}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})

    for exc_type in UNAVAILABLE:
        app.add_exception_handler(exc_type, _unavailable)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.detail, list):
            detail = exc.detail
        else:
            detail = [error_item(str(exc.detail), type="http_error")]
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Same as FastAPI's default, minus echoed inputs: those may be megabytes of base64.
        detail = [{k: v for k, v in err.items() if k in ("type", "loc", "msg", "ctx")} for err in exc.errors()]
        for item in detail:
            if "ctx" in item:
                item["ctx"] = {k: str(v) for k, v in item["ctx"].items()}
        return JSONResponse({"detail": detail}, status_code=422)
