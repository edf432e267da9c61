"""Long-lived collaborators of the API process, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from api.accounts import AccountStore
from core.settings import Settings
from workers.celery_app import create_celery
from workers.job_client import JobClient
from workers.job_store import RedisJobStore
from workers.storage import create_store


@dataclass
class Services:
    settings: Settings
    accounts: AccountStore
    jobs: JobClient

    @classmethod
    def build(cls, settings: Settings) -> "Services":
        store = create_store(settings)
        records = RedisJobStore.from_url(settings.effective_redis_url, ttl_s=settings.job_ttl_s)
        return cls(
            settings=settings,
            accounts=AccountStore(settings.effective_accounts_file),
            jobs=JobClient(settings, store, records, create_celery(settings)),
        )
