"""A replayed set of hand-made bad requests against the running service, over HTTP.

Every one must be a 4xx in the API's error shape, never a 5xx, and none may leave
anything behind: no job record for the account in Redis, no object under its inputs/.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from support import Service
from workers.job_store import RedisJobStore

pytestmark = pytest.mark.slow


def encode(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


NOISE = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
JPEG = encode(NOISE, "JPEG")
PNG = encode(NOISE, "PNG")


def huge_header_jpeg() -> bytes:
    """A valid small JPEG whose frame header claims 60000×60000 pixels (a decompression bomb)."""
    data = bytearray(JPEG)
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = (60000).to_bytes(2, "big") * 2
    return bytes(data)


def att(data: bytes | str, **extra: Any) -> dict[str, Any]:
    return {"contentAttachment": {"data": data if isinstance(data, str) else b64(data), **extra}}


GOOD = att(JPEG)
LOCAL = {"payload": GOOD, "bodySite": "armLeft", "knownCondition": {"conclusion": {"text": "psoriasis"}},
         "scoringSystem": {"apasi": {"questionnaireResponse": {"item": {"surface": 30}}}}}
ITEMS = ["scoringSystem", "apasi", "questionnaireResponse", "item"]
MANUAL = {"scoringSystem": {"pga": {"questionnaireResponse": {"item": {"erythema": 2, "desquamation": 2,
                                                                      "induration": 2}}}}}
DATA = ["body", "payload", 0, "contentAttachment", "data"]


def with_(base: dict, path: list, value: Any) -> dict:
    body = json.loads(json.dumps(base))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


def raw(text: str | bytes, content_type: str = "application/json") -> dict[str, Any]:
    return {"content": text.encode() if isinstance(text, str) else text, "headers": {"Content-Type": content_type}}


def diag(*payload: dict) -> dict[str, Any]:
    return {"json": {"payload": list(payload)}}


# (id, method, path, httpx keyword arguments, expected status, expected loc of the first error or None)
CASES: list[tuple[str, str, str, dict[str, Any], int, list | None]] = [
    # --- the JSON itself
    ("json-truncated", "POST", "/diagnosis-support", raw('{"payload": [{"contentAtt'), 422, None),
    ("json-trailing-garbage", "POST", "/diagnosis-support", raw('{"payload": []} {"x": 1}'), 422, None),
    ("json-nan-literal", "POST", "/diagnosis-support", raw('{"payload": NaN}'), 422, None),
    ("json-single-quotes", "POST", "/diagnosis-support", raw("{'payload': []}"), 422, None),
    ("json-not-utf8", "POST", "/diagnosis-support", raw(b'{"payload": "\xff\xfe"}'), 422, None),
    ("json-lone-surrogate-key", "POST", "/severity-assessment/manual", raw('{"scoringSystem": {"\\ud800": {}}}'),
     422, None),
    ("json-deep-nesting", "POST", "/batches", raw("[" * 20000 + "]" * 20000), 422, None),
    ("json-too-many-values", "POST", "/batches", raw("[" + "0," * 100_000 + "0]"), 413, ["body"]),
    ("json-top-level-array", "POST", "/diagnosis-support", raw("[]"), 422, ["body"]),
    ("json-null", "POST", "/diagnosis-support", raw("null"), 422, ["body"]),
    ("empty-body", "POST", "/diagnosis-support", raw(""), 422, ["body"]),
    ("text-plain-body", "POST", "/diagnosis-support", raw('{"payload": []}', "text/plain"), 422, ["body"]),
    ("form-body", "POST", "/diagnosis-support", {"data": {"payload": "x"}}, 422, ["body"]),
    # --- wrong shapes and types
    ("payload-missing", "POST", "/diagnosis-support", {"json": {}}, 422, ["body", "payload"]),
    ("payload-a-string", "POST", "/diagnosis-support", {"json": {"payload": "x"}}, 422, ["body", "payload"]),
    ("payload-of-numbers", "POST", "/diagnosis-support", {"json": {"payload": [1, 2]}}, 422, ["body", "payload", 0]),
    ("attachment-missing", "POST", "/diagnosis-support", diag({"title": "x"}), 422,
     ["body", "payload", 0, "contentAttachment"]),
    ("data-a-number", "POST", "/diagnosis-support", diag({"contentAttachment": {"data": 1e308}}), 422, DATA),
    ("data-null", "POST", "/diagnosis-support", diag({"contentAttachment": {"data": None}}), 422, DATA),
    ("data-nested-garbage", "POST", "/diagnosis-support", diag({"contentAttachment": {"data": [[[{"a": [[]]}]]]}}),
     422, DATA),
    ("content-type-a-number", "POST", "/diagnosis-support", diag(att(JPEG, contentType=123)), 422,
     ["body", "payload", 0, "contentAttachment", "contentType"]),
    ("title-too-long", "POST", "/diagnosis-support", diag(att(JPEG, title="x" * 501)), 422,
     ["body", "payload", 0, "contentAttachment", "title"]),
    # --- the image bytes
    ("data-empty", "POST", "/diagnosis-support", diag(att("")), 422, DATA),
    ("data-unicode", "POST", "/diagnosis-support", diag(att("ÿ€😀 Ω")), 422, DATA),
    ("data-bad-padding", "POST", "/diagnosis-support", diag(att("abc")), 422, DATA),
    ("data-uri", "POST", "/diagnosis-support", diag(att("data:image/jpeg;base64," + b64(JPEG))), 422, DATA),
    ("one-byte", "POST", "/diagnosis-support", diag(att(b"\x00")), 422, DATA),
    ("jpeg-magic-only", "POST", "/diagnosis-support", diag(att(b"\xff\xd8\xff")), 422, DATA),
    ("truncated-jpeg", "POST", "/diagnosis-support", diag(att(JPEG[: len(JPEG) // 2])), 422, DATA),
    ("truncated-png", "POST", "/diagnosis-support", diag(att(PNG[: len(PNG) // 2])), 422, DATA),
    ("gif-declared-png", "POST", "/diagnosis-support", diag(att(encode(NOISE, "GIF"), contentType="image/png")),
     422, DATA),
    ("tiff", "POST", "/diagnosis-support", diag(att(encode(NOISE, "TIFF"))), 422, DATA),
    ("bmp", "POST", "/diagnosis-support", diag(att(encode(NOISE, "BMP"))), 422, DATA),
    ("svg", "POST", "/diagnosis-support",
     diag(att(b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>', contentType="image/svg+xml")),
     422, ["body", "payload", 0, "contentAttachment", "data"]),
    ("png-bomb", "POST", "/diagnosis-support", diag(att(encode(Image.new("L", (5000, 5000)), "PNG", optimize=True))),
     413, DATA),
    ("jpeg-header-bomb", "POST", "/diagnosis-support", diag(att(huge_header_jpeg())), 413, DATA),
    ("1x1", "POST", "/diagnosis-support", diag(att(encode(Image.new("RGB", (1, 1)), "PNG"))), 422, DATA),
    ("40000x2", "POST", "/diagnosis-support", diag(att(encode(Image.new("RGB", (40000, 2)), "PNG"))), 422, DATA),
    ("2x20000", "POST", "/diagnosis-support", diag(att(encode(Image.new("RGB", (2, 20000)), "PNG"))), 422, DATA),
    ("aspect-20-to-1", "POST", "/diagnosis-support", diag(att(encode(Image.new("RGB", (1280, 64)), "JPEG"))),
     422, DATA),
    ("content-type-pdf", "POST", "/diagnosis-support", diag(att(JPEG, contentType="application/pdf")), 422,
     ["body", "payload", 0, "contentAttachment", "contentType"]),
    ("content-type-contradicts", "POST", "/diagnosis-support", diag(att(PNG, contentType="image/jpeg")), 422,
     ["body", "payload", 0, "contentAttachment", "contentType"]),
    ("one-bad-among-good", "POST", "/diagnosis-support", diag(GOOD, GOOD, att(b"GIF89a")), 422,
     ["body", "payload", 2, "contentAttachment", "data"]),
    ("too-many-images", "POST", "/diagnosis-support", diag(*[GOOD] * 17), 413, ["body", "payload"]),
    # --- headers on a bad body: checked after the body, never a crash before it
    ("idempotency-key-huge", "POST", "/diagnosis-support", {**diag(att("abc")), "headers": {"Idempotency-Key": "k" * 8000}},
     422, DATA),
    ("idempotency-key-latin1", "POST", "/diagnosis-support",
     {**diag(att("abc")), "headers": {"Idempotency-Key": "clé\xff".encode("latin-1")}}, 422, DATA),
    ("prefer-garbage", "POST", "/diagnosis-support", {**diag(att("abc")), "headers": {"Prefer": "wait=nan;;,=,respond"}},
     422, DATA),
    # --- severity
    ("local-no-system", "POST", "/severity-assessment/automatic/local", {"json": with_(LOCAL, ["scoringSystem"], {})},
     422, ["body", "scoringSystem"]),
    ("local-manual-system", "POST", "/severity-assessment/automatic/local",
     {"json": with_(LOCAL, ["scoringSystem"], {"pasi": {}})}, 422, ["body", "scoringSystem", "pasi"]),
    ("local-huge-integer", "POST", "/severity-assessment/automatic/local",
     {"json": with_(LOCAL, [*ITEMS, "surface"], 10**400)}, 422, ["body", *ITEMS, "surface"]),
    ("local-infinite-string", "POST", "/severity-assessment/automatic/local",
     {"json": with_(LOCAL, [*ITEMS, "surface"], "Infinity")}, 422, ["body", *ITEMS, "surface"]),
    ("local-answer-an-object", "POST", "/severity-assessment/automatic/local",
     {"json": with_(LOCAL, [*ITEMS, "surface"], {"a": [1]})}, 422, None),
    ("local-unicode-body-site", "POST", "/severity-assessment/automatic/local",
     {"json": with_(LOCAL, ["bodySite"], "🦶\u202e")}, 422, ["body", "bodySite"]),
    ("local-coding-garbage", "POST", "/severity-assessment/automatic/local",
     {"json": with_(LOCAL, ["knownCondition", "conclusion", "coding"], [{"code": ["EA90"]}])}, 422, None),
    ("local-payload-a-list", "POST", "/severity-assessment/automatic/local",
     {"json": with_(LOCAL, ["payload"], [GOOD])}, 422, ["body", "payload"]),
    ("local-1x1", "POST", "/severity-assessment/automatic/local",
     {"json": with_(LOCAL, ["payload"], att(encode(Image.new("RGB", (1, 1)), "PNG")))}, 422,
     ["body", "payload", "contentAttachment", "data"]),
    ("global-no-sites", "POST", "/severity-assessment/automatic/global",
     {"json": {**{k: LOCAL[k] for k in ("knownCondition", "scoringSystem")}, "payload": []}}, 422, ["body", "payload"]),
    ("global-bad-site-image", "POST", "/severity-assessment/automatic/global",
     {"json": {**{k: LOCAL[k] for k in ("knownCondition", "scoringSystem")},
               "payload": [{**att(b"\xff\xd8\xff\x00"), "bodySite": "armLeft"}]}}, 422,
     ["body", "payload", 0, "contentAttachment", "data"]),
    ("manual-systems-a-list", "POST", "/severity-assessment/manual", {"json": {"bodySite": "armLeft", "scoringSystem": ["pga"]}}, 422,
     ["body", "scoringSystem"]),
    ("manual-body-site-a-number", "POST", "/severity-assessment/manual", {"json": with_(MANUAL, ["bodySite"], 7)},
     422, ["body", "bodySite"]),
    ("manual-out-of-range", "POST", "/severity-assessment/manual",
     {"json": with_(MANUAL, ["scoringSystem", "pga", "questionnaireResponse", "item", "erythema"], -1e308)}, 422, None),
    # --- batches
    ("batch-no-items", "POST", "/batches", {"json": {"items": []}}, 422, ["body", "items"]),
    ("batch-unknown-kind", "POST", "/batches", {"json": {"items": [{"kind": "x-ray", "body": {}}]}}, 422,
     ["body", "items", 0, "kind"]),
    ("batch-body-a-list", "POST", "/batches",
     {"json": {"items": [{"kind": "diagnosis-support", "body": [1]}]}}, 422, ["body", "items", 0, "body"]),
    ("batch-every-item-bad", "POST", "/batches",
     {"json": {"items": [{"kind": "diagnosis-support", "body": {"payload": [att("abc")]}},
                         {"kind": "severity-assessment/manual", "body": {"scoringSystem": {"zzz": {}}}}]}}, 422,
     ["body", "items", 0, "body", "payload", 0, "contentAttachment", "data"]),
    ("batch-too-many-items", "POST", "/batches",
     {"json": {"items": [{"kind": "severity-assessment/manual", "body": MANUAL}] * 65}}, 413, ["body", "items"]),
    # --- reads and query parameters
    ("jobs-bad-status", "GET", "/jobs", {"params": {"status": "bogus"}}, 422, ["query", "status"]),
    ("jobs-limit-zero", "GET", "/jobs", {"params": {"limit": 0}}, 422, ["query", "limit"]),
    ("jobs-limit-huge", "GET", "/jobs", {"params": {"limit": "1e999"}}, 422, ["query", "limit"]),
    ("jobs-offset-negative", "GET", "/jobs", {"params": {"offset": -1}}, 422, ["query", "offset"]),
    ("job-unicode-id", "GET", "/jobs/%F0%9F%A6%B6%00", {}, 404, ["path", "id"]),
    ("job-result-unknown", "GET", "/jobs/00000000-0000-0000-0000-000000000000/result", {}, 404, ["path", "id"]),
    ("job-cancel-unknown", "DELETE", "/jobs/nope", {}, 404, ["path", "id"]),
    ("batch-unknown", "GET", "/batches/nope", {}, 404, ["path", "id"]),
    ("batch-results-timeout-nan", "GET", "/batches/nope/results", {"params": {"timeout": "nan"}}, 422,
     ["query", "timeout"]),
    ("questionnaire-control-chars", "GET", "/questionnaires", {"params": {"code": "\x00\x1b[31m"}}, 404,
     ["query", "code"]),
    # --- authentication
    ("no-token", "POST", "/diagnosis-support", {**diag(GOOD), "headers": {"Authorization": ""}}, 401, None),
    ("garbage-token", "POST", "/diagnosis-support",
     {**diag(GOOD), "headers": {"Authorization": "Bearer \xff\xfe.x.y".encode("latin-1")}}, 401, None),
    ("login-missing-fields", "POST", "/login", {"data": {"username": "dev"}}, 422, ["body", "password"]),
]


def account_inputs(service: Service) -> set[Path]:
    root = service.settings.effective_storage_dir / "inputs" / service.username
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def account_jobs(store: RedisJobStore, service: Service) -> int:
    return store.list_for_client(service.username, status=None, offset=0, limit=1)[1]


@pytest.fixture(scope="module")
def job_store(service: Service) -> RedisJobStore:
    return RedisJobStore.from_url(service.settings.effective_redis_url, ttl_s=60)


def test_the_set_is_large_and_covers_every_endpoint() -> None:
    assert len(CASES) >= 50 and len({c[0] for c in CASES}) == len(CASES)
    paths = {path for _, _, path, _, _, _ in CASES}
    assert {"/diagnosis-support", "/severity-assessment/automatic/local", "/severity-assessment/automatic/global",
            "/severity-assessment/manual", "/batches", "/jobs"} <= paths


@pytest.mark.parametrize("name, method, path, kwargs, status, loc", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_4xx_and_leaves_nothing(service: Service, api: httpx.Client, job_store: RedisJobStore,
                                                     name: str, method: str, path: str, kwargs: dict, status: int,
                                                     loc: list | None) -> None:
    inputs, jobs = account_inputs(service), account_jobs(job_store, service)
    r = api.request(method, path, **kwargs)
    assert r.status_code == status, r.text[:500]
    detail = r.json()["detail"]
    assert detail and all(isinstance(d["msg"], str) and d["type"] and isinstance(d["loc"], list) for d in detail)
    if loc is not None:
        assert detail[0]["loc"] == loc, detail
    assert account_inputs(service) == inputs, "a rejected request stored an image"
    assert account_jobs(job_store, service) == jobs, "a rejected request created a job"


@pytest.mark.parametrize("headers", [
    {"Prefer": "wait=nan"}, {"Prefer": "wait=-5, respond-async"}, {"Prefer": "respond-async; wait=1e999"},
    {"Prefer": ",,;=;", "Idempotency-Key": "\u00e9t\u00e9".encode("latin-1")},
], ids=["wait-nan", "wait-negative", "wait-infinite", "garbage-and-latin1-key"])
def test_odd_headers_on_a_good_request_are_not_errors(api: httpx.Client, headers: dict) -> None:
    # Prefer is advisory (RFC 7240): what cannot be understood is ignored; the request is served.
    r = api.post("/diagnosis-support", json={"payload": [GOOD]}, headers=headers)
    assert r.status_code in (200, 202), r.text[:500]


def corrupt_exif_jpeg() -> bytes:
    """A JPEG whose EXIF block reads but cannot be written back (text in a numeric tag)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "cam"
    return encode(NOISE, "JPEG", exif=exif.tobytes().replace(b"\x01\x0f\x00\x02", b"\x01\x0a\x00\x02"))


def test_odd_but_legal_images_are_analysed(api: httpx.Client) -> None:
    # Everything intake lets through must come back as a report with finite numbers, never a 500.
    odd = {
        "16-bit grey PNG": encode(Image.fromarray(np.random.default_rng(1).integers(0, 65535, (64, 64), dtype=np.uint16)),
                                  "PNG"),
        "CMYK JPEG": encode(NOISE.convert("CMYK"), "JPEG"),
        "palette PNG with transparency": encode(NOISE.convert("P"), "PNG", transparency=0),
        "corrupt EXIF": corrupt_exif_jpeg(),
        "10:1 at the minimum side": encode(Image.new("RGB", (320, 32), (200, 150, 120)), "JPEG"),
    }
    r = api.post("/diagnosis-support", json={"payload": [att(data, title=name) for name, data in odd.items()]})
    assert r.status_code == 200, r.text[:500]
    json.loads(r.text, parse_constant=lambda c: pytest.fail(f"{c} in the report"))
    assert len(r.json()["imagingAnalysis"]) == len(odd)
