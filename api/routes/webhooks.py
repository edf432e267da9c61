"""Webhooks: the account's signing secret and default callbackUrl, and the delivery log of jobs and batches."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.analysis_route import AnalysisRoute
from api.callbacks import checked_callback
from api.deps import ClientDep, JobClientDep, SettingsDep
from api.errors import not_found
from api.schemas import error_responses
from workers.webhooks import AccountWebhook, DeliveryAttempt, DeliveryLog

# AnalysisRoute: a JSON body is read as on every other JSON endpoint (a malformed one is a 422, not a 400).
router = APIRouter(tags=["webhooks"], route_class=AnalysisRoute, responses=error_responses(401, 503))


class AccountWebhookUpdate(BaseModel):
    url: str | None = Field(None, max_length=2048,
                            description="Default callbackUrl of this account's requests; null removes it. Omitted: kept.")
    rotateSecret: bool = Field(False, description="A new secret; the previous one keeps signing for 24 hours.")


class Deliveries(BaseModel):
    items: list[DeliveryAttempt]


@router.get("/account/webhook", response_model=AccountWebhook)
async def get_account_webhook(client: ClientDep, jobs: JobClientDep) -> AccountWebhook:
    """The secret events are signed with (Standard Webhooks `whsec_` format) and the default callbackUrl."""
    return await run_in_threadpool(jobs.webhooks.get, client)


@router.put("/account/webhook", response_model=AccountWebhook, responses={422: {"description": "URL refused"}})
async def put_account_webhook(body: AccountWebhookUpdate, client: ClientDep, jobs: JobClientDep,
                              settings: SettingsDep) -> AccountWebhook:
    """Set or clear the default callbackUrl, and/or rotate the signing secret."""
    set_url = "url" in body.model_fields_set
    if set_url:
        await run_in_threadpool(checked_callback, body.url, settings, ["body", "url"])
    return await run_in_threadpool(jobs.webhooks.update, client, url=body.url, set_url=set_url,
                                   rotate=body.rotateSecret)


@router.get("/jobs/{job_id}/deliveries", response_model=Deliveries, responses=error_responses(404))
async def job_deliveries(job_id: str, client: ClientDep, jobs: JobClientDep) -> Deliveries:
    """Every attempt to deliver this job's event, oldest first."""
    if await run_in_threadpool(jobs.get, client, job_id) is None:
        raise not_found("job")
    return Deliveries(items=await run_in_threadpool(DeliveryLog(jobs.jobs).list, "job", job_id))


@router.get("/batches/{batch_id}/deliveries", response_model=Deliveries, responses=error_responses(404))
async def batch_deliveries(batch_id: str, client: ClientDep, jobs: JobClientDep) -> Deliveries:
    """Every attempt to deliver this batch's `batch.completed` event, oldest first."""
    if await run_in_threadpool(jobs.get_batch, client, batch_id) is None:
        raise not_found("batch")
    return Deliveries(items=await run_in_threadpool(DeliveryLog(jobs.jobs).list, "batch", batch_id))
