from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import ClientDep, JobClientDep, SettingsDep
from dermq import __version__
from pipeline.catalogue import load_catalogue

router = APIRouter(tags=["discovery"])


@router.get("/conditions")
async def conditions(_: ClientDep):
    """The condition catalogue every diagnosis ranks over."""
    return load_catalogue().to_json()


@router.get("/device-information")
async def device_information(_: ClientDep, jobs: JobClientDep, settings: SettingsDep):
    """What is serving: version, and the model bundles each live worker has loaded."""
    workers = await run_in_threadpool(jobs.workers)
    models = {(m["name"], m["version"], m["sha256"]): m for w in workers for m in w.get("models", [])}
    configured = str(settings.model_dir) if settings.model_dir else settings.model_bundle
    return {
        "name": "dermq",
        "version": __version__,
        "configuredModel": configured or "untrained reference weights (no bundle configured)",
        "models": list(models.values()),
        "workers": workers,
    }
