from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from api.deps import ClientDep, JobClientDep, SettingsDep
from api.errors import ApiError
from api.schemas import error_responses
from core import __version__
from pipeline.catalogue import load_catalogue
from pipeline.severity import body_sites
from pipeline.severity.systems import SYSTEMS, systems_for_condition

router = APIRouter(tags=["discovery"], responses=error_responses(401, 404, 503))

# What clients may see of a worker's heartbeat: not its host and pid, nor its tuning.
PUBLIC_WORKER_FIELDS = ("device", "version", "models", "modelError")


@router.get("/conditions")
async def conditions(_: ClientDep):
    """The condition catalogue every diagnosis ranks over."""
    return load_catalogue().to_json()


@router.get("/body-sites")
async def list_body_sites(_: ClientDep):
    """Body-site codes with their names and the PASI/EASI region each belongs to."""
    return body_sites.describe()


@router.get("/questionnaires")
async def questionnaires(_: ClientDep, code: str | None = Query(None, description="A scoring-system code."),
                         pathology: str | None = Query(None, description="An ICD-11 code of the catalogue.")):
    """Scoring systems with their items (who supplies each, type, range) and category bands."""
    if code is not None and code not in SYSTEMS:
        raise ApiError.one(404, f"unknown scoring system {code!r}", type="not_found", loc=["query", "code"])
    if pathology is not None and pathology not in load_catalogue():
        raise ApiError.one(404, f"{pathology!r} is not an ICD-11 code of the catalogue (GET /conditions)",
                           type="not_found", loc=["query", "pathology"])
    systems = systems_for_condition(pathology) if pathology is not None else list(SYSTEMS.values())
    return [s.questionnaire() for s in systems if code is None or s.code == code]


@router.get("/device-information")
async def device_information(_: ClientDep, jobs: JobClientDep, settings: SettingsDep):
    """What is serving: version, and the model bundles each live worker has loaded."""
    workers = [{k: w[k] for k in PUBLIC_WORKER_FIELDS if k in w} for w in await run_in_threadpool(jobs.workers)]
    models = {(m["name"], m["version"], m["sha256"]): m for w in workers for m in w.get("models", [])}
    configured = str(settings.model_dir) if settings.model_dir else settings.model_bundle
    segmenter = str(settings.segmenter_dir) if settings.segmenter_dir else settings.segmenter_bundle
    return {
        "name": "dermq",
        "version": __version__,
        "configuredModel": configured or "shipped dermoscopy classifier (no bundle configured)",
        "configuredSegmenter": segmenter or (
            "classical CIELAB segmenter" if settings.segmenter_method == "classical"
            else "shipped dermoscopy lesion segmenter (no bundle configured)"
        ),
        "models": list(models.values()),
        "workerCount": len(workers),
        "workers": workers,
    }
