"""The FastAPI application: HTTP only. Jobs go through `workers.job_client.JobClient`."""

from __future__ import annotations

import logging
import sys
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.metrics import LatencyMiddleware, Metrics
from api.routes import (
    auth,
    batches,
    diagnosis,
    discovery,
    jobs,
    ops,
    severity,
    webhooks,
)
from api.services import Services
from core import __version__
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)
SWITCH_INTERVAL_S = 0.001


class BodyLimit:
    """Request bodies over `max_bytes` get a 413, however they are sent (pure ASGI, nothing buffered).

    A declared Content-Length over the limit is refused before a byte is read. A body
    without one (chunked) is counted message by message as the app reads it; once the
    count passes the limit the 413 goes out, the app reads a disconnect and whatever
    it answers then is dropped. So at most `max_bytes` ever reach the app.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self) -> JSONResponse:
        item = errors.error_item(f"request body larger than {self.max_bytes} bytes", type="too_large", loc=["body"])
        # The rest of the body is never read, so the connection cannot carry another request.
        return JSONResponse({"detail": [item]}, status_code=413, headers={"Connection": "close"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._refusal()(scope, receive, send)
            return
        received = 0
        response_started = refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not response_started:
                        await self._refusal()(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused and not response_started:
                return  # our 413 went out instead
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted_receive, guarded_send)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production()
    # Intake (JSON parsing, base64, image checks) runs on threads beside the event loop; with the
    # interpreter's default 5 ms switch interval each wake-up of the loop can wait that long for the lock.
    sys.setswitchinterval(SWITCH_INTERVAL_S)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        reader = getattr(app.state, "job_reader", None)  # made on first poll (api/deps.py)
        if reader is not None:
            await reader.aclose()

    app = FastAPI(title="dermq", version=__version__, lifespan=lifespan,
                  description="Dermatology image analysis: ICD-11 differential diagnosis and severity scoring.")
    app.state.services = services or Services.build(settings)
    app.state.metrics = Metrics(app.state.services.jobs)
    errors.install(app)
    app.add_middleware(LatencyMiddleware, metrics=app.state.metrics)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)  # added last: the outermost

    for module in (ops, auth, diagnosis, severity, jobs, batches, discovery, webhooks):
        app.include_router(module.router)
    mount_viewer(app)
    return app


UI_DIR = Path(__file__).resolve().parent / "ui"


def mount_viewer(app: FastAPI) -> None:
    """The viewer (SPEC §2.12): static files at /ui/, public like /healthz; its own API calls carry the token."""

    @app.get("/ui", include_in_schema=False)
    async def viewer_root() -> RedirectResponse:
        # The page loads app.js and style.css by relative URL, so it must be addressed as /ui/.
        return RedirectResponse("/ui/", status_code=308)

    app.mount("/ui", StaticFiles(directory=UI_DIR, html=True), name="ui")
