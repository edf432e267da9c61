"""All configuration in one object, read from the environment with the ``DERMQ_`` prefix.

Defaults are the embedded single-machine setup (`dermq up`): a local Redis,
the local-directory object store under ``data_dir`` and development accounts.
Production refuses to start with development secrets (see ``check_production``).
"""

from __future__ import annotations

import ipaddress
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The signing secret of earlier versions, public in the source: refused wherever it could be exploited.
DEV_SECRET = "dermq-development-secret-change-me"
MIN_SECRET_CHARS = 32


def is_loopback(host: str) -> bool:
    """Whether a listen address is reachable from this machine only ("0.0.0.0", names other than localhost: no)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def weak_secret(value: str) -> bool:
    return value == DEV_SECRET or len(value) < MIN_SECRET_CHARS


class StorageBackend(str, Enum):
    local = "local"
    s3 = "s3"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DERMQ_", env_file=None, extra="ignore")

    # --- deployment mode -------------------------------------------------
    env: str = Field("development", description="'development' or 'production'.")
    data_dir: Path = Field(Path("./data"), description="Embedded state: objects, accounts, Redis files.")

    # --- broker and job records -----------------------------------------
    redis_url: str | None = Field(None, description="Job records (and broker unless broker_url is set).")
    broker_url: str | None = Field(None, description="Celery broker; Redis or amqp:// (RabbitMQ).")
    queue_interactive: str = "dermq.interactive"
    queue_batch: str = "dermq.batch"
    queue_webhooks: str = "dermq.webhooks"
    # Broker redelivers an unacknowledged task after this many seconds if its worker vanished; job
    # leases (below) make that a backstop: a duplicate delivery of a job that is still leased is dropped.
    visibility_timeout_s: int = 300
    max_deliveries: int = Field(3, ge=1, description="A job whose worker stops (killed, out of memory) this many times fails.")
    lease_s: float = Field(30.0, gt=0, description="A running job's lease; its worker renews it every lease_s / 6.")
    lease_sweep_s: float = Field(5.0, gt=0, description="How often each worker looks for lapsed leases (dead workers).")
    transient_retries: int = Field(8, ge=0, description="Retries of a job after a storage or broker outage before it fails.")
    transient_backoff_s: float = Field(1.0, gt=0, description="First retry delay; doubles each retry (with jitter).")
    transient_backoff_max_s: float = Field(60.0, gt=0, description="Cap on the retry delay.")
    job_ttl_s: int = Field(7 * 24 * 3600, description="Retention of job records, results and inputs.")

    # --- object storage -------------------------------------------------
    storage_backend: StorageBackend = StorageBackend.local
    storage_dir: Path | None = Field(None, description="Local backend root; default <data_dir>/objects.")
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = "minioadmin"
    s3_secret_key: SecretStr = SecretStr("minioadmin")
    s3_bucket: str = "dermq"
    s3_secure: bool = False
    s3_region: str | None = None

    # --- authentication ---------------------------------------------------
    jwt_secret: SecretStr | None = Field(
        None, description="Token signing secret (32+ characters); unset: generated once into <data_dir>/jwt-secret."
    )
    jwt_algorithm: str = "HS256"
    token_expire_minutes: int = Field(60, ge=1)
    accounts_file: Path | None = Field(None, description="Hashed accounts; default <data_dir>/accounts.json.")
    dev_username: str | None = None
    dev_password: SecretStr | None = None
    login_failures_per_account: str = Field(
        "10/minute;50/hour", description="Failed logins per account (limits notation, ';' between limits), then 429."
    )
    login_attempts_per_address: str = Field(
        "60/minute;600/hour", description="Logins, failed or not, per client address, then 429."
    )
    metrics_token: SecretStr | None = Field(None, description="Bearer token GET /metrics requires; unset: open.")

    # --- API behaviour ----------------------------------------------------
    sync_timeout_s: float = Field(30.0, ge=0, description="Wait for a synchronous job, then answer 202.")
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(40_000_000, ge=1, description="Larger images are refused (bomb guard).")
    decode_max_side: int = Field(2048, ge=256, description="Workers decode images at most this many pixels on a side.")
    diagnosis_decode_side: int = Field(
        1024, ge=256, description="Diagnosis decodes a JPEG at the smallest DCT scale (1/2, 1/4, 1/8) that keeps this "
        "many pixels on its long side (heat maps are 384 px, the model's input 192)."
    )
    min_image_side: int = Field(32, ge=1, description="Images narrower or lower than this many pixels are refused.")
    max_aspect_ratio: float = Field(
        10.0, ge=1, allow_inf_nan=False, description="Images whose long side exceeds this many short sides are refused."
    )
    max_images_per_request: int = Field(16, ge=1)
    max_batch_items: int = Field(500, ge=1)
    max_request_bytes: int = Field(200 * 1024 * 1024, ge=1)

    # --- webhooks (docs/webhooks.md) ---------------------------------------
    public_url: str | None = Field(
        None, description="The API's public address (https://dermq.example.org); webhook events link to it, else paths."
    )
    webhook_allow_private: bool = Field(
        False, description="Let callbackUrls reach loopback, private, link-local and other non-public addresses."
    )
    webhook_allowed_cidrs: str = Field(
        "", description="Comma-separated non-public networks callbackUrls may reach anyway (10.2.0.0/16,fd00::/8)."
    )
    webhook_timeout_s: float = Field(5.0, gt=0, description="One delivery attempt: connect, send, read the answer.")
    webhook_retry_seconds: float = Field(
        3600.0, ge=0, description="Failed deliveries are retried for this long after the first attempt, then given up."
    )
    webhook_backoff_s: float = Field(2.0, gt=0, description="First retry delay of a delivery; doubles each retry.")
    webhook_backoff_max_s: float = Field(
        120.0, gt=0, description="Cap on the retry delay (never above half the visibility timeout, see workers/webhooks.py)."
    )

    # --- pipeline and worker ---------------------------------------------
    quality_min_score: float = Field(60.0, ge=0, le=100)
    model_dir: Path | None = Field(None, description="Local directory holding the classifier bundle.")
    model_bundle: str | None = Field(None, description="NAME@VERSION of a bundle in object storage.")
    segmenter_dir: Path | None = Field(None, description="Local directory holding a segmentation bundle.")
    segmenter_bundle: str | None = Field(None, description="NAME@VERSION of a segmentation bundle in object storage.")
    segmenter_method: Literal["learned", "classical"] = Field(
        "learned", description="Default segmenter when no bundle is configured: the shipped U-Net, or the classical method."
    )
    model_poll_s: float = Field(15.0, ge=0, description="How often workers look for a newly selected bundle; 0: never.")
    device: str = Field("auto", description="'auto' (CUDA when available), 'cpu' or 'cuda[:N]'.")
    # Unset: the default of the device the model runs on (workers/serving_shape.py, measured on CPU).
    batch_max_size: int | None = Field(None, ge=1, description="Images per model call in the dynamic batcher "
                                       "(unset: 4 on CPU, 32 on CUDA).")
    batch_max_wait_ms: float | None = Field(None, ge=0, description="How long the batcher waits to fill a batch "
                                            "(unset: 2 ms on CPU, 5 ms on CUDA).")
    worker_concurrency: int | None = Field(None, ge=1, description="Jobs in flight per worker process, as threads "
                                           "(unset: 2 on CPU, 8 on CUDA).")
    model_threads: int | None = Field(None, ge=1, description="Threads the model's CPU forward pass uses "
                                      "(unset: half the cores on CPU; torch's default on CUDA).")
    worker_metrics_port: int = Field(9100, ge=0, description="Worker Prometheus port; 0 disables it.")
    worker_metrics_host: str = Field(
        "127.0.0.1", description="Address worker metrics listen on; 0.0.0.0 lets a scraper on another host in."
    )
    retention_sweep_s: float = Field(300.0, gt=0, description="How often a worker removes expired jobs.")
    heatmap_top_k: int = Field(5, ge=0)
    heatmap_max_side: int = Field(384, ge=32)

    _signing_secret: str | None = PrivateAttr(None)  # the file's secret, read once per Settings object

    @field_validator("jwt_secret", "metrics_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("webhook_allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        for cidr in filter(None, (c.strip() for c in value.split(","))):
            ipaddress.ip_network(cidr, strict=False)  # a typo fails at start-up, not at the first delivery
        return value

    @property
    def webhook_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(c.strip(), strict=False) for c in self.webhook_allowed_cidrs.split(",") if c.strip()]

    @property
    def worker_queues(self) -> list[str]:
        """What a worker consumes, first served first: webhook deliveries are short, so they go
        ahead of batch images (an event late behind a backlog is little use), behind interactive work."""
        return [self.queue_interactive, self.queue_webhooks, self.queue_batch]

    @field_validator("login_failures_per_account", "login_attempts_per_address")
    @classmethod
    def _rate_limits(cls, value: str) -> str:
        from limits import parse_many

        parse_many(value)  # a typo fails at start-up, not at the first login
        return value

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or "redis://127.0.0.1:6379/0"

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.effective_redis_url

    @property
    def effective_storage_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "objects"

    @property
    def effective_accounts_file(self) -> Path:
        return self.accounts_file or self.data_dir / "accounts.json"

    @property
    def is_production(self) -> bool:
        return self.env.lower() == "production"

    @property
    def jwt_secret_file(self) -> Path:
        return self.data_dir / "jwt-secret"

    def signing_secret(self) -> str:
        """DERMQ_JWT_SECRET, else the random secret generated once into <data_dir>/jwt-secret (mode 0600)."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if self._signing_secret is None:
            from core.secrets import read_or_create_secret

            self._signing_secret = read_or_create_secret(self.jwt_secret_file)
        return self._signing_secret

    def check_listen(self, host: str) -> None:
        """Resolve the signing secret now (so start-up creates its file) and refuse a weak one beyond loopback."""
        secret = self.signing_secret()
        if not is_loopback(host) and weak_secret(secret):
            raise RuntimeError(
                f"refusing to listen on {host}: the token signing secret is the built-in development value or shorter "
                f"than {MIN_SECRET_CHARS} characters; set DERMQ_JWT_SECRET to a random value (openssl rand -hex 32) "
                "or unset it to use the generated <data_dir>/jwt-secret"
            )

    def check_production(self) -> None:
        """Refuse development secrets outside development mode."""
        if not self.is_production:
            return
        problems = []
        # Replicas must share one secret, so production names it rather than generating one per machine.
        if self.jwt_secret is None or weak_secret(self.jwt_secret.get_secret_value()):
            problems.append(f"DERMQ_JWT_SECRET must be set to a random value of at least {MIN_SECRET_CHARS} characters")
        if self.dev_password is not None:
            problems.append("DERMQ_DEV_PASSWORD must not be set in production")
        if self.storage_backend is StorageBackend.s3 and self.s3_secret_key.get_secret_value() == "minioadmin":
            problems.append("DERMQ_S3_SECRET_KEY is the MinIO default")
        if problems:
            raise RuntimeError("refusing to start in production: " + "; ".join(problems))


@lru_cache
def get_settings() -> Settings:
    return Settings()
