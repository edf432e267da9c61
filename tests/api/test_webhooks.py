"""Signed webhooks end to end: API and worker processes over HTTP, a receiver on loopback.

The stack allows exactly 127.0.0.1 (DERMQ_WEBHOOK_ALLOWED_CIDRS), so the test's receiver is
reachable while every other non-public address is still refused. Every event is verified
with the Standard Webhooks reference implementation.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Iterator

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from support import (
    OTHER_PASSWORD,
    OTHER_USER,
    SAMPLE_IMAGES,
    Service,
    WebhookReceiver,
    attachment,
    own_database,
    running_service,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ASYNC = {"Prefer": "respond-async"}
ARRIVAL_S = 2.0  # an event arrives within this time of its job's end


@pytest.fixture(scope="module")
def hooked(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # Its own Redis database: no other stack's worker takes these jobs or deliveries.
    with running_service(own_database(redis_url, 15), tmp_path_factory.mktemp("webhook-data"),
                         DERMQ_WEBHOOK_ALLOWED_CIDRS="127.0.0.1/32", DERMQ_WEBHOOK_BACKOFF_S="0.3") as svc:
        yield svc


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver({"/flaky": [500, 503]}) as r:
        yield r


@pytest.fixture()
def api(hooked: Service) -> Iterator[httpx.Client]:
    with hooked.client() as client:
        yield client


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _diagnose(api: httpx.Client, callback: str | None, image: int = 0) -> str:
    body: dict = {"payload": [attachment(SAMPLE_IMAGES[image])]}
    if callback is not None:
        body["callbackUrl"] = callback
    r = api.post("/diagnosis-support", json=body, headers=ASYNC)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _verified(api: httpx.Client, request: dict) -> dict:
    secret = api.get("/account/webhook").json()["secret"]
    return Webhook(secret).verify(request["body"], request["headers"])


def test_a_finished_job_posts_a_signed_event_within_two_seconds(api: httpx.Client, receiver: WebhookReceiver) -> None:
    job_id = _diagnose(api, receiver.url("/job"))
    (request,) = receiver.wait_for("/job")
    event = _verified(api, request)
    job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    assert event["type"] == "job.succeeded" and _ts(event["timestamp"]) == pytest.approx(_ts(job["finishedAt"]))
    assert event["data"] == {"id": job_id, "kind": "diagnosis-support", "status": "succeeded",
                             "links": {"self": f"/jobs/{job_id}", "result": f"/jobs/{job_id}/result"}}
    lag = request["at"] - _ts(job["finishedAt"])
    print(f"webhook arrived {lag * 1000:.0f} ms after the job finished")
    assert 0 <= lag < ARRIVAL_S
    assert len(request["body"]) < 1000  # ids and links only: no report, no image
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["webhook-id"].startswith("msg_")
    assert api.get(f"/jobs/{job_id}/result").status_code == 200  # the link leads to the report

    (attempt,) = api.get(f"/jobs/{job_id}/deliveries").json()["items"]
    assert attempt["outcome"] == "delivered" and attempt["statusCode"] == 204 and attempt["attempt"] == 1
    assert attempt["eventId"] == request["headers"]["webhook-id"] and attempt["url"] == receiver.url("/job")


def test_a_failing_receiver_gets_retries_and_each_is_recorded(api: httpx.Client, receiver: WebhookReceiver) -> None:
    job_id = _diagnose(api, receiver.url("/flaky"), image=1)
    requests = receiver.wait_for("/flaky", 3)
    assert [r["status"] for r in requests] == [500, 503, 204]
    assert len({r["headers"]["webhook-id"] for r in requests}) == 1  # the same event each time
    assert [_verified(api, r)["data"]["id"] for r in requests] == [job_id] * 3
    # Backoff: the second retry waited about twice as long as the first.
    first_wait, second_wait = requests[1]["at"] - requests[0]["at"], requests[2]["at"] - requests[1]["at"]
    assert first_wait >= 0.25 and second_wait >= 0.5

    attempts = api.get(f"/jobs/{job_id}/deliveries").json()["items"]
    assert [(a["attempt"], a["statusCode"], a["outcome"]) for a in attempts] == [
        (1, 500, "retrying"), (2, 503, "retrying"), (3, 204, "delivered")]
    assert attempts[0]["error"] == "HTTP 500" and attempts[0]["nextAttemptAt"] is not None


@pytest.mark.parametrize("url", ["http://10.0.0.7/hook", "http://[::1]:8080/hook", "http://127.0.0.2/hook",
                                 "http://169.254.169.254/latest/meta-data/", "ftp://127.0.0.1/"])
def test_refused_callback_urls_are_a_422(api: httpx.Client, url: str) -> None:
    body = {"payload": [attachment(SAMPLE_IMAGES[0])], "callbackUrl": url}
    r = api.post("/diagnosis-support", json=body, headers=ASYNC)
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "callbackUrl"] and item["type"] == "callback_url_refused"
    batch = api.post("/batches", json={"items": [{"kind": "diagnosis-support", "body": body}]})
    assert batch.status_code == 422 and batch.json()["detail"][0]["loc"] == ["body", "items", 0, "body", "callbackUrl"]
    batch = api.post("/batches", json={"callbackUrl": url, "items": [{"kind": "diagnosis-support", "body": {
        "payload": [attachment(SAMPLE_IMAGES[0])]}}]})
    assert batch.status_code == 422 and batch.json()["detail"][0]["loc"] == ["body", "callbackUrl"]
    account = api.put("/account/webhook", json={"url": url})
    assert account.status_code == 422 and account.json()["detail"][0]["loc"] == ["body", "url"]


def test_a_batch_posts_one_event_when_all_its_jobs_are_done(api: httpx.Client, hooked: Service,
                                                            receiver: WebhookReceiver) -> None:
    items = [
        {"kind": "diagnosis-support", "reference": "quiet", "body": {"payload": [attachment(SAMPLE_IMAGES[2])]}},
        {"kind": "diagnosis-support", "reference": "own",
         "body": {"payload": [attachment(SAMPLE_IMAGES[3])], "callbackUrl": receiver.url("/item")}},
    ]
    r = api.post("/batches", json={"callbackUrl": receiver.url("/batch"), "items": items})
    assert r.status_code == 202, r.text
    batch_id = r.json()["id"]
    quiet_id, own_id = (j["id"] for j in r.json()["jobs"])

    (request,) = receiver.wait_for("/batch")
    event = _verified(api, request)
    assert event["type"] == "batch.completed"
    assert event["data"]["id"] == batch_id and event["data"]["status"] == "completed"
    assert event["data"]["counts"]["succeeded"] == 2
    assert event["data"]["links"] == {"self": f"/batches/{batch_id}", "result": f"/batches/{batch_id}/results"}
    batch = api.get(f"/batches/{batch_id}").json()
    assert batch["done"]
    last_end = max(_ts(j["finishedAt"]) for j in batch["jobs"])
    assert 0 <= request["at"] - last_end < ARRIVAL_S

    # Only the item that named its own callbackUrl sent a job event; the other is covered by the batch's.
    (item_request,) = receiver.wait_for("/item")
    assert _verified(api, item_request)["data"]["id"] == own_id
    assert api.get(f"/jobs/{quiet_id}/deliveries").json()["items"] == []
    assert [a["outcome"] for a in api.get(f"/batches/{batch_id}/deliveries").json()["items"]] == ["delivered"]
    assert len([r for r in receiver.received if r["path"] in ("/batch", "/item")]) == 2  # once each

    # Deliveries are the owner's: another client reads them as absent.
    with hooked.client(OTHER_USER, OTHER_PASSWORD) as other:
        assert other.get(f"/batches/{batch_id}/deliveries").status_code == 404
        assert other.get(f"/jobs/{own_id}/deliveries").status_code == 404
    assert api.get("/jobs/no-such-job/deliveries").status_code == 404


def test_the_account_default_url_and_secret_rotation(hooked: Service, receiver: WebhookReceiver) -> None:
    with hooked.client(OTHER_USER, OTHER_PASSWORD) as other:
        before = other.get("/account/webhook").json()
        assert before["url"] is None and before["secret"].startswith("whsec_")
        assert other.get("/account/webhook").json()["secret"] == before["secret"]  # stable until rotated
        updated = other.put("/account/webhook", json={"url": receiver.url("/default"), "rotateSecret": True}).json()
        assert updated["url"] == receiver.url("/default") and updated["secret"] != before["secret"]
        assert updated["previousSecretValidUntil"] is not None
        try:
            job_id = _diagnose(other, None, image=4)  # no callbackUrl: the account's default
            (request,) = receiver.wait_for("/default")
            # Signed with the new secret and, during the grace period, the previous one too.
            for secret in (updated["secret"], before["secret"]):
                assert Webhook(secret).verify(request["body"], request["headers"])["data"]["id"] == job_id
        finally:
            assert other.put("/account/webhook", json={"url": None}).json()["url"] is None
        assert other.get("/account/webhook").json()["secret"] == updated["secret"]  # clearing the URL keeps it


def test_jobs_without_a_callback_send_nothing(api: httpx.Client, receiver: WebhookReceiver) -> None:
    seen = len(receiver.received)
    job_id = _diagnose(api, None)
    deadline = time.monotonic() + 120
    while api.get(f"/jobs/{job_id}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.1)
    time.sleep(ARRIVAL_S)  # time enough for an event, were one to come
    assert api.get(f"/jobs/{job_id}/deliveries").json()["items"] == []
    assert len(receiver.received) == seen
