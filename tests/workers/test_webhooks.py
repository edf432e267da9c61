"""Webhook signing, the server-side request forgery guard, and delivery bookkeeping (workers/webhooks.py).

Signatures are checked with the Standard Webhooks reference implementation; deliveries go
to a real receiver on loopback and are recorded in a real Redis.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import socket
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import redis
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from core.jobs import AnalysisKind, Batch, DiagnosisSpec, Job, JobStatus
from core.settings import Settings
from support import WebhookReceiver
from workers.celery_app import create_celery
from workers.job_client import JobClient, Submission
from workers.job_store import RedisJobStore, utcnow
from workers.storage import LocalObjectStore
from workers.webhooks import (
    AccountWebhooks,
    Delivery,
    DeliveryLog,
    Notifier,
    Unresolvable,
    UnsafeUrl,
    attempt_delivery,
    check_url,
    new_secret,
    retry_countdown,
    signed_headers,
)

# Each test its own key prefix and queue in the shared test database: nothing to flush, nothing shared.


# --- signing ------------------------------------------------------------------------------------
def test_secret_has_the_standard_webhooks_form() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_secret() != secret


def test_signature_verifies_with_the_reference_implementation() -> None:
    secret, payload = new_secret(), json.dumps({"type": "job.succeeded", "data": {"id": "j1"}})
    headers = signed_headers([secret], "msg_1", payload)
    assert Webhook(secret).verify(payload, headers) == json.loads(payload)
    with pytest.raises(WebhookVerificationError):  # another body
        Webhook(secret).verify(payload.replace("j1", "j2"), headers)
    with pytest.raises(WebhookVerificationError):  # another secret
        Webhook(new_secret()).verify(payload, headers)
    with pytest.raises(WebhookVerificationError):  # a replay from long ago
        Webhook(secret).verify(payload, signed_headers([secret], "msg_1", payload, int(time.time()) - 3600))


def test_every_listed_secret_signs_so_a_rotation_is_seamless() -> None:
    old, new, payload = new_secret(), new_secret(), "{}"
    headers = signed_headers([new, old], "msg_2", payload)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(payload, headers)
    Webhook(old).verify(payload, headers)


def test_account_secret_is_created_once_and_rotates(store: RedisJobStore) -> None:
    accounts = AccountWebhooks(store.r, store.prefix)
    first = accounts.get("clinic")
    assert first.secret.startswith("whsec_") and first.url is None
    assert accounts.get("clinic").secret == first.secret and accounts.get("other").secret != first.secret
    rotated = accounts.update("clinic", rotate=True)
    assert rotated.secret != first.secret and rotated.previousSecretValidUntil is not None
    assert accounts.signing_secrets("clinic") == [rotated.secret, first.secret]
    assert accounts.update("clinic", url="https://8.8.8.8/hook", set_url=True).url == "https://8.8.8.8/hook"
    assert accounts.update("clinic").url == "https://8.8.8.8/hook"  # nothing given: nothing changed
    assert accounts.update("clinic", url=None, set_url=True).url is None


# --- the forgery guard --------------------------------------------------------------------------
REFUSED = [
    "http://127.0.0.1/hook",
    "http://127.0.0.1:6379/",
    "http://localhost:8080/hook",  # a name that resolves to loopback
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0x7f.1/",  # and in hexadecimal shorthand
    "http://10.1.2.3/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata, link-local
    "http://100.64.0.1/",  # shared address space: not public
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fd12:3456::1]/",
    "http://[::ffff:10.0.0.1]/",  # IPv4-mapped private address
    "http://[::ffff:127.0.0.1]/",
    "http://[2002:7f00:1::1]/",  # 6to4 around 127.0.0.1
    "http://[ff02::1]/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_non_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="address; dermq calls only public addresses"):
        check_url(url, Settings())


@pytest.mark.parametrize("url, reason", [
    ("ftp://8.8.8.8/", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("gopher://8.8.8.8:70/", "http:// or https://"),
    ("http://user:secret@8.8.8.8/", "credentials"),
    ("not a url", "http:// or https://"),
    ("http:///path-only", "no host"),
    ("http://8.8.8.8:99999/", "invalid port"),
    ("https://8.8.8.8/" + "a" * 2100, "longer than"),
])
def test_malformed_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl, match=reason):
        check_url(url, Settings())


def test_a_host_name_that_resolves_to_a_private_address_is_refused() -> None:
    name = socket.gethostname()  # a container's own name resolves to its (private) address
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    except socket.gaierror:
        pytest.skip("this machine's name does not resolve")
    if all(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        pytest.skip("this machine's name resolves to public addresses only")
    with pytest.raises(UnsafeUrl, match="dermq calls only public addresses"):
        check_url(f"https://{name}/hook", Settings())


def test_unresolvable_names_are_told_apart() -> None:
    with pytest.raises(Unresolvable, match="does not resolve"):
        check_url("https://no-such-host.invalid/hook", Settings())


def test_public_addresses_pass() -> None:
    assert [str(a) for a in check_url("https://8.8.8.8/hook", Settings())] == ["8.8.8.8"]
    assert [str(a) for a in check_url("http://[2001:4860:4860::8888]:8443/x", Settings())] == ["2001:4860:4860::8888"]


def test_operators_can_allow_private_addresses() -> None:
    allow_all = Settings(webhook_allow_private=True)
    for url in ("http://127.0.0.1/", "http://[::1]/", "http://10.1.2.3/", "http://localhost/"):
        check_url(url, allow_all)
    for url in ("http://224.0.0.1/", "http://0.0.0.0/", "http://[ff02::1]/"):  # never receivers
        with pytest.raises(UnsafeUrl):
            check_url(url, allow_all)

    some = Settings(webhook_allowed_cidrs="10.1.0.0/16, fd12::/16")
    check_url("http://10.1.2.3/", some)
    check_url("http://[fd12:3456::1]/", some)
    check_url("http://[::ffff:10.1.2.3]/", some)  # the mapped form of an allowed address
    for url in ("http://10.2.0.1/", "http://127.0.0.1/", "http://[fd13::1]/"):
        with pytest.raises(UnsafeUrl):
            check_url(url, some)


def test_a_bad_allow_list_fails_at_start_up() -> None:
    with pytest.raises(ValueError):
        Settings(webhook_allowed_cidrs="10.0.0.0/33")


# --- retries ------------------------------------------------------------------------------------
def test_backoff_doubles_up_to_its_cap_and_stops_when_the_time_is_spent() -> None:
    settings = Settings(webhook_backoff_s=1, webhook_backoff_max_s=8, webhook_retry_seconds=30,
                        visibility_timeout_s=300)
    first, now, delays = 1000.0, 1000.0, []
    while (countdown := retry_countdown(settings, len(delays), first, now)) is not None:
        delays.append(countdown)
        now += countdown
    assert delays == [1, 2, 4, 8, 8]  # 23 s; the next 8 would end past the 30 s
    assert now + 8 > first + 30


def test_backoff_stays_under_half_the_visibility_timeout() -> None:
    # A retry longer than the broker's redelivery window would be delivered twice.
    settings = Settings(webhook_backoff_s=60, webhook_backoff_max_s=600, visibility_timeout_s=40)
    assert retry_countdown(settings, 5, 0.0, 0.0) == 20


# --- one attempt, against a real receiver -------------------------------------------------------
def _delivery(url: str, event_id: str = "msg_test") -> Delivery:
    payload = json.dumps({"type": "job.succeeded", "timestamp": "2025-01-01T00:00:00Z",
                          "data": {"id": "job-1", "kind": "diagnosis-support", "status": "succeeded",
                                   "links": {"self": "/jobs/job-1", "result": "/jobs/job-1/result"}}})
    return Delivery(event_id=event_id, type="job.succeeded", client="clinic", url=url, subject="job",
                    subject_id="job-1", payload=payload, first_at=utcnow())


@pytest.fixture()
def store(redis_url: str) -> Iterator[RedisJobStore]:
    jobs = RedisJobStore(redis.Redis.from_url(redis_url, decode_responses=True), ttl_s=3600,
                         prefix=f"test-{uuid.uuid4().hex}")
    yield jobs
    for key in jobs.r.scan_iter(match=jobs.prefix + "*"):
        jobs.r.delete(key)


LOOPBACK = Settings(webhook_allowed_cidrs="127.0.0.1/32", webhook_backoff_s=0.5, webhook_retry_seconds=60)


def test_a_failed_attempt_is_recorded_and_retried_then_delivered(store: RedisJobStore) -> None:
    accounts, log_ = AccountWebhooks(store.r, store.prefix), DeliveryLog(store)
    secret = accounts.get("clinic").secret
    with WebhookReceiver({"/hook": [500]}) as receiver:
        delivery = _delivery(receiver.url())
        assert attempt_delivery(delivery, 1, settings=LOOPBACK, accounts=accounts, log_=log_, retries=0) == 0.5
        assert attempt_delivery(delivery, 2, settings=LOOPBACK, accounts=accounts, log_=log_, retries=1) is None
        first, second = receiver.wait_for("/hook", 2)
    for request in (first, second):
        assert request["headers"]["webhook-id"] == "msg_test"  # one event, however many attempts
        Webhook(secret).verify(request["body"], request["headers"])
    records = log_.list("job", "job-1")
    assert [(a.attempt, a.statusCode, a.outcome) for a in records] == [(1, 500, "retrying"), (2, 204, "delivered")]
    assert records[0].error == "HTTP 500" and records[0].nextAttemptAt is not None and records[1].error is None
    assert all(a.durationMs >= 0 and a.eventId == "msg_test" for a in records)
    assert store.r.ttl(f"{store.prefix}:deliveries:job:job-1") > 3600  # kept as long as the job record


def test_an_unreachable_receiver_is_retried_until_the_time_is_spent(store: RedisJobStore) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    log_ = DeliveryLog(store)
    delivery = _delivery(url)
    countdown = attempt_delivery(delivery, 1, settings=LOOPBACK, accounts=AccountWebhooks(store.r, store.prefix), log_=log_,
                                 retries=0)
    assert countdown == 0.5
    spent = Settings(webhook_allowed_cidrs="127.0.0.1/32", webhook_retry_seconds=0)
    assert attempt_delivery(delivery, 2, settings=spent, accounts=AccountWebhooks(store.r, store.prefix), log_=log_,
                            retries=1) is None
    records = log_.list("job", "job-1")
    assert [(a.outcome, a.statusCode) for a in records] == [("retrying", None), ("failed", None)]
    assert "ConnectError" in (records[0].error or "")


def test_a_url_refused_at_delivery_time_is_not_called(store: RedisJobStore) -> None:
    # Allowed when given, refused now (the rules changed, or the name points elsewhere): no request, no retry.
    with WebhookReceiver() as receiver:
        log_ = DeliveryLog(store)
        assert attempt_delivery(_delivery(receiver.url()), 1, settings=Settings(), accounts=AccountWebhooks(store.r, store.prefix),
                                log_=log_, retries=0) is None
        time.sleep(0.2)
        assert receiver.received == []
    (record,) = log_.list("job", "job-1")
    assert record.outcome == "refused" and "loopback" in (record.error or "")


def test_redirects_are_not_followed(store: RedisJobStore) -> None:
    with WebhookReceiver({"/hook": [307]}) as receiver:
        log_ = DeliveryLog(store)
        assert attempt_delivery(_delivery(receiver.url()), 1, settings=LOOPBACK, accounts=AccountWebhooks(store.r, store.prefix),
                                log_=log_, retries=0) is not None
        receiver.wait_for("/hook")
    (record,) = log_.list("job", "job-1")
    assert (record.statusCode, record.outcome, record.error) == (307, "retrying", "redirects are not followed")


def test_each_attempt_is_made_once_even_if_the_broker_delivers_it_twice(store: RedisJobStore) -> None:
    log_ = DeliveryLog(store)
    assert log_.claim_attempt("msg_x", 1) and not log_.claim_attempt("msg_x", 1)
    assert log_.claim_attempt("msg_x", 2)


# --- one event per job and per batch ------------------------------------------------------------
def _job(store: RedisJobStore, job_id: str, *, callback: str | None, batch: str | None = None) -> None:
    store.create(Job(id=job_id, client="clinic", kind="diagnosis-support", status=JobStatus.queued,
                     created_at=utcnow(), queue="dermq.interactive", spec={}, batch_id=batch, callback_url=callback))


def _notifier(store: RedisJobStore, redis_url: str, **settings: str) -> Notifier:
    config = Settings(redis_url=redis_url, queue_webhooks=store.prefix + ".webhooks", **settings)
    return Notifier(store, create_celery(config), config)


def _published(store: RedisJobStore) -> list[Delivery]:
    """The delivery tasks waiting on the webhook queue (Celery's Redis transport: a list per queue)."""
    messages = [json.loads(m) for m in reversed(store.r.lrange(store.prefix + ".webhooks", 0, -1))]  # LPUSHed
    bodies = [json.loads(base64.b64decode(m["body"])) for m in messages]
    return [Delivery.model_validate(args[0]) for args, _, _ in bodies]


def test_a_finished_job_publishes_its_event_once(store: RedisJobStore, redis_url: str) -> None:
    notifier = _notifier(store, redis_url, public_url="https://dermq.example.org/")
    _job(store, "j-ok", callback="https://8.8.8.8/hook")
    _job(store, "j-quiet", callback=None)
    _job(store, "j-cancelled", callback="https://8.8.8.8/hook")
    notifier.job_finished("j-ok")  # still queued: nothing yet
    assert _published(store) == []
    store.finish("j-ok", JobStatus.succeeded, result_key="results/x.json")
    store.finish("j-quiet", JobStatus.succeeded, result_key="results/y.json")
    store.finish("j-cancelled", JobStatus.cancelled)
    for job_id in ("j-ok", "j-ok", "j-quiet", "j-cancelled"):  # every path that sees the end calls it
        notifier.job_finished(job_id)
    ok, cancelled = _published(store)
    assert (ok.type, ok.subject_id, ok.url, ok.client) == ("job.succeeded", "j-ok", "https://8.8.8.8/hook", "clinic")
    event = json.loads(ok.payload)
    assert event["data"] == {"id": "j-ok", "kind": "diagnosis-support", "status": "succeeded",
                             "links": {"self": "https://dermq.example.org/jobs/j-ok",
                                       "result": "https://dermq.example.org/jobs/j-ok/result"}}
    assert json.loads(cancelled.payload)["data"]["links"] == {"self": "https://dermq.example.org/jobs/j-cancelled"}
    assert cancelled.type == "job.cancelled" and ok.event_id != cancelled.event_id


def test_a_batch_publishes_once_all_its_jobs_are_done(store: RedisJobStore, redis_url: str) -> None:
    notifier = _notifier(store, redis_url)
    for job_id in ("b1", "b2"):
        _job(store, job_id, callback=None, batch="batch-1")
    store.create_batch(Batch(id="batch-1", client="clinic", created_at=utcnow(), job_ids=["b1", "b2"],
                             references=[None, None], callback_url="https://8.8.8.8/batch"))
    store.finish("b1", JobStatus.succeeded, result_key="results/b1.json")
    notifier.job_finished("b1")
    assert _published(store) == []  # b2 is still queued; the items themselves named no callbackUrl
    store.finish("b2", JobStatus.failed, error="image could not be processed")
    notifier.job_finished("b2")
    notifier.batch_changed("batch-1")
    (event,) = _published(store)
    body = json.loads(event.payload)
    assert (event.type, event.subject, event.subject_id) == ("batch.completed", "batch", "batch-1")
    assert body["data"]["counts"]["succeeded"] == 1 and body["data"]["counts"]["failed"] == 1
    assert body["data"]["links"] == {"self": "/batches/batch-1", "result": "/batches/batch-1/results"}


def _job_client(store: RedisJobStore, redis_url: str, tmp_path: Path) -> JobClient:
    q = store.prefix
    config = Settings(redis_url=redis_url, queue_webhooks=q + ".webhooks", queue_interactive=q + ".interactive",
                      queue_batch=q + ".batch")
    return JobClient(config, LocalObjectStore(tmp_path), store, create_celery(config))


def test_a_cancellation_publishes_job_cancelled(store: RedisJobStore, redis_url: str, tmp_path: Path) -> None:
    jobs = _job_client(store, redis_url, tmp_path)
    _job(store, "j-1", callback="https://8.8.8.8/hook")
    assert jobs.cancel("clinic", "j-1").status is JobStatus.cancelled
    (event,) = _published(store)
    assert event.type == "job.cancelled" and json.loads(event.payload)["data"]["status"] == "cancelled"


def test_the_account_default_serves_requests_but_not_batch_items(store: RedisJobStore, redis_url: str,
                                                                  tmp_path: Path) -> None:
    jobs = _job_client(store, redis_url, tmp_path)
    jobs.webhooks.update("clinic", url="https://8.8.8.8/default", set_url=True)
    plain = Submission(kind=AnalysisKind.diagnosis, spec=DiagnosisSpec())
    own = Submission(kind=AnalysisKind.diagnosis, spec=DiagnosisSpec(), callback_url="https://8.8.4.4/own")
    standalone, _ = jobs.submit("clinic", plain, interactive=True)
    item, _ = jobs.submit("clinic", plain, interactive=False, batch_id="b")
    item_own, _ = jobs.submit("clinic", own, interactive=False, batch_id="b")
    assert [store.get(j.id).callback_url for j in (standalone, item, item_own)] == [
        "https://8.8.8.8/default", None, "https://8.8.4.4/own"]
    batch = jobs.create_batch("clinic", "b", [item.id, item_own.id], [None, None])
    assert batch.callback_url == "https://8.8.8.8/default"
    assert _published(store) == []  # its jobs are still queued
    # A callbackUrl is part of what an Idempotency-Key protects.
    assert own.fingerprint() != plain.fingerprint()


def test_the_documented_receiver_check_accepts_dermq_signatures() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    (code,) = [block for block in re.findall(r"```python\n(.*?)```", page, re.S) if "def verify" in block]
    namespace: dict = {}
    exec(compile(code, "docs/webhooks.md", "exec"), namespace)
    verify = namespace["verify"]
    old, new, body = new_secret(), new_secret(), b'{"type":"job.failed"}'
    headers = signed_headers([new, old], "msg_doc", body.decode())
    assert verify(new, headers, body) and verify(old, headers, body)
    assert not verify(new, headers, body + b" ")
    assert not verify(new_secret(), headers, body)
    assert not verify(new, signed_headers([new], "msg_doc", body.decode(), int(time.time()) - 600), body)
