"""Signed webhooks: when a job or a batch finishes, POST a small event to its callbackUrl.

- Signing follows the Standard Webhooks specification: headers `webhook-id`,
  `webhook-timestamp` and `webhook-signature` (`v1,` + base64 HMAC-SHA256 over
  "id.timestamp.body" with the account's `whsec_` secret). After a rotation the
  previous secret signs too, for `PREVIOUS_SECRET_GRACE_S`, so receivers can switch.
- Server-side request forgery: a callbackUrl must be http(s) and its host must
  resolve to public addresses only, unless the operator allows private ones
  (DERMQ_WEBHOOK_ALLOW_PRIVATE, DERMQ_WEBHOOK_ALLOWED_CIDRS). The check runs when
  the URL is given and again before every attempt, and the request goes to the
  address that was checked (no second lookup a rebinding name could answer
  differently); redirects are never followed.
- Exactly one event per job or batch: several paths see a job finish (its run, a
  cancellation, the lease sweep, a redelivery of a finished job), so each claims
  the event in Redis and only the first publishes it.
- Delivery: the `dermq.deliver_webhook` task (in workers.tasks, the worker's task module) on its own queue, retried through
  Celery's retry with exponential backoff for DERMQ_WEBHOOK_RETRY_SECONDS; every
  attempt is recorded (kept as long as the job record) for GET .../deliveries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
import uuid
from collections import Counter
from typing import Any, Literal

import httpx
import redis
from celery import Celery
from celery.utils.time import get_exponential_backoff_interval
from pydantic import BaseModel, Field

from core import __version__
from core.jobs import TERMINAL, JobStatus, iso
from core.settings import Settings
from workers.celery_app import DELIVER_WEBHOOK_TASK
from workers.job_store import RedisJobStore, utcnow

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 to 64
PREVIOUS_SECRET_GRACE_S = 24 * 3600
MAX_URL_CHARS = 2048
EVENT_STATUSES = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- events and delivery records ---------------------------------------------------------------
class EventLinks(BaseModel):
    self_: str = Field(serialization_alias="self")
    result: str | None = None


class EventData(BaseModel):
    id: str
    kind: str  # the job's analysis kind, or "batch"
    status: str
    links: EventLinks
    counts: dict[str, int] | None = None  # batches: their jobs by status


class WebhookEvent(BaseModel):
    """The body every callbackUrl receives: ids, status and links; no patient data, no images."""

    type: Literal["job.succeeded", "job.failed", "job.cancelled", "batch.completed"]
    timestamp: str
    data: EventData

    def body(self) -> str:
        return json.dumps(self.model_dump(by_alias=True, exclude_none=True), separators=(",", ":"))


class Delivery(BaseModel):
    """What the delivery task carries: one event for one URL, the same bytes on every attempt."""

    event_id: str
    type: str
    client: str
    url: str
    subject: Literal["job", "batch"]
    subject_id: str
    payload: str
    first_at: float  # when the event was published; retries stop DERMQ_WEBHOOK_RETRY_SECONDS after


Outcome = Literal["delivered", "retrying", "failed", "refused"]


class DeliveryAttempt(BaseModel):
    """One POST to a callbackUrl, as GET /jobs/{id}/deliveries lists it."""

    eventId: str
    type: str
    attempt: int
    url: str
    attemptedAt: str
    durationMs: float
    statusCode: int | None = None
    error: str | None = None
    outcome: Outcome
    nextAttemptAt: str | None = None


# --- signing -----------------------------------------------------------------------------------
def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def sign(secret: str, msg_id: str, timestamp: int, payload: str) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{payload}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(signing_secrets: list[str], msg_id: str, payload: str, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        # Space-separated signatures: one per secret still valid (current first).
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, payload) for s in signing_secrets),
    }


# --- the account's secret and default URL (in Redis: the API and the workers both read it) -----
class AccountWebhook(BaseModel):
    url: str | None = None
    secret: str
    previousSecretValidUntil: str | None = None


class AccountWebhooks:
    """Per-account webhook settings; kept without expiry beside the job records."""

    def __init__(self, r: redis.Redis, prefix: str = "dermq"):
        self.r = r
        self.prefix = prefix

    def _key(self, client: str) -> str:
        return f"{self.prefix}:account:{client}:webhook"

    def _raw(self, client: str) -> dict[str, str]:
        key = self._key(client)
        raw = self.r.hgetall(key)
        if not raw.get("secret"):
            self.r.hsetnx(key, "secret", new_secret())  # the first reader creates it; a racing one keeps it
            raw = self.r.hgetall(key)
        return raw

    def get(self, client: str) -> AccountWebhook:
        raw = self._raw(client)
        until = float(raw.get("previous_until") or 0)
        return AccountWebhook(url=raw.get("url") or None, secret=raw["secret"],
                              previousSecretValidUntil=iso(until) if until > utcnow() else None)

    def default_url(self, client: str) -> str | None:
        return self.r.hget(self._key(client), "url") or None

    def update(self, client: str, *, url: str | None = None, set_url: bool = False, rotate: bool = False) -> AccountWebhook:
        raw = self._raw(client)
        fields: dict[str, str] = {}
        if set_url:
            fields["url"] = url or ""
        if rotate:
            fields.update(secret=new_secret(), previous_secret=raw["secret"],
                          previous_until=repr(utcnow() + PREVIOUS_SECRET_GRACE_S))
        if fields:
            self.r.hset(self._key(client), mapping=fields)
        return self.get(client)

    def signing_secrets(self, client: str) -> list[str]:
        raw = self._raw(client)
        keys = [raw["secret"]]
        if raw.get("previous_secret") and float(raw.get("previous_until") or 0) > utcnow():
            keys.append(raw["previous_secret"])
        return keys


# --- the server-side request forgery guard -----------------------------------------------------
class UnsafeUrl(ValueError):
    """A callbackUrl dermq refuses to call."""


class Unresolvable(UnsafeUrl):
    """The host does not resolve (now): refused when given, retried when delivering."""


def _judged(address: IpAddress) -> list[IpAddress]:
    """The addresses that decide: an IPv4-mapped one is its IPv4 address (where it connects); one
    carrying IPv4 addresses (6to4, Teredo) must pass along with each of them."""
    if not isinstance(address, ipaddress.IPv6Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    return [address, *(a for a in (address.sixtofour, *(address.teredo or ())) if a is not None)]


def _not_public(address: IpAddress) -> str | None:
    """Why an address is not a public unicast one, or None."""
    for label, test in (("unspecified", address.is_unspecified), ("multicast", address.is_multicast),
                        ("loopback", address.is_loopback), ("link-local", address.is_link_local),
                        ("private", address.is_private), ("reserved", address.is_reserved),
                        ("non-public", not address.is_global)):
        if test:
            return label
    return None


def refusal(address: IpAddress, settings: Settings) -> str | None:
    """Why dermq will not connect to `address` under these settings, or None."""
    for candidate in _judged(address):
        why = _not_public(candidate)
        if why is None:
            continue
        if why in ("unspecified", "multicast"):
            return why  # never a receiver, whatever is allowed
        if settings.webhook_allow_private or any(candidate in net for net in settings.webhook_networks
                                                 if net.version == candidate.version):
            continue
        return why
    return None


def parse_url(url: str) -> httpx.URL:
    """The URL if its form is acceptable (http/https, a host, no credentials); no lookup."""
    if len(url) > MAX_URL_CHARS:
        raise UnsafeUrl(f"callbackUrl is longer than {MAX_URL_CHARS} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise UnsafeUrl("callbackUrl is not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise UnsafeUrl("callbackUrl must be an http:// or https:// URL")
    if not parsed.host:
        raise UnsafeUrl("callbackUrl has no host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise UnsafeUrl("callbackUrl has an invalid port")
    if parsed.userinfo:
        raise UnsafeUrl("callbackUrl must not carry credentials; receivers verify the webhook-signature instead")
    return parsed


def check_url(url: str, settings: Settings) -> list[IpAddress]:
    """The addresses `url`'s host resolves to, all of them allowed; else UnsafeUrl (Unresolvable)."""
    parsed = parse_url(url)
    try:
        infos = socket.getaddrinfo(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:  # ValueError: a name no resolver takes
        raise Unresolvable(f"callbackUrl host {parsed.host!r} does not resolve ({exc})") from None
    addresses: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])  # drop an IPv6 zone
        if address not in addresses:
            addresses.append(address)
    # Every address, not just the first: a name answering both public and private ones is refused.
    for address in addresses:
        why = refusal(address, settings)
        if why is not None:
            raise UnsafeUrl(
                f"callbackUrl host {parsed.host!r} is {address}, a {why} address; dermq calls only public addresses "
                "unless the operator allows others (DERMQ_WEBHOOK_ALLOW_PRIVATE, DERMQ_WEBHOOK_ALLOWED_CIDRS)"
            )
    if not addresses:
        raise Unresolvable(f"callbackUrl host {parsed.host!r} has no address")
    return addresses


# --- publishing an event once ------------------------------------------------------------------
def _links(settings: Settings, path: str, result: str | None) -> EventLinks:
    base = (settings.public_url or "").rstrip("/")
    return EventLinks(self_=base + path, result=base + result if result else None)


class Notifier:
    """Publishes the event of a finished job or batch, once, to the webhook queue."""

    def __init__(self, jobs: RedisJobStore, celery: Celery, settings: Settings):
        self.jobs = jobs
        self.celery = celery
        self.settings = settings

    def job_finished(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.status not in EVENT_STATUSES:
            return
        if job.callback_url:
            result = f"/jobs/{job.id}/result" if job.status is JobStatus.succeeded else None
            event = WebhookEvent(
                type=f"job.{job.status.value}", timestamp=iso(job.finished_at or utcnow()),
                data=EventData(id=job.id, kind=job.kind, status=job.status.value,
                               links=_links(self.settings, f"/jobs/{job.id}", result)),
            )
            self._publish(job.client, job.callback_url, "job", job.id, event)
        if job.batch_id:
            self.batch_changed(job.batch_id)

    def batch_changed(self, batch_id: str) -> None:
        """Publish `batch.completed` once every job of the batch is terminal (a vanished record counts)."""
        batch = self.jobs.get_batch(batch_id)
        if batch is None or not batch.callback_url:
            return
        records = self.jobs.get_many(batch.job_ids)
        if not all(j is None or j.status in TERMINAL for j in records):
            return
        counts = Counter(j.status.value if j is not None else JobStatus.expired.value for j in records)
        finished = [j.finished_at for j in records if j is not None and j.finished_at]
        event = WebhookEvent(
            type="batch.completed", timestamp=iso(max(finished, default=utcnow())),
            data=EventData(id=batch.id, kind="batch", status="completed",
                           links=_links(self.settings, f"/batches/{batch.id}", f"/batches/{batch.id}/results"),
                           counts={s.value: counts.get(s.value, 0) for s in JobStatus}),
        )
        self._publish(batch.client, batch.callback_url, "batch", batch.id, event)

    def _publish(self, client: str, url: str, subject: Literal["job", "batch"], subject_id: str,
                 event: WebhookEvent) -> None:
        event_id = "msg_" + uuid.uuid4().hex
        claim = f"{self.jobs.prefix}:webhook:event:{subject}:{subject_id}"
        if not self.jobs.r.set(claim, event_id, nx=True, ex=self.jobs.record_ttl):
            return  # another path published it
        delivery = Delivery(event_id=event_id, type=event.type, client=client, url=url, subject=subject,
                            subject_id=subject_id, payload=event.body(), first_at=utcnow())
        try:
            self.celery.send_task(DELIVER_WEBHOOK_TASK, args=[delivery.model_dump()],
                                  queue=self.settings.queue_webhooks, task_id=event_id)
        except Exception:
            self.jobs.r.delete(claim)  # unpublished: let the next path that sees the end try again
            raise


def notify_safely(notify: Any, *args: Any) -> None:
    """Events are a side effect: failing to publish one must never fail the job or the request."""
    try:
        notify(*args)
    except Exception as exc:
        log.warning("could not publish the webhook event for %s: %s", args, exc)


# --- delivery log ------------------------------------------------------------------------------
class DeliveryLog:
    def __init__(self, jobs: RedisJobStore):
        self.jobs = jobs

    def _key(self, subject: str, subject_id: str) -> str:
        return f"{self.jobs.prefix}:deliveries:{subject}:{subject_id}"

    def claim_attempt(self, event_id: str, attempt: int) -> bool:
        """False for a second delivery of the same attempt (the broker redelivered a held retry)."""
        key = f"{self.jobs.prefix}:webhook:attempt:{event_id}:{attempt}"
        return bool(self.jobs.r.set(key, "1", nx=True, ex=self.jobs.record_ttl))

    def record(self, subject: str, subject_id: str, attempt: DeliveryAttempt) -> None:
        key = self._key(subject, subject_id)
        pipe = self.jobs.r.pipeline(transaction=True)
        pipe.rpush(key, attempt.model_dump_json())
        pipe.expire(key, self.jobs.record_ttl)  # as long as the job record itself
        pipe.execute()

    def list(self, subject: str, subject_id: str) -> list[DeliveryAttempt]:
        return [DeliveryAttempt.model_validate_json(raw) for raw in self.jobs.r.lrange(self._key(subject, subject_id), 0, -1)]


# --- one attempt, and the retry schedule -------------------------------------------------------
def retry_countdown(settings: Settings, retries: int, first_at: float, now: float) -> float | None:
    """Seconds until the next attempt after `retries` retries, or None once the retry time is spent."""
    # Redis redelivers a message still held after the visibility timeout, and a retry waits in its worker
    # unacknowledged: a delay under half of it keeps retries from being delivered twice (claim_attempt
    # drops any that still are).
    cap = min(settings.webhook_backoff_max_s, settings.visibility_timeout_s / 2)
    countdown = float(get_exponential_backoff_interval(settings.webhook_backoff_s, retries, cap, full_jitter=False))
    if now + countdown > first_at + settings.webhook_retry_seconds:
        return None
    return countdown


def post_event(delivery: Delivery, addresses: list[IpAddress], signing_secrets: list[str],
               settings: Settings) -> tuple[int | None, str | None]:
    """POST the event to the checked address; (status code, error)."""
    url = httpx.URL(delivery.url)
    target = url.copy_with(host=str(addresses[0]))
    headers = {
        "Host": url.netloc.decode("ascii"),
        "Content-Type": "application/json",
        "User-Agent": f"dermq-webhooks/{__version__}",
        **signed_headers(signing_secrets, delivery.event_id, delivery.payload),
    }
    extensions: dict[str, Any] = {}
    try:
        ipaddress.ip_address(url.host)
    except ValueError:
        if url.scheme == "https":
            extensions["sni_hostname"] = url.host  # TLS checks the name, though we connect to the address
    timeout = httpx.Timeout(settings.webhook_timeout_s, connect=min(3.0, settings.webhook_timeout_s))
    try:
        # No proxies from the environment: they would make the connection we checked someone else's.
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as http:
            with http.stream("POST", target, content=delivery.payload.encode(), headers=headers,
                             extensions=extensions) as response:
                status = response.status_code  # the answer's body is not read: it could be anything
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= status < 300:
        return status, None
    return status, "redirects are not followed" if 300 <= status < 400 else f"HTTP {status}"


def attempt_delivery(delivery: Delivery, attempt: int, *, settings: Settings, accounts: AccountWebhooks,
                     log_: DeliveryLog, retries: int) -> float | None:
    """One attempt, recorded; returns the countdown to the next one, or None when done."""
    started, wall = time.perf_counter(), utcnow()
    status: int | None = None
    error: str | None
    refused = False
    try:
        addresses = check_url(delivery.url, settings)  # again: the name may point elsewhere now
    except Unresolvable as exc:
        error = str(exc)
    except UnsafeUrl as exc:
        error, refused = str(exc), True
    else:
        status, error = post_event(delivery, addresses, accounts.signing_secrets(delivery.client), settings)
    countdown = None
    outcome: Outcome
    if error is None:
        outcome = "delivered"
    elif refused:
        outcome = "refused"  # the operator's rules say no: retrying cannot change that
    else:
        countdown = retry_countdown(settings, retries, delivery.first_at, utcnow())
        outcome = "retrying" if countdown is not None else "failed"
    log_.record(delivery.subject, delivery.subject_id, DeliveryAttempt(
        eventId=delivery.event_id, type=delivery.type, attempt=attempt, url=delivery.url, attemptedAt=iso(wall),
        durationMs=round((time.perf_counter() - started) * 1000, 1), statusCode=status, error=error,
        outcome=outcome, nextAttemptAt=iso(utcnow() + countdown) if countdown is not None else None,
    ))
    return countdown
