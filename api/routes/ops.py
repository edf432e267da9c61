from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import JobClientDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz():
    return {"status": "ok"}


@router.get("/readyz")
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


@router.get("/metrics")
async def metrics(request: Request):
    data = await run_in_threadpool(generate_latest, request.app.state.metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
