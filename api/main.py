"""The FastAPI application: HTTP only. Jobs go through `workers.client.JobClient`."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api import errors
from api.metrics import LatencyMiddleware, Metrics
from api.routes import auth, batches, diagnosis, discovery, jobs, ops, severity
from api.services import Services
from dermq import __version__
from dermq.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield

    app = FastAPI(title="dermq", version=__version__, lifespan=lifespan,
                  description="Dermatology image analysis: ICD-11 differential diagnosis and severity scoring.")
    app.state.services = services or Services.build(settings)
    app.state.metrics = Metrics(app.state.services.jobs)
    errors.install(app)
    app.add_middleware(LatencyMiddleware)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_request_bytes:
            return JSONResponse(
                {"detail": [errors.error_item(f"request body larger than {settings.max_request_bytes} bytes",
                                              type="too_large", loc=["body"])]},
                status_code=413,
            )
        return await call_next(request)

    for module in (ops, auth, diagnosis, severity, jobs, batches, discovery):
        app.include_router(module.router)
    return app
