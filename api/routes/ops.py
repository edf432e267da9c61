from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import JobClientDep, SettingsDep
from api.errors import unauthorized

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz():
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready: the checks say which dependency is unreachable"}})
async def readyz(jobs: JobClientDep):
    checks: dict[str, str] = {}
    for name, probe in (("broker", jobs.ping_broker), ("jobStore", jobs.jobs.ping), ("storage", jobs.ping_storage)):
        try:
            await run_in_threadpool(probe)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unavailable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)


_metrics_bearer = HTTPBearer(auto_error=False, scheme_name="MetricsToken", description="DERMQ_METRICS_TOKEN, when set")


@router.get("/metrics")
async def metrics(request: Request, settings: SettingsDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_metrics_bearer)]):
    """Prometheus metrics; with DERMQ_METRICS_TOKEN set, only for `Authorization: Bearer <that token>`."""
    if settings.metrics_token is not None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, settings.metrics_token.get_secret_value().encode()):
            raise unauthorized("GET /metrics needs the metrics bearer token")
    data = await run_in_threadpool(generate_latest, request.app.state.metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
